"""JITLoader: the ToolProvider of an agent with just-in-time tools.

It is built once per agent, checks at start-up what can be checked without
importing a catalog tool (the core tools' constructors, the loading mode), and
opens each run's :class:`~agentrt.jit.thread_tools.ThreadTools` over the
agent-wide :class:`~agentrt.jit.agent_tools.AgentTools`. That is assembled on
the first run, not at start-up: with deferred loading (``tool_loading``
``deferred`` or ``server_search``) it holds what every request sends after the
core tools, the search tool and each allowed catalog function's definition
marked ``defer_loading: true``, read from the manifest (nothing imported). Both
are fixed for the agent's life, so they never change the request prefix, but for
one case: an MCP server whose live tool list differs from the manifest's
(:meth:`JITLoader.follow`), where the catalog is rebuilt and each open run takes
the new tools from its next request on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._context import RunContext
from .._errors import ConfigError
from ..log import get_logger
from .agent_tools import (
    SEARCH_TOOLS,
    AgentTools,
    DeferredTools,
    ToolClasses,
    deferred_tools,
    render_listing,
)
from .detector import ParameterDetector, RuntimeSources
from .guides import MemoryGuideCache
from .initialize_tools import ToolLoader
from .search import SECTION, LazyIndex, SearchIndex, build_index, stored_words
from .search_tools import ToolFinder
from .thread_tools import ThreadTools

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..telemetry import Telemetry
    from ..thread._messages import Message
    from ..tools import Tool
    from .catalog import Catalog
    from .config import ToolLoading, ToolPolicy, ToolSearch
    from .guides import GuideCache

__all__ = ["JITLoader"]

log = get_logger("agentrt.jit")


class JITLoader:
    """The ToolProvider of a JIT agent: opens each run's :class:`ThreadTools` over the
    agent-wide :class:`AgentTools` (built on the first run)."""

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
        telemetry: Telemetry | None = None,
        search_first: bool = False,
    ) -> None:
        """``core``: always-active tools (instances are shared by every run, classes are
        built per run with injected arguments). ``prototype``: a run context with the
        agent's identity and deps, to check the core tools' constructors at start-up.
        ``loading`` and ``search``: how catalog tools reach the model (see
        :mod:`agentrt.jit.config`); ``field`` names the config in a ConfigError.
        ``telemetry``: the runtime's, for ``activate_tool`` spans (None: off).
        ``search_first``: with ``search_tools``, search each new user message before the
        first request and reveal its best matches (no effect in the other modes)."""
        self.catalog = catalog
        self.policy = policy
        self.telemetry = telemetry
        self.loading: ToolLoading = loading
        self.search: ToolSearch = search
        self.sources = sources or RuntimeSources()
        self.detector = detector or ParameterDetector()
        self.guide_cache: GuideCache = guide_cache or MemoryGuideCache()
        self.classes = ToolClasses(catalog)
        self._agent: AgentTools | None = None
        self._version: Callable[[], int] | None = None
        self._rebuild: Callable[[], JITLoader] | None = None
        self._seen = 0
        core_allowed: list[Tool | type[Tool]] = []
        for item in core:
            cls = item if isinstance(item, type) else type(item)
            if not policy.may_activate(cls.name):
                log.warning("jit.core_tool_blocked", tool=cls.name, reason=policy.refusal(cls.name))
                continue
            core_allowed.append(item)
        self.core = tuple(core_allowed)
        self.with_loader = ToolLoader.name in catalog and policy.may_activate(ToolLoader.name)
        self.with_finder = (loading == "deferred" and ToolFinder.name in catalog
                            and policy.may_activate(ToolFinder.name))
        self.search_first = search_first and self.with_finder
        if loading == "deferred" and not (self.with_loader or self.with_finder):
            # Nothing could ever reference a deferred tool (and a request whose tools are
            # all deferred is refused by the API).
            raise ConfigError(
                "'deferred' needs search_tools (tool 'tool_finder') or initialize_tools "
                "(tool 'tool_loader'), which reference deferred tools for the model; enable "
                "one, or use 'server_search' or 'append'", field=f"{field}.tool_loading")
        check = prototype or RunContext(thread_id="", run_id="", agent="agent")
        provided = self.sources.provided(check)
        for item in self.core:
            if isinstance(item, type):
                self.detector.arguments(item, item.name, provided)  # MissingParameterError

    @property
    def deferring(self) -> bool:
        return self.loading != "append"

    def follow(self, version: Callable[[], int], rebuild: Callable[[], JITLoader]) -> None:
        """Rebuild the agent's tools when ``version()`` changes (an MCP server reported a
        tool list other than the manifest's): ``rebuild()`` is this loader built from
        the current sources. Open runs take the new tools from their next request on."""
        self._version, self._rebuild, self._seen = version, rebuild, version()

    async def open_run(self, run: RunContext, history: Sequence[Message]) -> ThreadTools:
        tools = ThreadTools(self.agent_tools(), run, self.sources.provided(run),
                            telemetry=self.telemetry,
                            source=self.agent_tools if self._version is not None else None)
        await tools.restore(history)
        return tools

    def agent_tools(self) -> AgentTools:
        """What every run shares, assembled on the first run (it reads the manifest's
        entries of every allowed tool when deferring)."""
        if self._version is not None and self._rebuild is not None:
            version = self._version()
            if version != self._seen:
                fresh = self._rebuild()
                self._seen = version
                self.catalog, self.policy, self.classes = fresh.catalog, fresh.policy, fresh.classes
                self.core, self.with_loader = fresh.core, fresh.with_loader
                self.with_finder, self._agent = fresh.with_finder, None
        if self._agent is None:
            self._agent = AgentTools(
                catalog=self.catalog, policy=self.policy, classes=self.classes,
                detector=self.detector, guide_cache=self.guide_cache, core=self.core,
                with_loader=self.with_loader, deferring=self.deferring,
                deferred=self.deferred(), search_tool=self.search_tool(),
                listing=self.listing(), finder=self.search_index(),
                search_first=self.search_first)
        return self._agent

    def _core_names(self) -> frozenset[str]:
        return frozenset({ToolLoader.name, ToolFinder.name, *(i.name for i in self.core)})

    def search_index(self) -> LazyIndex | None:
        """What ``search_tools`` ranks (``deferred`` mode): the allowed deferred functions.
        One per catalog, policy and core tools, like the definitions it reads; built on
        the first search, from the words the manifest stores where they are current."""
        if not self.with_finder:
            return None
        core = self._core_names()
        deferred = self.deferred()
        catalog = self.catalog

        def build() -> SearchIndex:
            owners = {str(d["name"]): catalog.tool_for(str(d["name"])) or ""
                      for d in deferred.definitions}
            tools = {*owners.values(), *deferred.undescribed}
            summaries = {tool: catalog.entry(tool).summary for tool in tools if tool in catalog}
            manifest = catalog.manifest
            stored = None if manifest is None else stored_words(
                manifest.section(SECTION),
                {tool: catalog.entry(tool).fingerprint for tool in tools if tool in catalog})
            return build_index(deferred.definitions, owners, summaries,
                               undescribed=deferred.undescribed, stored=stored)

        return catalog.memo(("search_index", core, self.policy.key), lambda: LazyIndex(build))

    def listing(self) -> str:
        """The end of initialize_tools' description: fixed for the agent's life. Built
        once per catalog, policy and core tools (it reads every allowed entry)."""
        core = self._core_names()
        return self.catalog.memo(
            ("listing", core, self.policy.key, self.loading, self.search, self.with_finder),
            lambda: render_listing(self.catalog, self.policy, core, self.loading, self.search,
                                   finder=self.with_finder))

    def search_tool(self) -> dict[str, str] | None:
        """The API's tool search tool (``server_search``), never deferred."""
        return dict(SEARCH_TOOLS[self.search]) if self.loading == "server_search" else None

    def deferred(self) -> DeferredTools:
        """Every allowed catalog function's definition, with ``defer_loading: true``
        (nothing in ``append`` mode). Built once per catalog, policy and core tools."""
        if not self.deferring:

            return DeferredTools()
        core = self._core_names()
        return self.catalog.memo(("deferred", core, self.policy.key),
                                 lambda: deferred_tools(self.catalog, self.policy, core))
