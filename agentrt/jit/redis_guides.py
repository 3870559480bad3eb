"""Tool guides shared through Redis, so every process sends byte-identical text and the
provider's prompt cache keeps hitting across processes and restarts.

Layout (one hash tag, so each script touches a single cluster slot)::

    p:tool_guide:{guides}:gen            the generation; invalidate_all bumps it
    p:tool_guide:{guides}:<gen>:<key>    a rendered guide, with a TTL
    p:tool_guide:{guides}:<gen>:tool:<t> the keys cached for tool t (invalidate one)

Invalidating everything is one INCR: no KEYS or SCAN storms; old entries expire.
Like every Redis-backed part, an outage makes it step aside (get answers None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import BackendUnavailableError
from ..log import get_logger
from .guides import GuideCacheStatistics

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from .._redis import RedisGate

__all__ = ["RedisGuideCache"]

log = get_logger("agentrt.jit")

# KEYS: base. ARGV: keys... -> values in order (false for a miss)
_GET = """
local gen = redis.call('GET', KEYS[1] .. ':gen') or '0'
local out = {}
for i, key in ipairs(ARGV) do out[i] = redis.call('GET', KEYS[1] .. ':' .. gen .. ':' .. key) end
return out
"""
# KEYS: base. ARGV: ttl_ms, then key, tool, value triples
_SET = """
local gen = redis.call('GET', KEYS[1] .. ':gen') or '0'
for i = 2, #ARGV, 3 do
  local entry = KEYS[1] .. ':' .. gen .. ':' .. ARGV[i]
  local index = KEYS[1] .. ':' .. gen .. ':tool:' .. ARGV[i + 1]
  redis.call('SET', entry, ARGV[i + 2], 'PX', ARGV[1])
  redis.call('SADD', index, ARGV[i])
  redis.call('PEXPIRE', index, ARGV[1])
end
return #ARGV
"""
# KEYS: base. ARGV: tool -> number of guides dropped
_DROP_TOOL = """
local gen = redis.call('GET', KEYS[1] .. ':gen') or '0'
local index = KEYS[1] .. ':' .. gen .. ':tool:' .. ARGV[1]
local keys = redis.call('SMEMBERS', index)
for _, key in ipairs(keys) do redis.call('DEL', KEYS[1] .. ':' .. gen .. ':' .. key) end
redis.call('DEL', index)
return #keys
"""


def tool_of(key: str) -> str:
    """The tool a guide key belongs to (``agentrt:tool_guide:<fmt>:<tool>:...``)."""
    parts = key.split(":")
    return parts[3] if len(parts) > 4 and parts[1] == "tool_guide" else key


class RedisGuideCache:
    def __init__(self, gate: RedisGate, *, ttl: float = 7 * 24 * 3600) -> None:
        self.gate = gate
        self.ttl_ms = max(1, int(ttl * 1000))
        self.base = gate.key("tool_guide", "{guides}")
        self._get = gate.client.register_script(_GET)
        self._set = gate.client.register_script(_SET)
        self._drop = gate.client.register_script(_DROP_TOOL)
        self._hits = self._misses = self._errors = 0

    async def get(self, key: str) -> str | None:
        return (await self.get_many([key])).get(key)

    async def set(self, key: str, value: str) -> None:
        await self.set_many({key: value})

    async def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """Every guide found, in one round trip."""
        wanted = list(keys)
        if not wanted:
            return {}
        try:
            values = await self.gate.run(lambda r: self._get(keys=[self.base], args=wanted),
                                         what="tool guides get")
        except BackendUnavailableError:
            self._errors += 1
            return {}
        found = {k: v.decode() if isinstance(v, bytes) else v
                 for k, v in zip(wanted, values, strict=True) if v}
        self._hits += len(found)
        self._misses += len(wanted) - len(found)
        return found

    async def set_many(self, guides: Mapping[str, str]) -> None:
        """Stores every guide in one round trip; nothing on an outage."""
        if not guides:
            return
        args: list[Any] = [self.ttl_ms]
        for key, value in guides.items():
            args += [key, tool_of(key), value]
        try:
            await self.gate.run(lambda r: self._set(keys=[self.base], args=args),
                                what="tool guides set")
        except BackendUnavailableError:
            self._errors += 1

    async def warm(self, guides: Mapping[str, str]) -> None:
        """Pre-load rendered guides (e.g. at deploy time) so no process renders them."""
        await self.set_many(guides)

    async def invalidate(self, tool: str) -> int:
        return int(await self.gate.run(lambda r: self._drop(keys=[self.base], args=[tool]),
                                       what="tool guides invalidate"))

    async def invalidate_all(self) -> int:
        """A new generation: every process misses from now on; old entries expire."""
        return int(await self.gate.run(lambda r: r.incr(f"{self.base}:gen"),
                                       what="tool guides invalidate all"))

    def statistics(self) -> GuideCacheStatistics:
        return GuideCacheStatistics(self._hits, self._misses, -1)

    @property
    def errors(self) -> int:
        return self._errors
