"""Shared cache: read-only results in Redis, for every process, scoped by tenant.

Layout (``p`` is the prefix; ``{...}`` is a Redis Cluster hash tag)::

    p:v:<namespace>:{<call key>}     the result (JSON), with a TTL
    p:tagv:{tags}:<tag>              a counter per cache tag (one slot: MGET works)
    p:invalidate                     a channel: tags invalidated, for local caches

Invalidation never deletes keys (no KEYS/SCAN storms): a write bumps its tags'
counters, and a result stored under older counters is stale on read. Every
process's local cache drops those tags when it hears of it on the channel.
Redis failing or slow makes this stage step aside (see ``RedisGate``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from redis.exceptions import ResponseError

from .._errors import BackendUnavailableError
from .._redis import execute
from ..log import get_logger
from ._invalidations import bump_tags, generation_key, tag_key
from ._redis_codec import decode_outcome, encode_outcome, namespace, other_format, tag_versions
from ._stage import Stage

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._redis import RedisGate
    from ._invalidations import PendingInvalidations
    from ._lru import TTLCache
    from ._types import CallContext, ToolCall, ToolHandler, ToolOutcome

__all__ = ["SharedCache", "SharedCacheStatistics", "listen_for_invalidations"]

log = get_logger("agentrt.tool")


@dataclass(frozen=True, slots=True)
class SharedCacheStatistics:
    """``unavailable``: reads that found Redis down (the call went on without it);
    ``invalidations_lost``: tag bumps Redis did not take."""

    answered: int
    misses: int
    writes: int
    skipped: int
    unavailable: int
    invalidations: int
    invalidations_lost: int


def value_key(gate: RedisGate, call: ToolCall, identity: dict[str, str]) -> str:
    assert call.key is not None
    return gate.key("v", namespace(identity, call.options.public), "{" + call.key + "}")


class SharedCache(Stage):
    """Read-only results in Redis for every process, per tenant."""

    name = "shared_cache"

    def __init__(self, next_handler: ToolHandler, gate: RedisGate, *, default_ttl: float,
                 max_bytes: int, pending: PendingInvalidations) -> None:
        """``pending``: the runtime's invalidations Redis has not taken yet."""
        super().__init__(next_handler)
        self.gate = gate
        self.pending = pending
        self.misses = self.writes = self.skipped = self.unavailable = 0
        self.invalidations = self.invalidations_lost = 0
        self.default_ttl = default_ttl
        self.max_bytes = max_bytes
        self._format_logged = False

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        if call.key is None:
            return await self.pass_side_effect(call, ctx)
        if call.options.scope != "shared":
            return await self.next(call, ctx)
        if self.pending and not await self.pending.flush(self.gate):
            # writes Redis has not heard of: what it holds may predate them
            self.unavailable += 1
            return await self.next(call, ctx)
        key = value_key(self.gate, call, dict(ctx.run.identity))
        tags = call.options.cache_tags
        try:
            raw, counters = await self.gate.run(lambda r: self._read(r, key, tags),
                                                what="shared cache get")
        except BackendUnavailableError:
            self.unavailable += 1
            return await self.next(call, ctx)
        versions = tag_versions(tags, counters)
        found = None if isinstance(raw, Exception) else decode_outcome(call.key, raw)
        if found is not None and found[1] == versions:
            return self.answer(call, ctx, found[0])
        self.misses += 1
        if versions is None:
            log.warning("tool.shared_corrupt", key=tag_key(self.gate, ",".join(tags)),
                        function=call.name, what="tag counter", action="not cached")
        elif raw is not None and found is None:
            self._foreign(raw, key, call)
        outcome = await self.next(call, ctx)
        if versions is not None:  # an unreadable tag counter: nothing can be stored safely
            await self._write(call, key, outcome, versions)
        return outcome

    def _foreign(self, raw: bytes | Exception, key: str, call: ToolCall) -> None:
        """A value that is not a result for this key: a miss, then overwritten."""
        if other_format(raw):
            if not self._format_logged:  # an upgrade in progress: once is enough
                self._format_logged = True
                log.info("tool.shared_other_format", key=key, function=call.name,
                         action="replaced")
            return
        log.warning("tool.shared_corrupt", key=key, function=call.name, what="value",
                    action="replaced")

    async def _read(self, r: Any, key: str, tags: Sequence[str]
                    ) -> tuple[bytes | Exception | None, list[Any]]:
        """The value and the raw tag counters. A key of another type (WRONGTYPE) is
        returned as its error: it says nothing about Redis being down."""
        if not tags:
            try:
                return await r.get(key), []
            except ResponseError as exc:
                return exc, []
        pipe = r.pipeline(transaction=False)  # one round trip (cluster pipelines refuse MGET)
        pipe.get(key)
        for tag in tags:
            pipe.get(tag_key(self.gate, tag))
        raw, *counters = await execute(pipe, raise_on_error=False)
        return raw, counters

    async def _write(self, call: ToolCall, key: str, outcome: ToolOutcome,
                     versions: dict[str, int]) -> None:
        assert call.key is not None
        if not outcome.cacheable(call.options):
            return
        payload = encode_outcome(call.key, outcome.answered_by("executed"), versions)
        if len(payload) > self.max_bytes:
            self.skipped += 1
            log.info("tool.shared_skip", function=call.name, bytes=len(payload),
                     limit=self.max_bytes, reason="larger than shared_cache_max_bytes")
            return
        ttl_ms = max(1, int((outcome.ttl(call.options) or self.default_ttl) * 1000))
        try:
            await self.gate.run(lambda r: r.set(key, payload, px=ttl_ms),
                                what="shared cache set")
        except BackendUnavailableError:
            return
        self.writes += 1

    def statistics(self) -> SharedCacheStatistics:
        return SharedCacheStatistics(self.answered, self.misses, self.writes, self.skipped,
                                     self.unavailable, self.invalidations,
                                     self.invalidations_lost)

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        """Bumps the tags' counters (every stored result under them is then stale, in
        every process) and tells the other processes' local caches. If Redis cannot
        take it now, the tags wait in ``pending`` until it can."""
        try:
            # shielded: a cancelled write may have happened too (gate.run has a timeout)
            with anyio.CancelScope(shield=True):
                await self.gate.run(lambda r: bump_tags(self.gate, r, list(tags),
                                                        generation=False),
                                    what="shared cache invalidate")
            self.invalidations += 1
        except BackendUnavailableError:
            self.invalidations_lost += 1
            self.pending.add(tags)
            log.warning("tool.invalidate_pending", tags=list(tags),
                        reason="redis unavailable; applied when it answers again")


def _generation(raw: Any) -> int:
    """The generation as stored: 0 before the first flush, -1 for a value that is not a
    number (not ours: a changed value, so the safe answer, dropping the cache)."""
    try:
        return 0 if raw is None else int(raw)
    except (TypeError, ValueError):
        return -1


async def listen_for_invalidations(gate: RedisGate, local: TTLCache[ToolOutcome],
                                   pending: PendingInvalidations, *,
                                   retry_after: float = 1.0) -> None:
    """Runs for the runtime's lifetime: other processes' invalidations reach this
    process's local cache. On every (re)connection it first gives Redis the
    invalidations it missed, then reads the generation: a change means flushes it may
    not have heard of, and the local cache is dropped whole. While it listens it tries
    again every ``retry_after`` to hand over what is still pending (a stalled Redis
    does not break the subscription). Reconnects after a failure; never raises (but
    cancellation)."""
    channel = gate.key("invalidate")
    while True:
        try:
            async with gate.subscribed(channel) as pubsub:
                await pending.flush(gate)
                raw = await gate.run(lambda r: r.get(generation_key(gate)),
                                     what="invalidation generation")
                if pending.changed(_generation(raw)):
                    dropped = len(local)
                    local.clear()
                    log.warning("tool.local_cache_cleared", entries=dropped,
                                reason="invalidations made while this process was not "
                                       "listening")
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=min(5.0, retry_after))
                    if pending:  # a stalled Redis keeps this connection: try again now
                        await pending.flush(gate)
                    if message is None:
                        continue
                    try:
                        tags = json.loads(message["data"])
                    except (ValueError, TypeError):
                        continue
                    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
                        local.invalidate(tags)
        except Exception as exc:
            if not isinstance(exc, BackendUnavailableError):
                gate.trip(exc, "invalidation listener")
        await anyio.sleep(retry_after)
