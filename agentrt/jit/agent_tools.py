"""What every run of one JIT agent shares: built once, then only read.

:class:`AgentTools` bundles the catalog, the policy, the class importer
(:class:`ToolClasses`), the constructor-argument detector, the guide cache and
what the loading mode sends on every request: the search tool, the deferred
definitions (:class:`DeferredTools`) and the listing at the end of
``initialize_tools``' description. Each run's
:class:`~agentrt.jit.thread_tools.ThreadTools` is given one when it is built
and never calls back into the loader that made it.

The deferred definitions and the listing depend on the catalog and the policy
alone, so agents that share both share them (:meth:`Catalog.memo`). The
definitions come from the manifest, one tool's entry at a time: a first
request parses the entries of the tools the policy allows and no others.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._errors import ToolDefinitionError
from ..log import get_logger
from .catalog import import_tool
from .initialize_tools import INITIALIZE_TOOLS, ToolLoader
from .manifest import describe

if TYPE_CHECKING:
    from collections.abc import Mapping, Set

    from ..tools import FunctionSpec, Tool
    from .catalog import Catalog, CatalogEntry
    from .config import ToolLoading, ToolPolicy, ToolSearch
    from .detector import ParameterDetector
    from .guides import GuideCache
    from .search import LazyIndex

__all__ = ["GUIDES_ONLY", "SEARCH_TOOLS", "AgentTools", "DeferredTools", "ToolClasses",
           "deferred_tools", "render_listing"]

log = get_logger("agentrt.jit")

GUIDES_ONLY: Final = ("Activate tools by name and return their usage guides (find tools with "
                      "search_tools).")

SEARCH_TOOLS: Final[dict[str, dict[str, str]]] = {
    "regex": {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
    "bm25": {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"},
}


@dataclass(frozen=True, slots=True)
class DeferredTools:
    """The catalog's deferred definitions (by tool name, functions in class order, only
    those the policy allows), their function names, and the allowed tools nothing
    describes without importing them (their functions are appended when activated)."""

    definitions: tuple[dict[str, Any], ...] = ()
    functions: frozenset[str] = frozenset()
    undescribed: tuple[str, ...] = ()


class ToolClasses:
    """An agent's tool classes, each imported on first use (in a worker thread unless
    its module is loaded already, so a slow import does not stall other runs) and
    checked against the catalog: its name, its functions, and manifest staleness."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._classes: dict[str, type[Tool]] = {}
        self._fingerprints: dict[type[Tool], str] = {}

    async def load(self, name: str) -> tuple[type[Tool], bool]:
        """The class, and whether this call imported its module (ToolDefinitionError
        when it cannot be imported or does not match the catalog)."""
        cls = self._classes.get(name)
        if cls is not None:
            return cls, False
        entry = self._catalog.entry(name)
        imported = False
        if entry.cls is not None:
            cls = entry.cls
        else:
            if entry.import_path.partition(":")[0] in sys.modules:
                cls = import_tool(entry.import_path)
            else:
                cls = await anyio.to_thread.run_sync(import_tool, entry.import_path)
                imported = True
            if cls.name != name:
                raise ToolDefinitionError(f"{entry.import_path} defines tool {cls.name!r}, but "
                                          f"the catalog lists it as {name!r}")
            for fn in cls.functions():
                owner = self._catalog.tool_for(fn)
                if owner is not None and owner != name:
                    raise ToolDefinitionError(f"function {fn!r} is defined by both tool "
                                              f"{owner!r} and tool {name!r}")
            self._check_manifest(name, cls)
        return self._classes.setdefault(name, cls), imported

    def _check_manifest(self, name: str, cls: type[Tool]) -> None:
        entry = self._catalog.entry(name)
        if entry.fingerprint is None or self.fingerprint(cls) == entry.fingerprint:
            return
        old = self._catalog.details(name) or {}
        new = describe(cls, entry.import_path)
        changed = sorted(k for k in new if k != "fingerprint" and old.get(k) != new[k])
        log.warning("jit.manifest_stale", tool=name, import_path=entry.import_path,
                    changed=changed, hint="the imported class is used; regenerate the "
                    "manifest with `agentrt tools manifest`")

    def fingerprint(self, cls: type[Tool]) -> str:
        """The class's content digest, as the manifest writes it (guide cache keys)."""
        found = self._fingerprints.get(cls)
        if found is None:
            found = self._fingerprints[cls] = str(describe(cls, "")["fingerprint"])
        return found


@dataclass(frozen=True, slots=True)
class AgentTools:
    """What each run of the agent gets: ``core`` are its allowed core tools (instances
    shared by every run, classes built per run), ``with_loader`` whether
    ``initialize_tools`` is among them, ``deferring`` whether catalog functions are
    sent deferred (``deferred``, plus ``search_tool`` with ``server_search``) rather
    than appended when activated, ``listing`` the end of ``initialize_tools``'
    description, ``finder`` the index ``search_tools`` ranks (``deferred`` mode,
    unless the config disables ``tool_finder``) and ``search_first`` whether a new user
    message is searched before the first request."""

    catalog: Catalog
    policy: ToolPolicy
    classes: ToolClasses
    detector: ParameterDetector
    guide_cache: GuideCache
    core: tuple[Tool | type[Tool], ...]
    with_loader: bool
    deferring: bool
    deferred: DeferredTools
    search_tool: dict[str, Any] | None
    listing: str
    finder: LazyIndex | None = None
    search_first: bool = False

    def definition(self, spec: FunctionSpec) -> dict[str, Any]:
        """A function's ``tools[i]`` entry; initialize_tools carries the catalog listing,
        or, beside search_tools (which finds and loads tools), says only what it is still
        for: the guides."""
        definition = spec.definition()
        if spec.name == INITIALIZE_TOOLS and spec.tool_name == ToolLoader.name:
            definition["description"] = (GUIDES_ONLY if self.finder is not None else
                                         f"{definition['description']}\n\n{self.listing}")
        return definition


def deferred_tools(catalog: Catalog, policy: ToolPolicy, core: Set[str]) -> DeferredTools:
    """Every allowed catalog function's definition (the ``core`` tools' excepted), with
    ``defer_loading: true``, from the classes at hand or the manifest's entries of the
    allowed tools (read in one pass; the others are not read)."""
    names = [n for n in sorted(catalog.names()) if n not in core and policy.may_activate(n)]
    details = catalog.details_many(names)
    definitions: list[dict[str, Any]] = []
    undescribed = []
    for name in names:
        found = _definitions_of(catalog.entry(name), details[name])
        if found is None:
            undescribed.append(name)
            continue
        allowed = policy.methods(name)
        definitions += [{**d, "defer_loading": True} for d in found
                        if allowed is None or d["name"] in allowed]
    if undescribed:
        log.warning("jit.not_deferred", tools=undescribed,
                    hint="not in the manifest: their functions are appended to the tools "
                         "list when activated, which changes the request prefix; run "
                         "`agentrt tools manifest`")
    return DeferredTools(tuple(definitions), frozenset(d["name"] for d in definitions),
                         tuple(undescribed))


def _definitions_of(entry: CatalogEntry,
                    details: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """A tool's function definitions without importing it: from its class when the
    catalog holds one, else from its manifest entry; None when neither describes it."""
    if entry.cls is not None:
        return [spec.definition() for spec in entry.cls.functions().values()]
    functions = details.get("functions") if details is not None else None
    if not isinstance(functions, list):
        return None
    definitions = [f.get("definition") if isinstance(f, dict) else None for f in functions]
    if not all(isinstance(d, dict) and isinstance(d.get("name"), str)
               and isinstance(d.get("input_schema"), dict) for d in definitions):
        log.warning("jit.manifest_malformed", tool=entry.name, import_path=entry.import_path,
                    hint="regenerate it with `agentrt tools manifest`")
        return None
    return [d for d in definitions if isinstance(d, dict)]


def render_listing(catalog: Catalog, policy: ToolPolicy, core: Set[str],
                   loading: ToolLoading, search: ToolSearch, *, finder: bool = False) -> str:
    """The tools the model may load, one line each, by name. With ``server_search``
    (the API's search tool) or ``finder`` (``search_tools``) the model finds tools by
    searching instead, so a catalog of thousands costs no listing."""
    if loading == "server_search":
        return (f"Find the other tools with {SEARCH_TOOLS[search]['name']}; call a "
                "function it finds directly. Pass a tool's name here for its guide.")
    if finder:
        return ("Find the other tools with search_tools; call a function it finds "
                "directly. Pass a tool's name here for its guide.")
    lines = []
    for name in sorted(catalog.names()):
        if name in core or not policy.may_activate(name):
            continue
        summary = catalog.entry(name).summary
        lines.append(f"- {name}: {summary}" if summary else f"- {name}")
    return ("Tools you can activate:\n" + "\n".join(lines) if lines
            else "No other tools can be activated.")
