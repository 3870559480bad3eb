"""A thread store in Redis (or a Redis Cluster), shared by any number of processes.

Layout (version 2), under the runtime's key prefix (``agentrt`` by default)::

    {prefix}:thread:{<thread id>}:meta       hash: v (the layout version), created_at,
                                             updated_at, metadata (JSON), owner,
                                             state (JSON), state_version
    {prefix}:thread:{<thread id>}:messages   list: one JSON object per message, in order
    {prefix}:thread:{<thread id>}:ids        set: the ids of the stored messages
    {prefix}:thread:{<thread id>}:events     list: one JSON object per thread event
    {prefix}:thread:{<thread id>}:event_ids  set: the ids of the stored events
    {prefix}:thread:{<thread id>}:claim      string: the run holding the thread, expiring
                                             with its lease
    {prefix}:thread:index                    sorted set: thread ids by a logical update clock

The keys of one thread share a hash tag (the thread id in braces), so they live
in one cluster slot and every script that touches them together works on a
Redis Cluster. Each operation on a thread is one Lua script, run with EVALSHA:
``append`` checks that the thread exists, skips ids it already holds, checks
``expected_count``, pushes the new messages in order, stamps ``updated_at`` and
refreshes the thread's TTL, all atomically, so two writers racing never lose,
duplicate or interleave a batch. Reads see the thread's keys in one snapshot.

Layout version 1 (agentrt before thread owners) had no ``v``, ``owner`` or
state fields and no events or claim keys. A version-1 thread is upgraded in
place by the first script that touches it, read or write: it gets ``v``, the
empty owner (it belongs to runs without an identity) and an empty state. A
thread of a newer layout is refused with a ``StoreError`` saying so.

The index behind ``list_threads`` is one more key, in another slot, so it is
updated by a second command after the thread's script: it may briefly lag (a
thread that was just appended to can be listed in its previous place), and a
process that dies between the two leaves a new thread unlisted until its next
append. ``list_threads`` skips index entries whose thread has expired or was
deleted, and removes them as it goes.

Values are JSON (never pickle). A key holding something this store did not
write raises ``StoreError`` naming the thread; every script checks key types
first, so a foreign value is reported as such and is not mistaken for Redis
being down.

Redis hiccups: the store has a circuit breaker of its own on the runtime's
connection pool (:meth:`~agentrt._redis.RedisGate.with_own_circuit`), so a
cache that gave up on a stalled Redis never fails a thread write; and the store
never steps aside when its circuit is open (it has nowhere to go): the circuit
only makes it warn once per outage. Its commands in flight are bounded, so a
flood of runs queues here rather than time out in the pool. An operation
that times out or loses its connection is retried, with a short backoff, for
``retry_for`` seconds (a try may wait up to 2 s for a reply, longer than a cache
would: the store cannot step aside); only then does it raise ``StoreError``
naming the operation. Every retried operation is safe to repeat (appends are idempotent by
id, and a repeated ``set_state``/``set_owner`` that went through succeeds), so
nothing is written twice; what was stored before a failure stays stored. The
store recovers by itself when Redis returns. ``create_thread`` without
``exist_ok`` is tried once: a retry could not tell its own thread from another's.

With ``ttl``, a whole thread (its keys, the claim aside) expires ``ttl`` seconds
after it was last created, resumed (``create_thread(..., exist_ok=True)``) or
written to; reads do not extend it. A thread whose state has ``keep_until`` (epoch
seconds: calls waiting for approval set it to their deadline) lives at least until
then, whatever ``ttl``. The index is not given a TTL: its entries
for expired threads are pruned by ``list_threads``.

``redis.asyncio`` is asyncio-only: this store needs the asyncio backend.
"""

from __future__ import annotations

import functools
import json
import math
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from agentrt._errors import (
    BackendUnavailableError,
    StoreError,
    ThreadChangedError,
    ThreadNotFoundError,
)
from agentrt._redis import execute, refused
from agentrt.log import get_logger

from .._closing import AsyncClosing
from ._codec import (
    StoredEvent,
    StoredMessage,
    check_claim,
    check_owner,
    decode_event,
    decode_metadata,
    decode_state,
    dumps,
    encode_event,
    encode_message,
    encode_metadata,
    encode_state,
)
from ._messages import Message, ThreadEvent, ThreadInfo, ThreadState, new_thread_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from agentrt._redis import RedisGate

__all__ = ["RedisThreadStore"]

log = get_logger("agentrt.thread")

# Index entries read per round trip by list_threads, and thread reads in flight at once.
_PAGE = 50
_CONCURRENT_READS = 16
# Waits between the tries of an operation through a Redis hiccup (seconds), and the
# store circuit's retry_after at most: one probe at a time, but soon.
_FIRST_BACKOFF = 0.02
_MAX_BACKOFF = 0.25
# Store commands in flight at once, below the gate's pool size: past it, commands would
# queue for a connection inside their timeout, and 500 concurrent runs then timed out
# on a healthy Redis (and opened the circuit). Queued here, they wait outside it.
_IN_FLIGHT = 32
# One try of a store command may take this long (never less than the gate's timeout):
# longer than a cache's, which steps aside at once, because the store cannot step
# aside, and because under load a reply's wait includes the event loop's lag (500
# concurrent runs lagged it 0.4 s, and 0.5 s tries timed out on a healthy Redis).
_LONGEST_TRY = 2.0

# -- Lua ----------------------------------------------------------------------
# Every script answers a table whose first item is a status: 'ok', 'none' (no
# such thread), 'exists' (create without exist_ok), 'changed' (an optimistic
# check failed), 'newer' (a layout this code does not know) or 'corrupt' (then a
# reason). Types are checked before anything is written, so a script never fails
# half-way on a WRONGTYPE error: that is what keeps each of them all-or-nothing.

LAYOUT = 2

# KEYS of every thread script: meta, messages, ids, events, event_ids.
_THREAD_LUA = f"local LAYOUT = {LAYOUT}" + """
local EXPECT = {'hash', 'list', 'set', 'list', 'set'}
local NAMES = {'meta', 'messages', 'ids', 'events', 'event_ids'}
local function kind(key) return redis.call('TYPE', key)['ok'] end
-- nil: no such thread; false: ready to use; otherwise the reply to give up with.
local function open()
  local meta = kind(KEYS[1])
  if meta == 'none' then return nil end
  for i = 1, 5 do
    local found = meta
    if i > 1 then found = kind(KEYS[i]) end
    if found ~= 'none' and found ~= EXPECT[i] then
      return {'corrupt',
              'its ' .. NAMES[i] .. ' key holds a ' .. found .. ', not a ' .. EXPECT[i]}
    end
  end
  local v = redis.call('HGET', KEYS[1], 'v')
  if not v then
    -- layout 1: upgraded in place (it belongs to runs without an identity)
    redis.call('HSETNX', KEYS[1], 'owner', '')
    redis.call('HSETNX', KEYS[1], 'state', '{}')
    redis.call('HSETNX', KEYS[1], 'state_version', '0')
    redis.call('HSET', KEYS[1], 'v', LAYOUT)
    return false
  end
  local n = tonumber(v)
  if not n then return {'corrupt', 'its layout version is not a number'} end
  if n > LAYOUT then return {'newer', v} end
  return false
end
local function expire(ttl)
  if ttl ~= '0' then
    local ms = tonumber(ttl)
    -- a thread whose state asks to be kept (calls waiting for approval) outlives its ttl
    local keep = tonumber(redis.call('HGET', KEYS[1], 'keep_until') or '')
    if keep then
      local t = redis.call('TIME')
      local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      if keep - now > ms then ms = keep - now end
    end
    for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ms) end
  end
end
local function info(status)
  local f = redis.call('HMGET', KEYS[1], 'created_at', 'updated_at', 'metadata', 'owner')
  return {status, f[1], f[2], f[3], redis.call('LLEN', KEYS[2]), f[4]}
end
"""

_OPEN = """
local bad = open()
if bad then return bad end
if bad == nil then return {'none'} end
"""

# ARGV: now, metadata JSON, ttl ms ('0': none), exist_ok ('1'/'0'), owner.
_CREATE = _THREAD_LUA + """
local bad = open()
if bad then return bad end
if bad == nil then
  -- a new thread starts empty, whatever stray messages, events or ids were left behind
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  redis.call('HSET', KEYS[1], 'v', LAYOUT, 'created_at', ARGV[1], 'updated_at', ARGV[1],
             'metadata', ARGV[2], 'owner', ARGV[5], 'state', '{}', 'state_version', '0')
  expire(ARGV[3])
  return info('created')
end
if ARGV[4] ~= '1' then return {'exists'} end
expire(ARGV[3])
return info('ok')
"""

# ARGV: now, ttl ms ('0': none), expected count ('': none), then id, record, id, record, ...
_APPEND = _THREAD_LUA + _OPEN + """
local new, seen = {}, {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  if not seen[id] then
    seen[id] = true
    if redis.call('SISMEMBER', KEYS[3], id) == 0 then new[#new + 1] = i end
  end
end
if #new > 0 and ARGV[3] ~= '' then
  local count = redis.call('LLEN', KEYS[2])
  if count ~= tonumber(ARGV[3]) then return {'changed', count} end
end
for _, i in ipairs(new) do
  redis.call('SADD', KEYS[3], ARGV[i])
  redis.call('RPUSH', KEYS[2], ARGV[i + 1])
end
if #new > 0 then redis.call('HSET', KEYS[1], 'updated_at', ARGV[1]) end
expire(ARGV[2])
return {'ok', #new}
"""

# ARGV: '1' to return the messages too.
_READ = _THREAD_LUA + _OPEN + """
local out = info('ok')
if ARGV[1] == '1' then out[7] = redis.call('LRANGE', KEYS[2], 0, -1) end
return out
"""

# ARGV: owner, expected owner.
_SET_OWNER = _THREAD_LUA + _OPEN + """
local current = redis.call('HGET', KEYS[1], 'owner')
if current ~= ARGV[2] and current ~= ARGV[1] then return {'changed'} end
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return {'ok'}
"""

_GET_STATE = _THREAD_LUA + _OPEN + """
local f = redis.call('HMGET', KEYS[1], 'state', 'state_version')
return {'ok', f[1], f[2]}
"""

# ARGV: state JSON, expected version, now, ttl ms, keep-until epoch ms ('': none).
_SET_STATE = _THREAD_LUA + _OPEN + """
local f = redis.call('HMGET', KEYS[1], 'state', 'state_version')
local version = tonumber(f[2])
if version == nil then return {'corrupt', 'its state_version is not a number'} end
local expected = tonumber(ARGV[2])
-- the retry of a write that went through
if version == expected + 1 and f[1] == ARGV[1] then return {'ok', version} end
if version ~= expected then return {'changed', version} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'state_version', version + 1,
           'updated_at', ARGV[3])
if ARGV[5] == '' then redis.call('HDEL', KEYS[1], 'keep_until')
else redis.call('HSET', KEYS[1], 'keep_until', ARGV[5]) end
expire(ARGV[4])
return {'ok', version + 1}
"""

# ARGV: now, ttl ms, then id, record, id, record, ...
_APPEND_EVENTS = _THREAD_LUA + _OPEN + """
local added = 0
for i = 3, #ARGV, 2 do
  if redis.call('SADD', KEYS[5], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[4], ARGV[i + 1])
    added = added + 1
  end
end
if added > 0 then redis.call('HSET', KEYS[1], 'updated_at', ARGV[1]) end
expire(ARGV[2])
return {'ok', added}
"""

_EVENTS = _THREAD_LUA + _OPEN + """
return {'ok', redis.call('LRANGE', KEYS[4], 0, -1)}
"""

# KEYS: the claim key. The holder, or false when nobody holds it.
_CLAIM_LUA = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'string' then
  return {'corrupt', 'its claim key holds a ' .. kind .. ', not a string'}
end
local current = redis.call('GET', KEYS[1])
"""

# ARGV: holder, lease ms.
_CLAIM = _CLAIM_LUA + """
if current and current ~= ARGV[1] then return {'ok', 0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'ok', 1}
"""

# ARGV: holder, lease ms.
_RENEW = _CLAIM_LUA + """
if current ~= ARGV[1] then return {'ok', 0} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'ok', 1}
"""

# ARGV: holder.
_RELEASE = _CLAIM_LUA + """
if current == ARGV[1] then redis.call('DEL', KEYS[1]) end
return {'ok'}
"""

_INDEX_LUA = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' and kind ~= 'zset' then
  return {'corrupt', 'the thread index holds a ' .. kind .. ', not a sorted set'}
end
"""

# KEYS: index. ARGV: thread id. The thread becomes the most recently updated one.
_INDEX_TOUCH = _INDEX_LUA + """
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local clock = 1
if top[2] then clock = tonumber(top[2]) + 1 end
redis.call('ZADD', KEYS[1], clock, ARGV[1])
return {'ok'}
"""

# KEYS: index. ARGV: start, stop. Thread ids with their clock, newest first.
_INDEX_PAGE = _INDEX_LUA + """
return {'ok', redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES')}
"""

# KEYS: index. ARGV: thread id, clock, ... An entry is removed only if its clock
# is still the one given ('' = whatever it is): an entry a new write has just
# refreshed stays.
_INDEX_REMOVE = _INDEX_LUA + """
local removed = 0
for i = 1, #ARGV, 2 do
  local clock = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if clock and (ARGV[i + 1] == '' or tonumber(clock) == tonumber(ARGV[i + 1])) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return {'ok', removed}
"""


def _bytes(text: str) -> bytes:
    # Ids are arbitrary str, lone surrogates included: stored exactly, never refused.
    return text.encode("utf-8", "surrogatepass")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    if isinstance(value, str):
        return value
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _record(row: StoredMessage) -> str:
    """One message as the JSON object kept in the thread's list."""
    return (f'{{"id":{dumps(row.id)},"role":{dumps(row.role)},'
            f'"created_at":{dumps(row.created_at)},"metadata":{row.metadata},'
            f'"content":{row.content}}}')


def _event_record(row: StoredEvent) -> str:
    """One thread event as the JSON object kept in the thread's events list."""
    return (f'{{"id":{dumps(row.id)},"kind":{dumps(row.kind)},'
            f'"created_at":{dumps(row.created_at)},"data":{row.data}}}')


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(raw: Any) -> dict[str, Any]:
    try:
        data = json.loads(_text(raw), parse_constant=_no_constants)
    except RecursionError as exc:
        raise ValueError("it is nested too deeply to parse") from exc
    if not isinstance(data, dict):
        raise ValueError("it is not a JSON object")
    return data


def _decode_record(thread_id: str, position: int, raw: Any) -> Message:
    name = f"#{position}"
    try:
        data = _parse(raw)
        message_id = data.get("id")
        if not isinstance(message_id, str) or not message_id:
            raise ValueError("its id is not a non-empty string")
        name = repr(message_id)
        content, metadata = data.get("content"), data.get("metadata")
        created_at = data.get("created_at")
        if not isinstance(metadata, dict):
            raise ValueError("metadata is not a JSON object")
        if isinstance(content, list) and not all(isinstance(b, dict) for b in content):
            raise ValueError("a content block is not a JSON object")
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            raise ValueError("created_at is not a number")
        return Message.from_json(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(
            f"stored message {name} of thread {thread_id!r} is corrupt: {exc}"
        ) from exc


def _decode_event(thread_id: str, position: int, raw: Any) -> ThreadEvent:
    try:
        data = _parse(raw)
        event_id, kind = data.get("id"), data.get("kind")
        created_at = data.get("created_at")
        if not isinstance(event_id, str) or not event_id:
            raise ValueError("its id is not a non-empty string")
        if not isinstance(kind, str) or not kind:
            raise ValueError("its kind is not a non-empty string")
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            raise ValueError("created_at is not a number")
        if not isinstance(data.get("data"), dict):
            raise ValueError("data is not a JSON object")
    except (ValueError, TypeError) as exc:
        raise StoreError(
            f"stored event #{position} of thread {thread_id!r} is corrupt: {exc}"
        ) from exc
    return decode_event(thread_id, StoredEvent(event_id, kind, dumps(data["data"]),
                                               float(created_at)))


def _timestamp(thread_id: str, field: str, raw: Any) -> float:
    try:
        value = float(_text(raw))
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a time")
    except (ValueError, TypeError) as exc:
        raise StoreError(
            f"stored {field} of thread {thread_id!r} is corrupt: {exc}"
        ) from exc
    return value


def _field(thread_id: str, name: str, raw: Any) -> str:
    try:
        if raw is None:
            raise ValueError("it is missing")
        return _text(raw)
    except ValueError as exc:
        raise StoreError(f"stored {name} of thread {thread_id!r} is corrupt: {exc}") from exc


def _thread_info(thread_id: str, reply: list[Any]) -> ThreadInfo:
    _, created_at, updated_at, metadata, count, owner = reply[:6]
    return ThreadInfo(
        id=thread_id,
        created_at=_timestamp(thread_id, "created_at", created_at),
        updated_at=_timestamp(thread_id, "updated_at", updated_at),
        message_count=int(count),
        metadata=decode_metadata(thread_id, _field(thread_id, "metadata", metadata)),
        owner=_field(thread_id, "owner", owner),
    )


def _status(reply: Any) -> str:
    if not isinstance(reply, list) or not reply:
        raise StoreError(f"unexpected reply from a thread store script: {reply!r}")
    return _text(reply[0])


class RedisThreadStore(AsyncClosing):
    """Threads in Redis, through the runtime's :class:`~agentrt._redis.RedisGate`.

    ``ttl`` (seconds) makes a whole thread expire that long after its last
    create/resume or write; ``None`` keeps threads until they are deleted.
    ``retry_for`` (seconds) is how long an operation keeps trying through a Redis
    hiccup before it raises ``StoreError`` (0: one try). The store shares the
    gate's connection pool, with a circuit breaker of its own, and does not
    close it.
    """

    def __init__(self, gate: RedisGate, *, ttl: float | None = None,
                 retry_for: float = 5.0) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
        if not retry_for >= 0:
            raise ValueError(f"retry_for must be a number of seconds >= 0, not {retry_for!r}")
        self._gate = gate.with_own_circuit(retry_after=min(gate.retry_after, _MAX_BACKOFF))
        self._ttl = ttl
        self._retry_for = retry_for
        self._ttl_ms = b"0" if ttl is None else str(max(1, round(ttl * 1000))).encode()
        self._thread_prefix = _bytes(gate.key("thread")) + b":{"
        self._index = gate.key("thread", "index")
        self._closed = False
        self._in_flight = anyio.CapacityLimiter(_IN_FLIGHT)
        client = gate.client
        self._create = client.register_script(_CREATE)
        self._append = client.register_script(_APPEND)
        self._read = client.register_script(_READ)
        self._set_owner = client.register_script(_SET_OWNER)
        self._get_state = client.register_script(_GET_STATE)
        self._set_state = client.register_script(_SET_STATE)
        self._append_events = client.register_script(_APPEND_EVENTS)
        self._events = client.register_script(_EVENTS)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._index_touch = client.register_script(_INDEX_TOUCH)
        self._index_page = client.register_script(_INDEX_PAGE)
        self._index_remove = client.register_script(_INDEX_REMOVE)

    @property
    def ttl(self) -> float | None:
        return self._ttl

    @property
    def gate(self) -> RedisGate:
        """The store's own gate: the runtime's pool, with the store's circuit breaker."""
        return self._gate

    def __repr__(self) -> str:
        return (f"RedisThreadStore(url={self._gate.url!r}, prefix={self._gate.prefix!r}, "
                f"ttl={self._ttl!r})")

    def keys(self, thread_id: str) -> tuple[bytes, bytes, bytes]:
        """The thread's meta, messages and ids keys (one hash tag, so one cluster slot)."""
        base = self._base(thread_id)
        return base + b"meta", base + b"messages", base + b"ids"

    def event_keys(self, thread_id: str) -> tuple[bytes, bytes]:
        """The thread's events and event ids keys (in the same slot as ``keys``)."""
        base = self._base(thread_id)
        return base + b"events", base + b"event_ids"

    def claim_key(self, thread_id: str) -> bytes:
        return self._base(thread_id) + b"claim"

    def _base(self, thread_id: str) -> bytes:
        if not thread_id or thread_id.startswith("}"):
            # "{}" or "{}..." is an empty hash tag: the keys would land in different slots.
            raise StoreError(f"thread id {thread_id!r} cannot be stored in Redis: it must be "
                             "non-empty and not start with '}'")
        return self._thread_prefix + _bytes(thread_id) + b"}:"

    def _thread_keys(self, thread_id: str) -> list[bytes]:
        return [*self.keys(thread_id), *self.event_keys(thread_id)]

    # -- the public API ------------------------------------------------------

    async def create_thread(
        self,
        thread_id: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
        owner: str = "",
    ) -> ThreadInfo:
        thread_id = new_thread_id() if thread_id is None else thread_id
        check_owner(owner)
        metadata_json = encode_metadata(thread_id, metadata)
        keys = self._thread_keys(thread_id)
        args = [repr(time.time()), metadata_json, self._ttl_ms, b"1" if exist_ok else b"0",
                _bytes(owner)]
        reply = await self._run("create_thread", thread_id,
                                lambda r: self._create(keys=keys, args=args, client=r),
                                retry=exist_ok)
        status = self._check(thread_id, reply)
        if status == "exists":
            raise StoreError(f"thread {thread_id!r} already exists")
        info = _thread_info(thread_id, reply)
        if status == "created":
            await self._touch(thread_id)
        return info

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        keys = self._thread_keys(thread_id)
        reply = await self._run("get_thread", thread_id,
                                lambda r: self._read(keys=keys, args=[b"0"], client=r))
        if self._check(thread_id, reply) == "none":
            return None
        return _thread_info(thread_id, reply)

    async def list_threads(self, *, limit: int = 100) -> list[ThreadInfo]:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        self._check_open()
        found: list[ThreadInfo] = []
        seen: set[str] = set()
        start = 0
        while len(found) < limit:
            page = (await self._index_run("list_threads", self._index_page, start,
                                          start + _PAGE - 1))[1]
            if not page:
                break
            start += len(page) // 2
            ids = [self._member(member) for member in page[0::2]]
            infos = await self._run("list_threads", None,
                                    functools.partial(self._read_many, thread_ids=ids))
            stale: list[bytes] = []
            for thread_id, clock, reply in zip(ids, page[1::2], infos, strict=True):
                if self._check(thread_id, reply) == "none":
                    stale += [_bytes(thread_id), clock]
                elif len(found) < limit and thread_id not in seen:
                    # (seen: a thread updated meanwhile moves up, and a later
                    # page may show it again)
                    seen.add(thread_id)
                    found.append(_thread_info(thread_id, reply))
            if stale:
                # Entries of expired or deleted threads: drop them, unless a
                # write has refreshed them since the page was read.
                removed = await self._index_run("list_threads", self._index_remove, *stale)
                start -= int(removed[1])
        return found

    async def append(self, thread_id: str, messages: Sequence[Message], *,
                     expected_count: int | None = None) -> None:
        # Encode everything first: a message that cannot be stored fails the
        # whole batch before anything is sent.
        rows = [encode_message(thread_id, message) for message in messages]
        keys = self._thread_keys(thread_id)
        expected = b"" if expected_count is None else str(int(expected_count)).encode()
        args: list[str | bytes] = [repr(time.time()), self._ttl_ms, expected]
        for row in rows:
            args += [_bytes(row.id), _record(row)]
        reply = await self._run("append", thread_id,
                                lambda r: self._append(keys=keys, args=args, client=r))
        status = self._check(thread_id, reply)
        if status == "none":
            raise ThreadNotFoundError(thread_id)
        if status == "changed":
            raise ThreadChangedError(thread_id, f"expected {expected_count} messages, "
                                                f"found {int(reply[1])}")
        if int(reply[1]) > 0:
            await self._touch(thread_id)

    async def messages(self, thread_id: str) -> list[Message]:
        keys = self._thread_keys(thread_id)
        reply = await self._run("messages", thread_id,
                                lambda r: self._read(keys=keys, args=[b"1"], client=r))
        if self._check(thread_id, reply) == "none":
            raise ThreadNotFoundError(thread_id)
        return [_decode_record(thread_id, i, raw) for i, raw in enumerate(reply[6])]

    async def set_owner(self, thread_id: str, owner: str, *, expected: str) -> None:
        check_owner(owner)
        keys = self._thread_keys(thread_id)
        args = [_bytes(owner), _bytes(expected)]
        reply = await self._run("set_owner", thread_id,
                                lambda r: self._set_owner(keys=keys, args=args, client=r))
        status = self._check(thread_id, reply)
        if status == "none":
            raise ThreadNotFoundError(thread_id)
        if status == "changed":
            raise ThreadChangedError(thread_id, "its owner is not the one expected")

    async def get_state(self, thread_id: str) -> ThreadState:
        keys = self._thread_keys(thread_id)
        reply = await self._run("get_state", thread_id,
                                lambda r: self._get_state(keys=keys, args=[], client=r))
        if self._check(thread_id, reply) == "none":
            raise ThreadNotFoundError(thread_id)
        text = _field(thread_id, "state", reply[1])
        try:
            version = int(_field(thread_id, "state_version", reply[2]))
        except ValueError as exc:
            raise StoreError(f"stored state_version of thread {thread_id!r} is corrupt: "
                             f"{exc}") from exc
        return decode_state(thread_id, text, version)

    async def set_state(self, thread_id: str, data: Mapping[str, Any], *,
                        expected_version: int) -> ThreadState:
        text = encode_state(thread_id, data)
        keys = self._thread_keys(thread_id)
        keep = data.get("keep_until")
        keep_ms = (str(round(keep * 1000)) if isinstance(keep, int | float)
                   and not isinstance(keep, bool) and math.isfinite(keep) and keep > 0 else "")
        args = [text, str(int(expected_version)), repr(time.time()), self._ttl_ms, keep_ms]
        reply = await self._run("set_state", thread_id,
                                lambda r: self._set_state(keys=keys, args=args, client=r))
        status = self._check(thread_id, reply)
        if status == "none":
            raise ThreadNotFoundError(thread_id)
        if status == "changed":
            raise ThreadChangedError(thread_id, f"expected state version {expected_version}, "
                                                f"found {int(reply[1])}")
        await self._touch(thread_id)
        return decode_state(thread_id, text, int(reply[1]))

    async def append_events(self, thread_id: str, events: Sequence[ThreadEvent]) -> None:
        rows = [encode_event(thread_id, event) for event in events]
        keys = self._thread_keys(thread_id)
        args: list[str | bytes] = [repr(time.time()), self._ttl_ms]
        for row in rows:
            args += [_bytes(row.id), _event_record(row)]
        reply = await self._run("append_events", thread_id,
                                lambda r: self._append_events(keys=keys, args=args, client=r))
        if self._check(thread_id, reply) == "none":
            raise ThreadNotFoundError(thread_id)
        if int(reply[1]) > 0:
            await self._touch(thread_id)

    async def events(self, thread_id: str) -> list[ThreadEvent]:
        keys = self._thread_keys(thread_id)
        reply = await self._run("events", thread_id,
                                lambda r: self._events(keys=keys, args=[], client=r))
        if self._check(thread_id, reply) == "none":
            raise ThreadNotFoundError(thread_id)
        return [_decode_event(thread_id, i, raw) for i, raw in enumerate(reply[1])]

    async def claim(self, thread_id: str, holder: str, *, lease: float) -> bool:
        check_claim(holder, lease)
        return await self._claim_op("claim", self._claim, thread_id, _bytes(holder),
                                    _lease_ms(lease))

    async def renew_claims(self, claims: Sequence[tuple[str, str]], *,
                           lease: float) -> list[bool]:
        for _, holder in claims:
            check_claim(holder, lease)
        if not claims:
            return []
        items = [(self.claim_key(thread_id), _bytes(holder)) for thread_id, holder in claims]
        replies = await self._run("renew_claims", None, functools.partial(
            self._renew_many, items=items, lease_ms=_lease_ms(lease)))
        kept: list[bool] = []
        for (thread_id, _), reply in zip(claims, replies, strict=True):
            status = _status(reply)
            if status == "corrupt":  # unreadable: not renewed (it is not ours to fix)
                log.warning("thread_store.claim_corrupt", thread_id=thread_id,
                            error=_text(reply[1]))
            kept.append(status == "ok" and int(reply[1]) == 1)
        return kept

    async def release_claim(self, thread_id: str, holder: str) -> None:
        check_claim(holder)
        await self._claim_op("release_claim", self._release, thread_id, _bytes(holder))

    async def delete_thread(self, thread_id: str) -> None:
        keys = self._thread_keys(thread_id)
        # The index entry first: if deleting the keys then fails, the thread is
        # merely unlisted (and a retry finishes the job), never a dangling entry.
        await self._index_run("delete_thread", self._index_remove, _bytes(thread_id), b"")
        await self._run("delete_thread", thread_id, lambda r: r.delete(*keys))

    async def aclose(self) -> None:
        """Refuse further use; idempotent. The gate (shared) stays open."""
        self._closed = True

    # -- plumbing ------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this RedisThreadStore is closed")

    async def _run(self, op: str, thread_id: str | None,
                   fn: Callable[[Any], Awaitable[Any]], *, retry: bool = True) -> Any:
        """``fn(client)`` through the store's gate, tried again through a hiccup for
        ``retry_for`` seconds; Redis still unavailable -> StoreError naming ``op``."""
        self._check_open()
        await anyio.lowlevel.checkpoint()
        gate = self._gate
        deadline = anyio.current_time() + (self._retry_for if retry else 0.0)
        backoff = _FIRST_BACKOFF
        while True:
            left = deadline - anyio.current_time()
            try:
                async with self._in_flight:
                    return await gate.run(fn, what=f"thread store {op}", step_aside=False,
                                          timeout=max(gate.timeout, min(left, _LONGEST_TRY)))
            except BackendUnavailableError as exc:
                left = deadline - anyio.current_time()
                if refused(exc) or left <= 0:
                    of = "" if thread_id is None else f" of thread {thread_id!r}"
                    raise StoreError(f"Redis thread store: {op}{of} failed: {exc}") from exc
            await anyio.sleep(min(backoff, left))
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _check(self, thread_id: str, reply: Any) -> str:
        status = _status(reply)
        if status == "corrupt":
            raise StoreError(f"thread {thread_id!r} in Redis is corrupt: {_text(reply[1])}")
        if status == "newer":
            raise StoreError(f"thread {thread_id!r} in Redis has layout version "
                             f"{_text(reply[1])}, newer than this agentrt's {LAYOUT}; "
                             "upgrade agentrt to use it")
        return status

    async def _claim_op(self, op: str, script: Any, thread_id: str, *args: bytes) -> bool:
        keys = [self.claim_key(thread_id)]
        reply = await self._run(op, thread_id,
                                lambda r: script(keys=keys, args=args, client=r))
        self._check(thread_id, reply)
        return len(reply) > 1 and int(reply[1]) == 1

    async def _index_run(self, op: str, script: Any, *args: Any,
                         retry: bool = True) -> list[Any]:
        """One script on the index key; its reply (status first)."""
        async def run(client: Any) -> Any:
            return await script(keys=[self._index], args=args, client=client)

        reply = await self._run(op, None, run, retry=retry)
        if _status(reply) == "corrupt":
            raise StoreError(f"Redis thread store: {_text(reply[1])} "
                             f"(key {self._index!r})")
        return list(reply)

    def _member(self, member: Any) -> str:
        try:
            return _text(member)
        except ValueError as exc:
            raise StoreError(f"Redis thread store: the thread index (key {self._index!r}) "
                             f"holds {member!r}, not a thread id") from exc

    async def _touch(self, thread_id: str) -> None:
        """Move the thread to the top of the index; a failure only makes the index lag."""
        # Shielded (and bounded by the gate's timeout: one try): a caller cancelled
        # right after its write went through still gets the thread listed.
        with anyio.CancelScope(shield=True):
            try:
                await self._index_run("index", self._index_touch, _bytes(thread_id),
                                      retry=False)
            except StoreError as exc:
                log.warning("thread_store.index_lagging", thread_id=thread_id, error=str(exc))

    async def _renew_many(self, client: Any, items: list[tuple[bytes, bytes]],
                          lease_ms: bytes) -> list[Any]:
        """The renew script for each claim: one pipelined round trip on a single server;
        on a cluster (claims in many slots), a few at a time."""
        if not self._gate.cluster:
            pipe = client.pipeline(transaction=False)
            for key, holder in items:
                await self._renew(keys=[key], args=[holder, lease_ms], client=pipe)
            return await execute(pipe)
        replies: list[Any] = [None] * len(items)
        limiter = anyio.CapacityLimiter(_CONCURRENT_READS)

        async def renew(i: int, key: bytes, holder: bytes) -> None:
            async with limiter:
                replies[i] = await self._renew(keys=[key], args=[holder, lease_ms],
                                               client=client)

        async with anyio.create_task_group() as tg:
            for i, (key, holder) in enumerate(items):
                tg.start_soon(renew, i, key, holder)
        return replies

    async def _read_many(self, client: Any, thread_ids: list[str]) -> list[Any]:
        """The read script for each thread, a few at a time (their keys are in many slots)."""
        replies: list[Any] = [None] * len(thread_ids)
        errors: list[Exception] = []
        limiter = anyio.CapacityLimiter(_CONCURRENT_READS)

        async def read(i: int, thread_id: str) -> None:
            async with limiter:
                try:
                    replies[i] = await self._read(keys=self._thread_keys(thread_id),
                                                  args=[b"0"], client=client)
                except Exception as exc:  # re-raised below, so the gate sees the first one
                    errors.append(exc)
                    tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for i, thread_id in enumerate(thread_ids):
                tg.start_soon(read, i, thread_id)
        if errors:
            raise errors[0]
        return replies


def _lease_ms(lease: float) -> bytes:
    return str(max(1, round(lease * 1000))).encode()
