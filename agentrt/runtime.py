"""Runtime: what every agent of a process shares (SDK client, thread store, settings).

An application embedding agentrt opens one Runtime and hands it to every Agent, so
connections are pooled and closed once. An Agent made without one opens its own.
"""

from __future__ import annotations

import functools
import inspect
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Self

import anyio

from ._errors import ConfigError, UsageError
from .log import get_logger
from .pipeline._builder import PipelineResources, configured_stages
from .settings import Settings, effective_thread_store, load_settings, setting_origin
from .thread._claims import ThreadClaims

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
    from types import TracebackType

    import anthropic
    from anyio.abc import TaskGroup
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._events import RunEvent
    from ._redis import RedisGate
    from .jit.cache import CatalogCache
    from .llm._model import Model
    from .llm._usage import UsageLimits
    from .mcp._session import MCPServers
    from .telemetry import Telemetry
    from .thread._messages import ContentBlock
    from .thread._store import ThreadStore

__all__ = ["Runtime"]

log = get_logger("agentrt.runtime")


def _store_from(settings: Settings, redis: RedisGate | None) -> ThreadStore:
    kind = effective_thread_store(settings)
    if kind == "memory":
        from .thread.memory import MemoryThreadStore

        return MemoryThreadStore()
    if kind == "redis":
        if redis is None:
            raise ConfigError("the redis thread store needs AGENTRT_REDIS_URL",
                              field="AGENTRT_THREAD_STORE")
        from .thread.redis import RedisThreadStore

        return RedisThreadStore(redis, ttl=settings.thread_ttl,
                                retry_for=settings.redis_store_retry_for)
    from .thread.sqlite import SQLiteThreadStore

    return SQLiteThreadStore(settings.sqlite_path)


def _redis_from(settings: Settings) -> RedisGate | None:
    if settings.redis_url is None:
        return None
    from ._redis import RedisGate  # redis-py is loaded only when Redis is configured

    return RedisGate(settings.redis_url.get_secret_value(), prefix=settings.redis_prefix,
                     timeout=settings.redis_timeout, cluster=settings.redis_cluster,
                     retry_after=settings.redis_retry_after)


def _client_from(settings: Settings, *, traced: bool) -> anthropic.AsyncAnthropic:
    """Unset settings leave the SDK's own ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL lookup alone.

    ``traced``: agentrt makes the ``chat`` spans, so the SDK's own are turned off (one
    span per model request)."""
    import anthropic  # the SDK is loaded by the first Runtime, not by `import agentrt`

    kwargs: dict[str, Any] = {"max_retries": settings.llm_max_retries,
                              "timeout": settings.llm_timeout}
    if traced and "open_telemetry" in inspect.signature(anthropic.AsyncAnthropic).parameters:
        kwargs["open_telemetry"] = False  # (an SDK older than the option makes no spans)
    if settings.anthropic_api_key is not None:
        kwargs["api_key"] = settings.anthropic_api_key.get_secret_value()
    if settings.anthropic_base_url:
        kwargs["base_url"] = settings.anthropic_base_url
    client = anthropic.AsyncAnthropic(**kwargs)
    # The SDK would only find out at the first request, mid-run, with a TypeError.
    if not (client.api_key or client.auth_token or getattr(client, "_token_cache", None)):
        raise ConfigError("no API key: set ANTHROPIC_API_KEY (or AGENTRT_ANTHROPIC_API_KEY), "
                          "or pass Runtime(client=...)", field="AGENTRT_ANTHROPIC_API_KEY")
    return client


def _key_origin(settings: Settings) -> str:
    """Where the key of a client built from ``settings`` came from (a 401 names it)."""
    if settings.anthropic_api_key is not None:
        return setting_origin(settings, "anthropic_api_key", ["ANTHROPIC_API_KEY"])
    return "the environment variable ANTHROPIC_AUTH_TOKEN (the SDK's own lookup)"


def _sdk_traces_to(client: anthropic.AsyncAnthropic, provider: TracerProvider) -> bool:
    """Whether the SDK client makes its own model spans (its ``open_telemetry`` option)
    into ``provider``: then agentrt makes none, so a request has one span, not two."""
    from opentelemetry import trace

    try:
        option = client.open_telemetry
        enabled = bool(option["traces"]["enabled"])
    except (AttributeError, KeyError, TypeError):  # an SDK without the option
        return False
    return enabled and (option.get("tracer_provider") or trace.get_tracer_provider()) is provider


def _telemetry_from(settings: Settings, tracer_provider: TracerProvider | None,
                    meter_provider: MeterProvider | None,
                    client: anthropic.AsyncAnthropic | None) -> Telemetry | None:
    """None unless a provider is configured: then nothing of OpenTelemetry is touched."""
    if settings.otel:
        from opentelemetry import metrics, trace

        tracer_provider = tracer_provider or trace.get_tracer_provider()
        meter_provider = meter_provider or metrics.get_meter_provider()
    if tracer_provider is None and meter_provider is None:
        return None
    from .telemetry import Telemetry

    return Telemetry(tracer_provider, meter_provider,
                     capture_content=settings.otel_capture_content,
                     chat_spans=client is None or tracer_provider is None
                     or not _sdk_traces_to(client, tracer_provider))


async def _call(fn: Callable[[], Awaitable[None]]) -> None:
    await fn()


class Runtime:
    """Enter it (``async with``) to give the pipeline a background task group
    (stale-while-revalidate refreshes); without it those are simply not run."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        model: Model | None = None,
        store: ThreadStore | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        """``client``, ``model`` and ``store`` given here stay the caller's to close.

        ``model`` replaces the SDK path altogether (no client, no API key needed): an
        in-process double such as ``agentrt.testing.ScriptedModel`` for unit tests.
        ``tracer_provider`` / ``meter_provider``: OpenTelemetry spans and metrics go
        there (the global providers with the setting ``otel``); with neither, none are
        made. A ``client`` whose own OpenTelemetry spans go to the same tracer provider
        keeps them, and agentrt makes no ``chat`` span of its own; a client the runtime
        makes has its spans off (see docs/concepts/observability.md)."""
        from .llm._client import ModelClient  # the SDK is loaded by the first Runtime

        if client is not None and model is not None:
            raise UsageError("Runtime: pass client= (an SDK client) or model= (a Model), "
                             "not both")
        self.settings = settings or load_settings()
        self.telemetry = _telemetry_from(self.settings, tracer_provider, meter_provider, client)
        traced = self.telemetry is not None and self.telemetry.chat_spans
        # First: a missing API key fails here, before anything needing a close is opened.
        self._owns_model = model is None
        self.model: Model = (
            model if model is not None else
            ModelClient(client, max_retry_wait=self.settings.llm_max_retry_wait,
                        key_origin=lambda: "the client given to Runtime(client=...)")
            if client is not None else
            ModelClient(_client_from(self.settings, traced=traced), owned=True,
                        max_retry_wait=self.settings.llm_max_retry_wait,
                        key_origin=lambda: _key_origin(self.settings)))
        self.redis = _redis_from(self.settings)
        self._owns_store = store is None
        self.store = store if store is not None else _store_from(self.settings, self.redis)
        # one per runtime: runs of all its agents on one thread queue together; claims
        # are renewed in the background while the runtime is entered
        self.claims = ThreadClaims(self.store, lease=self.settings.thread_lease,
                                   wait=self.settings.thread_wait,
                                   queue=self.settings.thread_queue, spawn=self._spawn)
        self.pipeline = PipelineResources.from_settings(self.settings, spawn=self._spawn,
                                                        redis=self.redis)
        self._tasks: TaskGroup | None = None
        self._warned: set[object] = set()
        self._exit = AsyncExitStack()
        self._closed = False
        self._catalogs: CatalogCache | None = None
        self._mcp: MCPServers | None = None

    @property
    def catalogs(self) -> CatalogCache:
        """What this runtime's JIT agents share (manifests read, catalogs built), made
        on first use, so that the Runtime itself does not import ``agentrt.jit``."""
        if self._catalogs is None:
            from .jit.cache import CatalogCache

            self._catalogs = CatalogCache()
        return self._catalogs

    @property
    def mcp(self) -> MCPServers:
        """This runtime's MCP server connections (one session per server, shared by every
        run), made on first use; closing the runtime stops every server it started."""
        if self._mcp is None:
            from .mcp._session import MCPServers

            self._mcp = MCPServers()
        return self._mcp

    def warn_once(self, key: object, event: str, **fields: Any) -> None:
        """Log ``event`` at warning the first time ``key`` is seen by this runtime."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(event, **fields)

    def dispatch(self, agent: str, identity: Mapping[str, str],
                 task: str | list[ContentBlock] | None, *, thread_id: str | None,
                 limits: UsageLimits | None, approve: Sequence[str],
                 deny: Mapping[str, str]) -> AsyncGenerator[RunEvent, None] | None:
        """Where runs of this runtime's agents (``agent`` by name) execute: None here,
        in this process (the loop); a runtime that runs them elsewhere
        (``agentrt.temporal.TemporalRuntime``) returns the run's events."""
        return None

    def task_group(self) -> TaskGroup | None:
        """The runtime's own task group while it is entered (else None): for tasks that
        must not live in a generator's frame, such as a run's eager tool calls, which
        then survive a consumer that drops ``Agent.stream`` without closing it."""
        return self._tasks

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> bool:
        if self._tasks is None:
            return False
        self._tasks.start_soon(_call, fn)
        return True

    async def aclose(self) -> None:
        """Stop the background tasks and close the store, Redis and the model client.
        Idempotent; ``async with Runtime()`` calls it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._mcp is not None:
                await self._mcp.aclose()
            if self._tasks is not None:
                self._tasks.cancel_scope.cancel()
                self._tasks = None
                await self._exit.aclose()
        finally:
            try:
                if self._owns_model:
                    await self.model.aclose()
            finally:
                try:
                    if self._owns_store:
                        await self.store.aclose()
                finally:
                    if self.redis is not None:
                        await self.redis.aclose()

    async def __aenter__(self) -> Self:
        self._tasks = await self._exit.enter_async_context(anyio.create_task_group())
        pending = self.pipeline.pending
        if (self.redis is not None and pending is not None
                and "shared_cache" in configured_stages(self.settings)):
            from .pipeline.shared_cache import listen_for_invalidations

            self._tasks.start_soon(functools.partial(
                listen_for_invalidations, self.redis, self.pipeline.local_cache, pending,
                retry_after=self.settings.redis_retry_after))
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
