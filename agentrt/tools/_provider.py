"""The seam between the loop and where tools come from (a fixed set, or the JIT loader)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._context import RunContext
    from ..thread._messages import Message
    from ._registry import BoundFunction

__all__ = ["RunTools", "ToolProvider"]


class RunTools(Protocol):
    """The tools one run can see (``definitions``) and call (``resolve``)."""

    def definitions(self) -> list[dict[str, Any]]:
        """The request's ``tools`` list: append-only within a thread, for prompt caching."""
        ...

    async def resolve(self, function_name: str) -> BoundFunction | str:
        """The function, activating its tool if that is allowed; otherwise a message
        for the model saying why it cannot be called."""
        ...

    def active_tools(self) -> list[str]:
        """Names of the tools active in this run, in tools-list order (``agentrt chat``)."""
        ...

    async def opening(self, user_input: str | list[dict[str, Any]]) -> list[Message]:
        """Messages to store after the user's new message, before the first request
        (deferred JIT tools search it first); usually none."""
        ...


class ToolProvider(Protocol):
    """Where the loop gets each run's tools: a ``ToolRegistry`` or a JIT loader."""

    async def open_run(self, run: RunContext, history: Sequence[Message]) -> RunTools:
        """Called once per run with the thread's stored history (to restore state)."""
        ...
