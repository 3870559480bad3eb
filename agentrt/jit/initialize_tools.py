"""``initialize_tools``: the core tool through which the model activates tools.

It belongs to every JIT agent (``tool_loader`` in the catalog, so a config can
restrict or disable it like any other tool). In ``append`` mode (and ``deferred``
without ``search_tools``) its description ends with the list of tools the agent may
load, one line each (name and summary), so the model knows what exists without
paying for every schema up front; beside ``search_tools``, which finds and loads
tools, it is there for the tools' guides. A function the
model already knows (from an earlier turn, say) can also be called directly:
its tool is activated on the spot.

With deferred loading the functions' definitions are in the request already,
marked ``defer_loading``: the answer then carries a ``tool_reference`` block for
each function of the loaded tools, which makes them visible to the model from
that result on without changing the request prefix.

The tool works on its thread's tools through :class:`Activator`, the three
methods of :class:`~agentrt.jit.thread_tools.ThreadTools` it calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeAlias

from .._errors import ToolError
from ..tools import Tool, ToolContent, function, tool_reference

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["INITIALIZE_TOOLS", "ActivationReport", "Activator", "ToolLoader", "Trigger",
           "render_report"]

INITIALIZE_TOOLS: Final = "initialize_tools"
Trigger: TypeAlias = Literal["initialize_tools", "auto", "restore", "api"]


@dataclass(frozen=True, slots=True)
class ActivationReport:
    """The outcome of one activation request. ``ready`` lists, in load order, the tools
    now usable whose guides the model should read (requested ones and the
    dependencies this request activated)."""

    requested: tuple[str, ...]
    activated: tuple[str, ...] = ()
    already_active: tuple[str, ...] = ()
    ready: tuple[str, ...] = ()
    degraded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)


class Activator(Protocol):
    """What ``initialize_tools`` needs of its thread's tools."""

    async def activate_many(self, names: Iterable[str], *,
                            trigger: Trigger = "api") -> ActivationReport: ...

    async def guides(self, names: Iterable[str]) -> list[str]: ...

    def references(self, tools: Iterable[str]) -> list[str]: ...


class ToolLoader(Tool):
    """Activates tools on demand and explains how to use them."""

    name = "tool_loader"

    def __init__(self, tools: Activator) -> None:
        self._tools = tools

    @function
    async def initialize_tools(self, tool_names: list[str]) -> str | ToolContent:
        """Activate tools by name: their functions join your tools list and their usage
        guides are returned. Call it before using a tool listed below.

        Args:
            tool_names: Names of the tools to activate, e.g. ["web_search"].
        """
        report = await self._tools.activate_many(tool_names, trigger="initialize_tools")
        guides = await self._tools.guides(report.ready)
        text = render_report(report, guides)
        if not report.ready:
            raise ToolError(text)
        references = self._tools.references(report.ready)
        if not references:
            return text
        return ToolContent(text, *(tool_reference(name) for name in references))


def render_report(report: ActivationReport, guides: Sequence[str]) -> str:
    """A short status block (what loaded, what did not and why), then the guides."""
    lines = []
    if report.activated:
        lines.append(f"Activated: {', '.join(report.activated)}.")
    if report.already_active:
        lines.append(f"Already active: {', '.join(report.already_active)}.")
    for tool, reasons in report.degraded.items():
        lines.append(f"Degraded: {tool} ({'; '.join(reasons)}); some of its functions may fail.")
    for tool, reason in report.failed.items():
        lines.append(f"Not activated: {tool}: {reason}.")
    return "\n".join(lines) + ("\n\n" + "\n".join(guides) if guides else "\n")
