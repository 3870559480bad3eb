"""Local cache: read-only results shared by every thread of this process, with a TTL.

With a stale-while-revalidate window, an expired result is still served for that
long while one background refresh runs (RFC 5861); past it, never.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._events import log, log_hit
from ._types import pass_side_effect

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._lru import TTLCache
    from ._types import CallContext, ToolCall, ToolHandler, ToolOutcome

__all__ = ["LocalCache"]




class LocalCache:
    name = "local"
    scopes = frozenset({"process", "shared"})

    def __init__(self, next_handler: ToolHandler, store: TTLCache[ToolOutcome], *,
                 default_ttl: float, stale_while_revalidate: float = 0.0,
                 spawn: Callable[[Callable[[], Awaitable[None]]], bool] | None = None) -> None:
        """``spawn`` starts a background task (False if it cannot): needed for refreshes."""
        self.next = next_handler
        self.store = store
        self.default_ttl = default_ttl
        self.stale = stale_while_revalidate if spawn is not None else 0.0
        self.spawn = spawn

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        key = call.key
        if key is None:
            return await pass_side_effect(self, call, ctx)
        if call.options.scope not in self.scopes:
            return await self.next(call, ctx)
        found = self.store.get(key)
        if found is not None and not found.fresh and not found.entry.refreshing:
            # Stale: served only while one background refresh runs. With nowhere to run
            # it (the runtime was not entered), it is a miss, refreshed inline.
            spawned = self.spawn is not None and self.spawn(lambda: self._refresh(call, ctx))
            found.entry.refreshing = spawned
            if not spawned:
                found = None
        if found is not None:
            log_hit(ctx, self.name, call, fresh=found.fresh)
            return found.value.answered_by(self.name)
        outcome = await self.next(call, ctx)
        self._store(call, outcome)
        return outcome

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        self.store.invalidate(tags)

    async def _refresh(self, call: ToolCall, ctx: CallContext) -> None:
        self._store(call, await self.next(call, ctx))

    def _store(self, call: ToolCall, outcome: ToolOutcome) -> None:
        if call.key is None or not outcome.cacheable(call.options):
            return
        ttl = outcome.ttl(call.options) or self.default_ttl
        stored = self.store.set(call.key, outcome, ttl=ttl, size=len(outcome.content) + 64,
                                stale=0.0 if outcome.is_error else self.stale,
                                tags=call.options.cache_tags)
        if not stored:
            log.info("tool.cache_skip", stage=self.name, function=call.name,
                     reason="larger than the cache", chars=len(outcome.content))
