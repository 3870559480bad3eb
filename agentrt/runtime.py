"""Runtime: what every agent of a process shares (SDK client, thread store, settings).

An application embedding agentrt opens one Runtime and hands it to every Agent, so
connections are pooled and closed once. An Agent made without one opens its own.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Self

import anthropic
import anyio

from ._errors import ConfigError
from ._redis import RedisGate
from .llm._client import ModelClient
from .pipeline._builder import PipelineResources
from .pipeline.shared_cache import listen_for_invalidations
from .settings import Settings, effective_pipeline, effective_thread_store, load_settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from anyio.abc import TaskGroup

    from .jit.cache import CatalogCache
    from .thread._store import ThreadStore

__all__ = ["Runtime"]


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

        return RedisThreadStore(redis, ttl=settings.thread_ttl)
    from .thread.sqlite import SQLiteThreadStore

    return SQLiteThreadStore(settings.sqlite_path)


def _redis_from(settings: Settings) -> RedisGate | None:
    if settings.redis_url is None:
        return None
    return RedisGate(settings.redis_url.get_secret_value(), prefix=settings.redis_prefix,
                     timeout=settings.redis_timeout, cluster=settings.redis_cluster,
                     retry_after=settings.redis_retry_after)


def _client_from(settings: Settings) -> anthropic.AsyncAnthropic:
    """Unset settings leave the SDK's own ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL lookup alone."""
    kwargs: dict[str, Any] = {"max_retries": settings.llm_max_retries,
                              "timeout": settings.llm_timeout}
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
        store: ThreadStore | None = None,
    ) -> None:
        """``client`` and ``store`` given here stay the caller's to close."""
        self.settings = settings or load_settings()
        # First: a missing API key fails here, before anything needing a close is opened.
        self.model = (ModelClient(client, max_retry_wait=self.settings.llm_max_retry_wait)
                      if client is not None else
                      ModelClient(_client_from(self.settings), owned=True,
                                  max_retry_wait=self.settings.llm_max_retry_wait))
        self.redis = _redis_from(self.settings)
        self._owns_store = store is None
        self.store = store if store is not None else _store_from(self.settings, self.redis)
        self.pipeline = PipelineResources.from_settings(self.settings, spawn=self._spawn,
                                                        redis=self.redis)
        self._tasks: TaskGroup | None = None
        self._exit = AsyncExitStack()
        self._closed = False
        self._catalogs: CatalogCache | None = None

    @property
    def catalogs(self) -> CatalogCache:
        """What this runtime's JIT agents share (manifests read, catalogs built), made
        on first use, so that the Runtime itself does not import ``agentrt.jit``."""
        if self._catalogs is None:
            from .jit.cache import CatalogCache

            self._catalogs = CatalogCache()
        return self._catalogs

    def _spawn(self, fn: Callable[[], Awaitable[None]]) -> bool:
        if self._tasks is None:
            return False
        self._tasks.start_soon(_call, fn)
        return True

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._tasks is not None:
                self._tasks.cancel_scope.cancel()
                self._tasks = None
                await self._exit.aclose()
        finally:
            try:
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
        if self.redis is not None and "shared_cache" in effective_pipeline(self.settings):
            self._tasks.start_soon(listen_for_invalidations, self.redis,
                                   self.pipeline.local_cache)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
