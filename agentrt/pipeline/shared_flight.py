"""Cross-process single-flight: one execution of a read-only call across every process.

Behind the in-process single-flight, so each process sends at most one caller per
key here. The first to ``SET lease token NX PX`` leads: it renews the lease while
the call runs and, when it ends, publishes the outcome (success or error) with
one fenced script that only a holder of the lease can run. The others subscribe
to the key's channel, then look for the outcome (so no wake-up is lost), and
wait. If the leader dies its lease expires and a waiter takes over; a waiter
that waits longer than the call's own timeout runs the call itself (and says so).
With tracing on, the lease's token carries the leader's W3C ``traceparent`` after
its random part, so a waiter in another process links its span to the leader's.

    p:lease:{<key>}    the lease (token)          p:done:{<key>}  the channel
    p:res:{<key>}      the outcome, briefly
"""

from __future__ import annotations

import contextlib
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .._errors import BackendUnavailableError
from ..log import get_logger
from ._invalidations import tag_key
from ._redis_codec import decode_outcome, encode_outcome, tag_versions
from ._stage import Stage

if TYPE_CHECKING:
    from .._redis import RedisGate
    from ._types import CallContext, ToolCall, ToolHandler, ToolOutcome

__all__ = ["SharedFlight", "SharedFlightStatistics"]

log = get_logger("agentrt.tool")


@dataclass(frozen=True, slots=True)
class SharedFlightStatistics:
    """``took_over``: flights whose leader died; ``timed_out``: waits that ran out and
    executed here."""

    answered: int
    led: int
    joined: int
    took_over: int
    timed_out: int

# KEYS: lease, result, channel. ARGV: token, payload, result ttl ms.
_FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', KEYS[3], '1')
return 1
"""
# KEYS: lease, result. ARGV: token, ttl ms. A finished flight's outcome, or 1 if the
# lease was taken, or {0, the holder's token} if someone else holds it.
_CLAIM = """
local done = redis.call('GET', KEYS[2])
if done then return done end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return {0, redis.call('GET', KEYS[1]) or ''}
"""
# KEYS: lease. ARGV: token, ttl ms.
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""


class SharedFlight(Stage):
    """Identical calls across processes share one execution (a Redis lease)."""

    name = "shared_flight"

    def __init__(self, next_handler: ToolHandler, gate: RedisGate, *, lease_ttl: float,
                 default_timeout: float) -> None:
        super().__init__(next_handler)
        self.gate = gate
        self.lease_ms = max(100, int(lease_ttl * 1000))
        self.default_timeout = default_timeout
        self._finish = gate.client.register_script(_FINISH)
        self._claim = gate.client.register_script(_CLAIM)
        self._renew = gate.client.register_script(_RENEW)
        self.led = self.joined = self.took_over = self.timed_out = 0

    def statistics(self) -> SharedFlightStatistics:
        return SharedFlightStatistics(self.answered, self.led, self.joined, self.took_over,
                                      self.timed_out)

    def _keys(self, key: str) -> tuple[str, str, str]:
        tag = "{" + key + "}"
        return self.gate.key("lease", tag), self.gate.key("res", tag), self.gate.key("done", tag)

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        if call.key is None or call.options.scope != "shared" or not self.gate.available:
            return await self.next(call, ctx)
        token = uuid.uuid4().hex
        links: set[str] | None = None
        if ctx.telemetry is not None:  # the leader's span travels with the lease
            token = f"{token} {ctx.telemetry.traceparent() or ''}"
            links = set()
        try:
            claimed = await self._claim_or_result(call, ctx, token, links)
            if isinstance(claimed, bool):
                return await (self._lead(call, ctx, token) if claimed else
                              self._wait(call, ctx, token, links))
            return claimed
        except BackendUnavailableError:
            return await self.next(call, ctx)

    async def _claim_or_result(self, call: ToolCall, ctx: CallContext, token: str,
                               links: set[str] | None) -> ToolOutcome | bool:
        """The outcome of a flight that just landed, else whether we took the lease.
        ``links``: with tracing, the leaders' trace contexts this call linked to."""
        assert call.key is not None
        lease, result, _ = self._keys(call.key)
        for _ in range(2):
            claimed = await self.gate.run(
                lambda r: self._claim(keys=[lease, result], args=[token, self.lease_ms]),
                what="claim lease")
            if isinstance(claimed, list):  # [0, holder's token]: someone else leads
                if links is not None:
                    self._link_leader(claimed[1], ctx, links)
                return False
            if claimed == 1:
                return True
            found = decode_outcome(call.key, claimed)
            versions = await self._tag_versions(call) if found is not None else None
            if found is not None and versions is not None and found[1] == versions:
                return self.answer(call, ctx, found[0])
            # not ours, or invalidated by a write since: no answer; drop it and claim again
            await self.gate.run(lambda r: r.delete(result), what="drop stale flight outcome")
        return False

    async def _tag_versions(self, call: ToolCall) -> dict[str, int] | None:
        """None when a counter is corrupt: then no flight outcome is ever accepted."""
        tags = call.options.cache_tags
        if not tags:
            return {}
        counters = await self.gate.run(lambda r: r.mget([tag_key(self.gate, t) for t in tags]),
                                       what="tag versions")
        return tag_versions(tags, counters)

    async def _lead(self, call: ToolCall, ctx: CallContext, token: str) -> ToolOutcome:
        assert call.key is not None
        lease, result, channel = self._keys(call.key)
        self.led += 1
        versions = await self._tag_versions(call)  # as of before the call: a write during
        outcome: ToolOutcome | None = None          # it makes this outcome stale
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_alive, lease, token)
            try:
                outcome = await self.next(call, ctx)
            finally:
                tg.cancel_scope.cancel()
                if outcome is None:  # cancelled: let a waiter take over now, not at expiry
                    with anyio.CancelScope(shield=True):
                        await self._release(lease, token)
        assert outcome is not None
        # unreadable counters: published under versions no reader can match
        payload = encode_outcome(call.key, outcome, versions if versions is not None else {})
        # if this fails, waiters run the call themselves when their wait runs out
        with contextlib.suppress(BackendUnavailableError):
            await self.gate.run(lambda r: self._finish(keys=[lease, result, channel],
                                                       args=[token, payload, self.lease_ms]),
                                what="publish flight outcome")
        return outcome

    async def _release(self, lease: str, token: str) -> None:
        with contextlib.suppress(BackendUnavailableError):
            await self.gate.run(lambda r: self._renew(keys=[lease], args=[token, 1]),
                                what="release lease")

    async def _keep_alive(self, lease: str, token: str) -> None:
        while True:
            await anyio.sleep(self.lease_ms / 3000)
            try:
                renewed = await self.gate.run(
                    lambda r: self._renew(keys=[lease], args=[token, self.lease_ms]),
                    what="renew lease")
            except BackendUnavailableError:
                continue
            if not renewed:
                log.warning("tool.lease_lost", lease=lease)
                return

    def _link_leader(self, holder: bytes | str, ctx: CallContext, links: set[str]) -> None:
        """Links this call's span to the leader's, whose trace context follows the random
        part of its token (once per leader: a waiter polls)."""
        assert ctx.telemetry is not None
        text = holder.decode() if isinstance(holder, bytes) else str(holder)
        parent = text.partition(" ")[2]
        if parent and parent not in links:
            links.add(parent)
            found = ctx.telemetry.from_traceparent(parent)
            if found is not None:
                ctx.telemetry.link_current(found, self.name)

    async def _wait(self, call: ToolCall, ctx: CallContext, token: str,
                    links: set[str] | None) -> ToolOutcome:
        assert call.key is not None
        channel = self._keys(call.key)[2]
        self.joined += 1
        patience = (call.options.timeout or self.default_timeout) + self.lease_ms / 1000
        try:
            async with self.gate.subscribed(channel) as pubsub:
                with anyio.move_on_after(patience):
                    while True:
                        claimed = await self._claim_or_result(call, ctx, token, links)
                        if not isinstance(claimed, bool):
                            return claimed
                        if claimed:  # the lease is gone and no outcome: the leader died
                            self.took_over += 1
                            log.warning("tool.flight_takeover", function=call.name,
                                        key=call.key[:12])
                            return await self._lead(call, ctx, token)
                        # woken by the leader's message, or poll again (jittered) in case
                        # it died
                        wait = min(1.0, self.lease_ms / 4000) * random.uniform(0.75, 1.25)
                        await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
        except Exception as exc:
            if not isinstance(exc, BackendUnavailableError):
                self.gate.trip(exc, "flight wait")
            return await self.next(call, ctx)
        self.timed_out += 1
        log.warning("tool.flight_wait_timeout", function=call.name, key=call.key[:12],
                    waited=patience, action="executing here")
        return await self.next(call, ctx)
