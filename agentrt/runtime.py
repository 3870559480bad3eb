"""Runtime: what every agent of a process shares (SDK client, thread store, settings).

An application embedding agentrt opens one Runtime and hands it to every Agent, so
connections are pooled and closed once. An Agent made without one opens its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import anthropic

from .llm._client import ModelClient
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from types import TracebackType

    from .thread._store import ThreadStore

__all__ = ["Runtime"]


def _store_from(settings: Settings) -> ThreadStore:
    if settings.thread_store == "memory":
        from .thread.memory import MemoryThreadStore

        return MemoryThreadStore()
    from .thread.sqlite import SQLiteThreadStore

    return SQLiteThreadStore(settings.sqlite_path)


def _client_from(settings: Settings) -> anthropic.AsyncAnthropic:
    """Unset settings leave the SDK's own ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL lookup alone."""
    kwargs: dict[str, Any] = {"max_retries": settings.llm_max_retries,
                              "timeout": settings.llm_timeout}
    if settings.anthropic_api_key is not None:
        kwargs["api_key"] = settings.anthropic_api_key.get_secret_value()
    if settings.anthropic_base_url:
        kwargs["base_url"] = settings.anthropic_base_url
    return anthropic.AsyncAnthropic(**kwargs)


class Runtime:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: anthropic.AsyncAnthropic | None = None,
        store: ThreadStore | None = None,
    ) -> None:
        """``client`` and ``store`` given here stay the caller's to close."""
        self.settings = settings or load_settings()
        self._owns_store = store is None
        self.store = store if store is not None else _store_from(self.settings)
        self.model = (ModelClient(client) if client is not None
                      else ModelClient(_client_from(self.settings), owned=True))
        self._closed = False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.model.aclose()
        finally:
            if self._owns_store:
                await self.store.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
