"""JITLoader: the ToolProvider of an agent with just-in-time tools.

Agent-wide state lives here (the catalog, the policy, imported classes, the
guide cache); each run gets a :class:`ThreadTools` holding that thread's active
tools. Start-up imports nothing beyond the core tools and checks that each core
tool's constructor can be filled, so a missing argument fails before any run.

With deferred loading (``tool_loading`` ``deferred`` or ``server_search``) the
loader also holds what every request sends after the core tools: the search tool
(``server_search``) and each allowed catalog function's definition marked
``defer_loading: true``. Both are fixed for the agent's life, so they never change
the request prefix; they are read from the manifest (nothing imported) on the
first request, once per catalog and policy, not at start-up.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio

from .._context import RunContext
from .._errors import ConfigError, ToolDefinitionError
from ..log import get_logger
from .catalog import import_tool
from .core import INITIALIZE_TOOLS, ToolLoader
from .detector import ParameterDetector, RuntimeSources
from .guides import MemoryGuideCache
from .manifest import describe
from .thread_tools import ThreadTools

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..thread._messages import Message
    from ..tools import FunctionSpec, Tool
    from .catalog import Catalog
    from .config import ToolLoading, ToolPolicy, ToolSearch
    from .guides import GuideCache

__all__ = ["SEARCH_TOOLS", "DeferredTools", "JITLoader", "JITStatistics"]

log = get_logger("agentrt.jit")

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


@dataclass(frozen=True, slots=True)
class JITStatistics:
    """Counters since the loader was built: ``activated`` live activations, ``restored``
    replayed from history, ``failed`` activations, ``imported`` modules imported."""

    activated: int = 0
    restored: int = 0
    failed: int = 0
    imported: int = 0


class JITLoader:
    def __init__(
        self,
        catalog: Catalog,
        policy: ToolPolicy,
        *,
        core: Sequence[Tool | type[Tool]] = (),
        sources: RuntimeSources | None = None,
        prototype: RunContext | None = None,
        guide_cache: GuideCache | None = None,
        detector: ParameterDetector | None = None,
        loading: ToolLoading = "deferred",
        search: ToolSearch = "regex",
        field: str = "tool_config",
    ) -> None:
        """``core``: always-active tools (instances are shared by every run, classes are
        built per run with injected arguments). ``prototype``: a run context with the
        agent's identity and deps, to check the core tools' constructors at start-up.
        ``loading`` and ``search``: how catalog tools reach the model (see
        :mod:`agentrt.jit.config`); ``field`` names the config in a ConfigError."""
        self.catalog = catalog
        self.policy = policy
        self.loading: ToolLoading = loading
        self.search: ToolSearch = search
        self.sources = sources or RuntimeSources()
        self.detector = detector or ParameterDetector()
        self.guide_cache: GuideCache = guide_cache or MemoryGuideCache()
        self._classes: dict[str, type[Tool]] = {}
        self._fingerprints: dict[type[Tool], str] = {}
        self._counts: Counter[str] = Counter()
        self._listing: str | None = None
        self._core: list[Tool | type[Tool]] = []
        for item in core:
            cls = item if isinstance(item, type) else type(item)
            if not policy.may_activate(cls.name):
                log.warning("jit.core_tool_blocked", tool=cls.name, reason=policy.refusal(cls.name))
                continue
            self._core.append(item)
        self.with_loader = ToolLoader.name in catalog and policy.may_activate(ToolLoader.name)
        if loading == "deferred" and not self.with_loader:
            # Nothing could ever reference a deferred tool (and a request whose tools are
            # all deferred is refused by the API).
            raise ConfigError(
                "'deferred' needs initialize_tools (tool 'tool_loader'), which references "
                "deferred tools for the model; enable it, or use 'server_search' or 'append'",
                field=f"{field}.tool_loading")
        check = prototype or RunContext(thread_id="", run_id="", agent="agent")
        provided = self.sources.provided(check, placeholder_manager=True)
        for item in self._core:
            if isinstance(item, type):
                self.detector.arguments(item, item.name, provided)  # MissingParameterError

    async def open_run(self, run: RunContext, history: Sequence[Message]) -> ThreadTools:
        tools = ThreadTools(self, run, self.sources.provided(run))
        tools.start(self._core, with_loader=self.with_loader)
        await tools.restore(history)
        return tools

    async def load_class(self, name: str) -> type[Tool]:
        """The tool's class, imported on first use (in a worker thread unless its module
        is loaded already, so a slow import does not stall other runs) and checked
        against the catalog: name, function clashes, and manifest staleness."""
        cls = self._classes.get(name)
        if cls is not None:
            return cls
        entry = self.catalog.entry(name)
        if entry.cls is not None:
            cls = entry.cls
        else:
            module = entry.import_path.partition(":")[0]
            if module in sys.modules:
                cls = import_tool(entry.import_path)
            else:
                cls = await anyio.to_thread.run_sync(import_tool, entry.import_path)
                self._counts["imported"] += 1
            if cls.name != name:
                raise ToolDefinitionError(f"{entry.import_path} defines tool {cls.name!r}, but "
                                          f"the catalog lists it as {name!r}")
            for fn in cls.functions():
                owner = self.catalog.tool_for(fn)
                if owner is not None and owner != name:
                    raise ToolDefinitionError(f"function {fn!r} is defined by both tool "
                                              f"{owner!r} and tool {name!r}")
            self._check_manifest(name, cls)
        return self._classes.setdefault(name, cls)

    def _check_manifest(self, name: str, cls: type[Tool]) -> None:
        entry = self.catalog.entry(name)
        if entry.fingerprint is None or self.fingerprint(cls) == entry.fingerprint:
            return
        manifest = self.catalog.manifest
        old = manifest.details(entry.import_path) if manifest is not None else None
        new = describe(cls, entry.import_path)
        changed = sorted(k for k in new if k != "fingerprint" and (old or {}).get(k) != new[k])
        log.warning("jit.manifest_stale", tool=name, import_path=entry.import_path,
                    changed=changed, hint="the imported class is used; regenerate the "
                    "manifest with `agentrt tools manifest`")

    def fingerprint(self, cls: type[Tool]) -> str:
        found = self._fingerprints.get(cls)
        if found is None:
            found = self._fingerprints[cls] = str(describe(cls, "")["fingerprint"])
        return found

    def definition(self, spec: FunctionSpec) -> dict[str, Any]:
        """A function's ``tools[i]`` entry; initialize_tools carries the catalog listing."""
        definition = spec.definition()
        if spec.name == INITIALIZE_TOOLS and spec.tool_name == ToolLoader.name:
            definition["description"] = f"{definition['description']}\n\n{self.listing()}"
        return definition

    @property
    def deferring(self) -> bool:
        return self.loading != "append"

    def listing(self) -> str:
        """The tools the model may load, one line each, by name: fixed for the agent's
        life, so it never changes the request prefix. Built once per catalog and policy
        (it reads every entry). With ``server_search`` the model finds tools with the
        search tool instead, so a catalog of thousands costs no listing."""
        if self._listing is None:
            if self.loading == "server_search":
                self._listing = (
                    f"Find the other tools with {SEARCH_TOOLS[self.search]['name']}; call a "
                    "function it finds directly. Pass a tool's name here for its guide.")
            else:
                core = self._core_names()
                self._listing = self.catalog.memo(("listing", core, self.policy.key),
                                                  lambda: self._render_listing(frozenset(core)))
        return self._listing

    def _core_names(self) -> tuple[str, ...]:
        return tuple(sorted({ToolLoader.name, *(i.name for i in self._core)}))

    def search_tool(self) -> dict[str, Any] | None:
        """The API's tool search tool (``server_search``), never deferred."""
        return dict(SEARCH_TOOLS[self.search]) if self.loading == "server_search" else None

    def deferred(self) -> DeferredTools:
        """Every allowed catalog function's definition, with ``defer_loading: true``
        (nothing in ``append`` mode). Built once per catalog and policy."""
        if not self.deferring:
            return DeferredTools()
        core = self._core_names()
        return self.catalog.memo(("deferred", core, self.policy.key),
                                 lambda: self._build_deferred(frozenset(core)))

    def _build_deferred(self, core: frozenset[str]) -> DeferredTools:
        definitions: list[dict[str, Any]] = []
        undescribed = []
        for name in sorted(self.catalog.names()):
            if name in core or not self.policy.may_activate(name):
                continue
            found = self._described(name)
            if found is None:
                undescribed.append(name)
                continue
            allowed = self.policy.methods(name)
            definitions += [{**d, "defer_loading": True} for d in found
                            if allowed is None or d["name"] in allowed]
        if undescribed:
            log.warning("jit.not_deferred", tools=undescribed,
                        hint="not in the manifest: their functions are appended to the tools "
                             "list when activated, which changes the request prefix; run "
                             "`agentrt tools manifest`")
        return DeferredTools(tuple(definitions), frozenset(d["name"] for d in definitions),
                             tuple(undescribed))

    def _described(self, name: str) -> list[dict[str, Any]] | None:
        """A tool's function definitions without importing it: from its class when the
        catalog holds one, else from the manifest; None when neither describes it."""
        entry = self.catalog.entry(name)
        if entry.cls is not None:
            return [spec.definition() for spec in entry.cls.functions().values()]
        manifest = self.catalog.manifest
        details = manifest.details(entry.import_path) if manifest and entry.described else None
        functions = details.get("functions") if isinstance(details, dict) else None
        if not isinstance(functions, list):
            return None
        definitions = [f.get("definition") if isinstance(f, dict) else None for f in functions]
        if not all(isinstance(d, dict) and isinstance(d.get("name"), str)
                   and isinstance(d.get("input_schema"), dict) for d in definitions):
            log.warning("jit.manifest_malformed", tool=name, import_path=entry.import_path,
                        hint="regenerate it with `agentrt tools manifest`")
            return None
        return [dict(d) for d in definitions if isinstance(d, dict)]

    def _render_listing(self, core: frozenset[str]) -> str:
        lines = []
        for name in sorted(self.catalog.names()):
            if name in core or not self.policy.may_activate(name):
                continue
            summary = self.catalog.entry(name).summary
            lines.append(f"- {name}: {summary}" if summary else f"- {name}")
        return ("Tools you can activate:\n" + "\n".join(lines) if lines
                else "No other tools can be activated.")

    async def guide_get_many(self, keys: list[str]) -> dict[str, str]:
        """Cached guides; a cache with ``get_many`` (Redis) answers in one round trip."""
        try:
            get_many = getattr(self.guide_cache, "get_many", None)
            if get_many is not None:
                found: dict[str, str] = await get_many(keys)
                return found
            values = [await self.guide_cache.get(key) for key in keys]
            return {k: v for k, v in zip(keys, values, strict=True) if v is not None}
        except Exception as exc:  # a cache outage costs a re-render, never the call
            log.warning("jit.guide_cache_error", op="get", error=repr(exc))
            return {}

    async def guide_set_many(self, guides: dict[str, str]) -> None:
        if not guides:
            return
        try:
            set_many = getattr(self.guide_cache, "set_many", None)
            if set_many is not None:
                await set_many(guides)
                return
            for key, value in guides.items():
                await self.guide_cache.set(key, value)
        except Exception as exc:
            log.warning("jit.guide_cache_error", op="set", error=repr(exc))

    def count(self, what: str) -> None:
        self._counts[what] += 1

    def statistics(self) -> JITStatistics:
        return JITStatistics(**{k: self._counts[k] for k in
                                ("activated", "restored", "failed", "imported")})
