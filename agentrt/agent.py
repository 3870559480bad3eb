"""Agent: a thin, declarative shell over the loop, the pipeline and the tool registry.

Subclass it and set class attributes; they are checked when the class is defined,
so a typo fails at import with the field named, not in the middle of a run.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from ._asynclib import async_library_told
from ._closing import AsyncClosing
from ._context import RunContext
from ._errors import AgentRtError, ConfigError
from ._events import RunEvent, RunFinished
from ._output import OutputCheck, OutputSpec
from .context import ContextPolicy
from .llm._request import RequestBuilder
from .llm._usage import UsageLimits
from .loop import ThreadManager
from .pipeline._builder import build_pipeline, configured_stages
from .pipeline.execute import Execute
from .pipeline.processor import ResponseProcessor
from .runtime import Runtime
from .settings import setting_origin
from .tools import Tool, ToolRegistry

if TYPE_CHECKING:
    import os
    from collections.abc import AsyncGenerator, Awaitable, Sequence

    from ._approvals import ApprovalPolicy, ApprovalRequest, PendingCall, Verdict
    from ._result import RunResult
    from .jit.config import JITConfig
    from .mcp import HTTPServer, StdioServer
    from .pipeline._builder import StageFactory
    from .pipeline._pipeline import Pipeline
    from .thread._messages import ContentBlock, Message
    from .tools._provider import RunTools, ToolProvider

__all__ = ["Agent"]

T = TypeVar("T")


def _check(cls: type, field: str, value: object, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"expected {expected}, got {value!r}", field=f"{cls.__name__}.{field}")


_OVERRIDABLE = frozenset({"ttl", "scope", "public", "timeout", "error_ttl", "cache_tags",
                          "read_only", "invalidates", "requires_approval", "approval_reason"})


def _check_jit_attributes(cls: type[Agent]) -> None:
    """The JIT attributes' shape, checked when the class is defined (JIT is imported
    only by agents that use it)."""
    from .jit.config import IMPORT_PATH, JITConfig, all_import_paths

    if not all_import_paths(cls.tool_catalog):  # classes among them, or a mistake to name
        for index, item in enumerate(cls.tool_catalog):
            ok = (isinstance(item, str) and IMPORT_PATH.fullmatch(item) is not None) or (
                inspect.isclass(item) and issubclass(item, Tool))
            _check(cls, f"tool_catalog[{index}]", item, ok,
                   "a Tool subclass or an import path 'package.module:Class'")
    if isinstance(cls.tool_config, Mapping):  # a file is read at start-up
        JITConfig.parse(dict(cls.tool_config), field=f"{cls.__name__}.tool_config")


class Agent(AsyncClosing):
    """Class attributes left ``None`` fall back to :class:`agentrt.Settings`.

    ``pipeline`` lists the tool-call stages (names from ``agentrt.pipeline``, or
    stage factories); ``function_options`` overrides what a function declared, by
    function name: ``{"get_product": {"ttl": 30}}``, ``{"refund": {"requires_approval":
    True}}`` (a JIT agent's TOML may set ``requires_approval`` too, under
    ``[function_options.NAME]``).

    Calls that require approval pause the run (``stop_reason="approval_required"``);
    :meth:`resume` decides them. Override :meth:`approval_policy` (or pass
    ``approval_policy=`` to the constructor) to settle routine ones in code.
    """

    model: ClassVar[str | None] = None
    system: ClassVar[str | None] = None
    tools: ClassVar[Sequence[type[Tool] | Tool]] = ()
    max_iterations: ClassVar[int | None] = None
    # Per-run bounds on tokens and tool calls (each unset bound falls back to settings).
    usage_limits: ClassVar[UsageLimits | None] = None
    max_tokens: ClassVar[int | None] = None
    parallel_tool_calls: ClassVar[bool | None] = None
    # Start read-only calls while the reply still streams (None: the eager_tools setting).
    eager_tools: ClassVar[bool | None] = None
    tool_timeout: ClassVar[float | None] = None
    pipeline: ClassVar[Sequence[str | StageFactory] | None] = None
    function_options: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # Just-in-time tools (agentrt.jit): set any of these and the agent starts with its
    # core tools (``tools`` + ``core_tools``) and activates the catalog's on demand.
    core_tools: ClassVar[Sequence[type[Tool] | Tool]] = ()
    tool_catalog: ClassVar[Sequence[str | type[Tool]]] = ()
    tool_config: ClassVar[JITConfig | Mapping[str, Any] | str | os.PathLike[str] | None] = None
    # MCP servers whose tools join the catalog (agentrt.mcp; needs agentrt[mcp]):
    # {"git": StdioServer(command="mcp-server-git", args=[...])}
    mcp_servers: ClassVar[Mapping[str, StdioServer | HTTPServer]] = {}
    # Typed answers (agentrt._output): RunResult.output is an instance of this pydantic
    # model, dataclass, TypedDict or union of them; output_retries (None: the setting)
    # bounds how often the model is asked again when its answer does not validate.
    output_type: ClassVar[Any] = None
    output_retries: ClassVar[int | None] = None
    _output_spec: ClassVar[OutputSpec[Any] | None] = None
    # Keeps long threads under the context window (agentrt.context; None: the settings').
    context_policy: ClassVar[ContextPolicy | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for field in ("max_iterations", "max_tokens"):
            value = getattr(cls, field)
            _check(cls, field, value, value is None or (type(value) is int and value > 0),
                   "a positive int")
        _check(cls, "usage_limits", cls.usage_limits,
               cls.usage_limits is None or isinstance(cls.usage_limits, UsageLimits),
               "a UsageLimits")
        _check(cls, "tool_timeout", cls.tool_timeout,
               cls.tool_timeout is None or (isinstance(cls.tool_timeout, int | float)
                                            and cls.tool_timeout > 0), "a positive number")
        _check(cls, "context_policy", cls.context_policy,
               cls.context_policy is None or isinstance(cls.context_policy, ContextPolicy),
               "a ContextPolicy")
        _check(cls, "eager_tools", cls.eager_tools,
               cls.eager_tools is None or isinstance(cls.eager_tools, bool), "a bool")
        for field in ("model", "system"):
            value = getattr(cls, field)
            _check(cls, field, value, value is None or isinstance(value, str), "a string")
        for name, fields in cls.function_options.items():
            unknown = set(fields) - _OVERRIDABLE
            _check(cls, f"function_options[{name!r}]", fields, not unknown,
                   f"only {', '.join(sorted(_OVERRIDABLE))}")
            flag = fields.get("requires_approval", False)
            _check(cls, f"function_options[{name!r}].requires_approval", flag,
                   isinstance(flag, bool), "true or false")
        for index, tool in enumerate(cls.tools):
            ok = isinstance(tool, Tool) or (inspect.isclass(tool) and issubclass(tool, Tool))
            _check(cls, f"tools[{index}]", tool, ok, "a Tool subclass or instance")
        for index, tool in enumerate(cls.core_tools):
            ok = isinstance(tool, Tool) or (inspect.isclass(tool) and issubclass(tool, Tool))
            _check(cls, f"core_tools[{index}]", tool, ok, "a Tool subclass or instance")
        if cls.mcp_servers:
            from .mcp import HTTPServer, StdioServer

            for name, server in cls.mcp_servers.items():
                _check(cls, f"mcp_servers[{name!r}]", server,
                       isinstance(server, StdioServer | HTTPServer),
                       "an agentrt.mcp.StdioServer or HTTPServer")
        if cls.tool_catalog or cls.tool_config is not None:
            _check_jit_attributes(cls)
        _check(cls, "output_retries", cls.output_retries, cls.output_retries is None or (
            type(cls.output_retries) is int and cls.output_retries >= 0), "an int >= 0")
        if "output_type" in vars(cls):
            cls._output_spec = None if cls.output_type is None else OutputSpec.of(
                cls.output_type, field=f"{cls.__name__}.output_type")

    def __init__(
        self,
        runtime: Runtime | None = None,
        *,
        identity: Mapping[str, str] | None = None,
        deps: Mapping[str, Any] | None = None,
        approval_policy: ApprovalPolicy | None = None,
    ) -> None:
        """``identity`` (account, tenant) scopes cached results and owns the threads this
        agent starts (only it may continue them, or approve their calls); ``deps`` reach
        tools through ``RunContext.deps``; ``approval_policy`` replaces the method."""
        self._owns_runtime = runtime is None
        self.runtime = runtime if runtime is not None else Runtime()
        self.identity = dict(identity or {})
        self.deps = dict(deps or {})
        self._policy: ApprovalPolicy = approval_policy or self.approval_policy
        self.registry = ToolRegistry(self._construct(tool) for tool in self.tools)
        self._manager = self._build_manager()
        if not self.identity:
            self._warn_shared_results()

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

    @property
    def tool_pipeline(self) -> Pipeline:
        """This agent's tool-call pipeline (its stages, their statistics)."""
        return self._manager.processor.pipeline

    def _warn_shared_results(self) -> None:
        """With no identity, a result is kept within its thread unless its function is
        public; with a shared cache, say once which functions every caller shares."""
        if "shared_cache" not in self.tool_pipeline.names:
            return
        public = sorted(spec.name for tool in self.registry
                        for spec in type(tool).functions().values()
                        if spec.read_only and spec.options.public)
        self.runtime.warn_once(
            ("shared_results", self.name), "agent.results_shared_across_callers",
            agent=self.name, functions=public,
            hint="this agent has no identity: these public functions' results are shared "
                 "with every caller of every process on this Redis; every other result stays "
                 "in its thread. Give the agent an identity to share per caller.")

    def _tool_provider(self) -> ToolProvider:
        """Where the loop gets each run's tools: this agent's fixed set, or the JIT loader."""
        if not self._jit():
            return self.registry
        from .jit._agent import build_loader

        return build_loader(self.name, identity=self.identity, deps=self.deps,
                            core=[*self.registry, *self.core_tools], catalog=self.tool_catalog,
                            config=self.tool_config, runtime=self.runtime,
                            mcp_servers=self.mcp_servers)

    def _jit(self) -> bool:
        return bool(self.core_tools or self.tool_catalog or self.mcp_servers
                    or self.tool_config is not None)

    def approval_policy(self, request: ApprovalRequest,
                        run: RunContext) -> Verdict | Awaitable[Verdict]:
        """Called for each call that requires approval, before a person is asked:
        ``"approve"`` runs it, ``"deny"`` refuses it, ``"ask"`` (this default) pauses the
        run for a person. ``run.identity`` is the caller's. May be ``async``."""
        return "ask"

    def _function_options(self) -> dict[str, dict[str, Any]]:
        """The agent's ``function_options``, with a JIT TOML's ``[function_options]`` on top."""
        merged = {name: dict(fields) for name, fields in self.function_options.items()}
        if self.tool_config is not None:
            from .jit.config import JITConfig

            config = JITConfig.coerce(self.tool_config, field=f"{self.name}.tool_config")
            for name, override in config.function_options.items():
                merged.setdefault(name, {}).update(override.model_dump(exclude_none=True))
        return merged

    def _build_manager(self) -> ThreadManager:
        settings = self.runtime.settings
        execute = Execute(timeout=self.tool_timeout or settings.tool_timeout,
                          max_result_chars=settings.max_result_chars)
        parallel = (settings.parallel_tools if self.parallel_tool_calls is None
                    else self.parallel_tool_calls)
        stages = list(self.pipeline if self.pipeline is not None
                      else configured_stages(settings))
        processor = ResponseProcessor(build_pipeline(stages, self.runtime.pipeline, execute),
                                      parallel=parallel, overrides=self._function_options())
        builder = RequestBuilder(model=self.model or settings.model,
                                 max_tokens=self.max_tokens or settings.max_tokens,
                                 system=self.system, prompt_caching=settings.prompt_caching,
                                 model_origin=self._model_origin)
        return ThreadManager(store=self.runtime.store, model=self.runtime.model, builder=builder,
                             processor=processor, tools=self._tool_provider(),
                             max_iterations=self.max_iterations or settings.max_iterations,
                             stream=settings.stream, limits=self._limits(None),
                             claims=self.runtime.claims,
                             claim_unowned_threads=settings.claim_unowned_threads,
                             approval_policy=self._policy,
                             approval_timeout=settings.approval_timeout,
                             telemetry=self.runtime.telemetry,
                             eager_tools=(settings.eager_tools if self.eager_tools is None
                                          else self.eager_tools),
                             background=self.runtime.task_group,
                             context=self._context_policy())

    def _context_policy(self) -> ContextPolicy | None:
        if self.context_policy is not None:
            return None if self.context_policy.strategy == "off" else self.context_policy
        settings = self.runtime.settings
        if settings.context_strategy == "off":
            return None
        return ContextPolicy(strategy=settings.context_strategy, budget=settings.context_budget,
                             budget_fraction=settings.context_budget_fraction,
                             edit_every=settings.context_edit_every,
                             keep_tool_results=settings.context_keep_tool_results,
                             windows=dict(settings.context_windows))


    def _model_origin(self) -> str:
        if self.model:
            owner = next(c for c in type(self).__mro__ if "model" in vars(c))
            return f"{owner.__name__}.model"
        return setting_origin(self.runtime.settings, "model")

    def _limits(self, given: UsageLimits | None) -> UsageLimits:
        """A run's limits: those given for the run, else the agent's, else the settings'."""
        settings = self.runtime.settings
        chosen = given or self.usage_limits or UsageLimits()
        return UsageLimits(
            input_tokens=chosen.input_tokens or settings.run_max_input_tokens,
            output_tokens=chosen.output_tokens or settings.run_max_output_tokens,
            tool_calls=chosen.tool_calls or settings.run_max_tool_calls)

    async def stream(self, task: str | list[ContentBlock], *, thread_id: str | None = None,
                     usage_limits: UsageLimits | None = None, approve: Sequence[str] = (),
                     deny: Mapping[str, str] | None = None, output_type: Any = None,
                     ) -> AsyncGenerator[RunEvent, None]:
        """Events as they happen; the last is ``RunFinished`` carrying the result.

        Stopping early (``break``) is safe: the thread is consistent at every event.
        Close the iterator (``contextlib.aclosing``) to release it promptly.
        ``approve``/``deny`` decide calls the thread has pending first (see
        :meth:`resume`); pending calls left undecided are denied: the user moved on.
        A typed run (``output_type``, see :meth:`run`) also yields ``PartialOutput``.
        """
        async with aclosing(self._events(task, thread_id, usage_limits, approve,
                                          deny, output_type)) as events:
            async for event in events:
                yield event

    async def resume_stream(self, thread_id: str, *, approve: Sequence[str] = (),
                            deny: Mapping[str, str] | None = None,
                            usage_limits: UsageLimits | None = None, output_type: Any = None,
                            ) -> AsyncGenerator[RunEvent, None]:
        """:meth:`resume`, as events (the approved calls' ``ToolCallFinished`` first)."""
        async with aclosing(self._events(None, thread_id, usage_limits, approve,
                                          deny, output_type)) as events:
            async for event in events:
                yield event

    @overload
    async def resume(self, thread_id: str, *, approve: Sequence[str] = (),
                     deny: Mapping[str, str] | None = None,
                     usage_limits: UsageLimits | None = None,
                     output_type: type[T]) -> RunResult[T]: ...
    @overload
    async def resume(self, thread_id: str, *, approve: Sequence[str] = (),
                     deny: Mapping[str, str] | None = None,
                     usage_limits: UsageLimits | None = None,
                     output_type: object = None) -> RunResult: ...
    async def resume(self, thread_id: str, *, approve: Sequence[str] = (),
                     deny: Mapping[str, str] | None = None,
                     usage_limits: UsageLimits | None = None,
                     output_type: Any = None) -> RunResult:
        """Continue a run that stopped with ``stop_reason="approval_required"``, in this
        process or any other: ``approve`` (call ids) run, exactly once; ``deny`` (call id
        -> reason) are answered to the model as refused, with the reason; then the loop
        goes on. Every pending call must be decided; an id that is not pending is an
        :class:`ApprovalError`, and so is a call already decided otherwise. Only this
        agent's identity, if it owns the thread, may decide (``ThreadOwnerError``).
        ``output_type``: as for :meth:`run`."""
        return await self._result(self._events(None, thread_id, usage_limits, approve, deny,
                                               output_type))

    async def pending(self, thread_id: str) -> list[PendingCall]:
        """The calls of ``thread_id`` waiting for a person (``ThreadOwnerError`` unless
        this agent's identity owns the thread)."""
        from ._approvals import pending_calls

        return await pending_calls(self.runtime.store, thread_id, identity=self.identity)

    def _events(self, task: str | list[ContentBlock] | None, thread_id: str | None,
                usage_limits: UsageLimits | None, approve: Sequence[str] = (),
                deny: Mapping[str, str] | None = None,
                output_type: Any = None) -> AsyncGenerator[RunEvent, None]:
        output = self._output_check(output_type)
        elsewhere = self.runtime.dispatch(self.name, self.identity, task, thread_id=thread_id,
                                          limits=None if usage_limits is None
                                          else self._limits(usage_limits),
                                          approve=approve, deny=deny or {})
        if elsewhere is not None:  # a durable run (agentrt.temporal)
            if output is not None:
                raise ConfigError(f"{type(self).__name__}: typed answers (output_type) are not "
                                  "supported on a TemporalRuntime yet; run the agent on a "
                                  "Runtime, or leave output_type unset")
            return elsewhere
        return self._manager.run(task, thread_id=thread_id, agent=self.name,
                                 identity=self.identity, deps=self.deps,
                                 limits=None if usage_limits is None
                                 else self._limits(usage_limits),
                                 approve=list(approve), deny=dict(deny or {}), output=output)

    def _output_check(self, output_type: Any) -> OutputCheck[Any] | None:
        """A typed run's check: ``output_type`` given for the run, else the agent's."""
        spec = (self._output_spec if output_type is None
                else OutputSpec.of(output_type, field="output_type"))
        if spec is None:
            return None
        retries = self.output_retries
        return OutputCheck(spec, self.runtime.settings.output_retries if retries is None
                           else retries)

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

    @overload
    async def run(self, task: str | list[ContentBlock], *, thread_id: str | None = None,
                  usage_limits: UsageLimits | None = None, approve: Sequence[str] = (),
                  deny: Mapping[str, str] | None = None,
                  output_type: type[T]) -> RunResult[T]: ...
    @overload
    async def run(self, task: str | list[ContentBlock], *, thread_id: str | None = None,
                  usage_limits: UsageLimits | None = None, approve: Sequence[str] = (),
                  deny: Mapping[str, str] | None = None,
                  output_type: object = None) -> RunResult: ...
    async def run(self, task: str | list[ContentBlock], *, thread_id: str | None = None,
                  usage_limits: UsageLimits | None = None, approve: Sequence[str] = (),
                  deny: Mapping[str, str] | None = None,
                  output_type: Any = None) -> RunResult:
        """Run ``task`` to its end; ``usage_limits`` bound this run (see :class:`UsageLimits`).

        It may end early with ``stop_reason="approval_required"``: see :meth:`resume`.
        ``approve``/``deny`` decide the thread's pending calls before ``task`` is added;
        any left undecided are denied ("the user moved on").

        ``output_type`` (for this run; else the agent's ``output_type``) makes the answer
        typed: ``RunResult.output`` is a validated instance (see ``agentrt._output``), or
        :class:`OutputValidationError` once ``output_retries`` are spent."""
        return await self._result(self._events(task, thread_id, usage_limits, approve, deny,
                                               output_type))

    async def _result(self, stream: AsyncGenerator[RunEvent, None]) -> RunResult:
        # the loop's own events, not stream()'s re-yield: one generator hop fewer per event
        with async_library_told():
            async with aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, RunFinished):
                        return event.result
        raise AgentRtError("the run ended without a result")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the runtime if the agent opened it itself (none was given)."""
        if self._owns_runtime:
            await self.runtime.aclose()

