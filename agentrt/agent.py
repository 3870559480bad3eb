"""Agent: a thin, declarative shell over the loop, the pipeline and the tool registry.

Subclass it and set class attributes; they are checked when the class is defined,
so a typo fails at import with the field named, not in the middle of a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, ClassVar

from ._closing import AsyncClosing
from ._context import RunContext
from ._errors import AgentRtError, ConfigError
from ._events import RunEvent, RunFinished
from .jit.config import IMPORT_PATH, JITConfig, all_import_paths
from .llm._request import RequestBuilder
from .pipeline._builder import build_pipeline
from .pipeline.execute import Execute
from .pipeline.processor import ResponseProcessor
from .runtime import Runtime
from .settings import effective_pipeline
from .thread.manager import ThreadManager
from .tools import Tool, ToolRegistry

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncGenerator, Sequence

    from ._result import RunResult
    from .pipeline._builder import StageFactory
    from .thread._messages import ContentBlock, Message
    from .tools._provider import RunTools, ToolProvider

__all__ = ["Agent"]


def _check(cls: type, field: str, value: object, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"expected {expected}, got {value!r}", field=f"{cls.__name__}.{field}")


_OVERRIDABLE = frozenset({"ttl", "scope", "public", "timeout", "error_ttl", "cache_tags"})


class Agent(AsyncClosing):
    """Class attributes left ``None`` fall back to :class:`agentrt.Settings`.

    ``pipeline`` lists the tool-call stages (names from ``agentrt.pipeline``, or
    stage factories); ``function_options`` overrides what a function declared, by
    function name: ``{"get_product": {"ttl": 30}}``.
    """

    model: ClassVar[str | None] = None
    system: ClassVar[str | None] = None
    tools: ClassVar[Sequence[type[Tool] | Tool]] = ()
    max_iterations: ClassVar[int | None] = None
    max_tokens: ClassVar[int | None] = None
    parallel_tool_calls: ClassVar[bool | None] = None
    tool_timeout: ClassVar[float | None] = None
    pipeline: ClassVar[Sequence[str | StageFactory] | None] = None
    function_options: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # Just-in-time tools (agentrt.jit): set any of these and the agent starts with its
    # core tools (``tools`` + ``core_tools``) and activates the catalog's on demand.
    core_tools: ClassVar[Sequence[type[Tool] | Tool]] = ()
    tool_catalog: ClassVar[Sequence[str | type[Tool]]] = ()
    tool_config: ClassVar[JITConfig | Mapping[str, Any] | str | os.PathLike[str] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for field in ("max_iterations", "max_tokens"):
            value = getattr(cls, field)
            _check(cls, field, value, value is None or (type(value) is int and value > 0),
                   "a positive int")
        _check(cls, "tool_timeout", cls.tool_timeout,
               cls.tool_timeout is None or (isinstance(cls.tool_timeout, int | float)
                                            and cls.tool_timeout > 0), "a positive number")
        for field in ("model", "system"):
            value = getattr(cls, field)
            _check(cls, field, value, value is None or isinstance(value, str), "a string")
        for name, fields in cls.function_options.items():
            unknown = set(fields) - _OVERRIDABLE
            _check(cls, f"function_options[{name!r}]", fields, not unknown,
                   f"only {', '.join(sorted(_OVERRIDABLE))}")
        for index, tool in enumerate(cls.tools):
            ok = isinstance(tool, Tool) or (inspect.isclass(tool) and issubclass(tool, Tool))
            _check(cls, f"tools[{index}]", tool, ok, "a Tool subclass or instance")
        for index, tool in enumerate(cls.core_tools):
            ok = isinstance(tool, Tool) or (inspect.isclass(tool) and issubclass(tool, Tool))
            _check(cls, f"core_tools[{index}]", tool, ok, "a Tool subclass or instance")
        # A catalog of import paths is checked in bulk (it may list thousands); item by
        # item only when it also holds classes, or to name the item that is wrong.
        for index, item in enumerate(() if all_import_paths(cls.tool_catalog)
                                     else cls.tool_catalog):
            ok = (isinstance(item, str) and IMPORT_PATH.fullmatch(item) is not None) or (
                inspect.isclass(item) and issubclass(item, Tool))
            _check(cls, f"tool_catalog[{index}]", item, ok,
                   "a Tool subclass or an import path 'package.module:Class'")
        if isinstance(cls.tool_config, Mapping):  # a file is read at start-up (cwd-relative)
            JITConfig.parse(dict(cls.tool_config), field=f"{cls.__name__}.tool_config")

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        identity: Mapping[str, str] | None = None,
        deps: Mapping[str, Any] | None = None,
    ) -> None:
        """``identity`` (account, tenant) scopes cached results; ``deps`` reach tools
        through ``RunContext.deps``."""
        self._owns_runtime = runtime is None
        self.runtime = runtime if runtime is not None else Runtime()
        self.identity = dict(identity or {})
        self.deps = dict(deps or {})
        self.registry = ToolRegistry(self._construct(tool) for tool in self.tools)
        self._manager = self._build_manager()

    @property
    def name(self) -> str:
        return type(self).__name__

    def _construct(self, tool: type[Tool] | Tool) -> Tool:
        if isinstance(tool, Tool):
            return tool
        try:
            return tool()
        except TypeError as exc:
            raise ConfigError(f"cannot construct {tool.__name__}: {exc}; pass an instance "
                              "instead", field=f"{self.name}.tools") from exc

    def _tool_provider(self) -> ToolProvider:
        """Where the loop gets each run's tools: this agent's fixed set, or the JIT loader."""
        if not (self.core_tools or self.tool_catalog or self.tool_config is not None):
            return self.registry
        from .jit._agent import build_loader

        return build_loader(self.name, identity=self.identity, deps=self.deps,
                            core=[*self.registry, *self.core_tools], catalog=self.tool_catalog,
                            config=self.tool_config, runtime=self.runtime)

    def _build_manager(self) -> ThreadManager:
        settings = self.runtime.settings
        execute = Execute(timeout=self.tool_timeout or settings.tool_timeout,
                          max_result_chars=settings.max_result_chars)
        parallel = (settings.parallel_tools if self.parallel_tool_calls is None
                    else self.parallel_tool_calls)
        stages = list(self.pipeline if self.pipeline is not None
                      else effective_pipeline(settings))
        handler = build_pipeline(stages, self.runtime.pipeline, execute)
        processor = ResponseProcessor(handler, parallel=parallel,
                                      overrides=self.function_options,
                                      remember_history="memo" in stages)
        builder = RequestBuilder(model=self.model or settings.model,
                                 max_tokens=self.max_tokens or settings.max_tokens,
                                 system=self.system, prompt_caching=settings.prompt_caching)
        return ThreadManager(store=self.runtime.store, model=self.runtime.model, builder=builder,
                             processor=processor, tools=self._tool_provider(),
                             max_iterations=self.max_iterations or settings.max_iterations,
                             stream=settings.stream)

    async def stream(self, task: str | list[ContentBlock], *,
                     thread_id: str | None = None) -> AsyncGenerator[RunEvent, None]:
        """Events as they happen; the last is ``RunFinished`` carrying the result.

        Stopping early (``break``) is safe: the thread is consistent at every event.
        Close the iterator (``contextlib.aclosing``) to release it promptly.
        """
        async with aclosing(self._events(task, thread_id)) as events:
            async for event in events:
                yield event

    def _events(self, task: str | list[ContentBlock],
                thread_id: str | None) -> AsyncGenerator[RunEvent, None]:
        return self._manager.run(task, thread_id=thread_id, agent=self.name,
                                 identity=self.identity, deps=self.deps)

    async def tools_for(self, thread_id: str | None = None) -> RunTools:
        """This thread's tools as its next run would open them (``agentrt chat``'s ``/tools``).

        ``definitions()`` is the next request's tools list. A JIT agent's also has
        ``active_tools()``: its core tools plus what the thread activated, replayed
        from the stored history exactly as a run replays it.
        """
        history: list[Message] = []
        if thread_id is not None and await self.runtime.store.get_thread(thread_id) is not None:
            history = await self.runtime.store.messages(thread_id)
        run = RunContext(thread_id=thread_id or "", run_id="", agent=self.name,
                         identity=dict(self.identity), deps=dict(self.deps))
        return await self._manager.tools.open_run(run, history)

    async def run(self, task: str | list[ContentBlock], *,
                  thread_id: str | None = None) -> RunResult:
        # the loop's own events, not stream()'s re-yield: one generator hop fewer per event
        async with aclosing(self._events(task, thread_id)) as events:
            async for event in events:
                if isinstance(event, RunFinished):
                    return event.result
        raise AgentRtError("the run ended without a result")  # pragma: no cover

    async def aclose(self) -> None:
        if self._owns_runtime:
            await self.runtime.aclose()

