"""Local cache: read-only results shared by every thread of this process, with a TTL.

With a stale-while-revalidate window, an expired result is still served for that
long while one background refresh runs (RFC 5861); past it, never.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ._stage import Stage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._invalidations import PendingInvalidations
    from ._lru import CacheStatistics, TTLCache
    from ._types import CallContext, ToolCall, ToolHandler, ToolOutcome

__all__ = ["LocalCache"]


class LocalCache(Stage):
    """Read-only results shared by every thread of this process (TTL, LRU, bounded)."""

    name = "local_cache"
    scopes = frozenset({"process", "shared"})

    def __init__(self, next_handler: ToolHandler, store: TTLCache[ToolOutcome], *,
                 default_ttl: float, stale_while_revalidate: float = 0.0,
                 spawn: Callable[[Callable[[], Awaitable[None]]], bool] | None = None,
                 pending: PendingInvalidations | None = None) -> None:
        """``spawn`` starts a background task (False if it cannot): needed for refreshes.
        ``pending``: invalidations Redis has not taken yet; results under their tags are
        neither served nor kept until it has."""
        super().__init__(next_handler)
        self.pending = pending
        self.store = store
        self.default_ttl = default_ttl
        self.stale = stale_while_revalidate if spawn is not None else 0.0
        self.spawn = spawn

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        key = call.key
        if key is None:
            return await self.pass_side_effect(call, ctx)
        if call.options.scope not in self.scopes or (
                self.pending and self.pending.blocks(call.options.cache_tags)):
            return await self.next(call, ctx)
        found = self.store.get(key)
        if found is not None:
            if found.fresh:
                return self.answered_from_store(call, ctx, found.value)
            if found.refreshing:
                return self.answered_from_store(call, ctx, found.value, fresh=False)
            # Stale: served only while one background refresh runs. With nowhere to run
            # it (the runtime was not entered), it is a miss, refreshed inline.
            found.refreshing = self.spawn is not None and self.spawn(
                lambda: self._refresh(call, ctx))
            if found.refreshing:
                return self.answered_from_store(call, ctx, found.value, fresh=False)
        outcome = await self.next(call, ctx)
        self._store(call, ctx, outcome)
        return outcome

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        self.store.invalidate(tags)

    def statistics(self) -> CacheStatistics:
        """The process-wide cache's counters (shared by every agent of the runtime)."""
        return self.store.statistics()

    async def _refresh(self, call: ToolCall, ctx: CallContext) -> None:
        self._store(call, ctx, await self.next(call, ctx))

    def _store(self, call: ToolCall, ctx: CallContext, outcome: ToolOutcome) -> None:
        if call.key is None or not outcome.cacheable(call.options):
            return
        ttl = outcome.ttl(call.options) or self.default_ttl
        stored = self.store.set(call.key, self.attributed(outcome), ttl=ttl,
                                size=outcome_size(outcome),
                                stale=0.0 if outcome.is_error else self.stale,
                                tags=call.options.cache_tags)
        if not stored:
            ctx.log.info("tool.cache_skip", stage=self.name, function=call.name,
                         reason="larger than the cache", size=outcome_size(outcome))


def outcome_size(outcome: ToolOutcome) -> int:
    """What an outcome costs a cache, in characters (about): its text, or all its blocks
    (an image's data included) when it has blocks."""
    if outcome.blocks is None:
        return len(outcome.content) + 64
    return len(json.dumps(outcome.blocks, ensure_ascii=False)) + 64
