"""JITLoader: the ToolProvider of an agent with just-in-time tools.

Agent-wide state lives here (the catalog, the policy, imported classes, the
guide cache); each run gets a :class:`ThreadTools` holding that thread's active
tools. Start-up imports nothing beyond the core tools and checks that each core
tool's constructor can be filled, so a missing argument fails before any run.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._context import RunContext
from .._errors import ToolDefinitionError
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
    from .config import ToolPolicy
    from .guides import GuideCache

__all__ = ["JITLoader", "JITStatistics"]

log = get_logger("agentrt.jit")


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
    ) -> None:
        """``core``: always-active tools (instances are shared by every run, classes are
        built per run with injected arguments). ``prototype``: a run context with the
        agent's identity and deps, to check the core tools' constructors at start-up."""
        self.catalog = catalog
        self.policy = policy
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

    def listing(self) -> str:
        """The tools the model may load, one line each, by name: fixed for the agent's
        life, so it never changes the request prefix. Built once per catalog and policy
        (it reads every entry)."""
        if self._listing is None:
            core = tuple(sorted({ToolLoader.name, *(i.name for i in self._core)}))
            self._listing = self.catalog.memo(("listing", core, self.policy.key),
                                              lambda: self._render_listing(frozenset(core)))
        return self._listing

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
