"""A thread store in Redis (or a Redis Cluster), shared by any number of processes.

Layout, under the runtime's key prefix (``agentrt`` by default)::

    {prefix}:thread:{<thread id>}:meta       hash: created_at, updated_at, metadata (JSON)
    {prefix}:thread:{<thread id>}:messages   list: one JSON object per message, in order
    {prefix}:thread:{<thread id>}:ids        set: the ids of the stored messages
    {prefix}:thread:index                    sorted set: thread ids by a logical update clock

The three keys of one thread share a hash tag (the thread id in braces), so
they live in one cluster slot and every script that touches them together
works on a Redis Cluster. Each operation on a thread is one Lua script, run
with EVALSHA: ``append`` checks that the thread exists, skips ids it already
holds, pushes the new messages in order, stamps ``updated_at`` and refreshes
the thread's TTL, all atomically, so two writers racing never lose, duplicate
or interleave a batch. Reads see the thread's keys in one snapshot.

The index behind ``list_threads`` is one more key, in another slot, so it is
updated by a second command after the thread's script: it may briefly lag (a
thread that was just appended to can be listed in its previous place), and a
process that dies between the two leaves a new thread unlisted until its next
append. ``list_threads`` skips index entries whose thread has expired or was
deleted, and removes them as it goes.

Values are JSON (never pickle). A key holding something this store did not
write raises ``StoreError`` naming the thread; every script checks key types
first, so a foreign value is reported as such and is not mistaken for Redis
being down. When Redis cannot answer (see :class:`~agentrt._redis.RedisGate`),
the store raises ``StoreError`` naming the operation: unlike the caches, a
thread store cannot step aside, but nothing is lost either (the caller sees the
error, and an append is idempotent, so it can simply be retried). The store
recovers by itself when Redis returns.

With ``ttl``, a whole thread (its three keys) expires ``ttl`` seconds after it
was last created, resumed (``create_thread(..., exist_ok=True)``) or appended
to; reads do not extend it. The index is not given a TTL: its entries for
expired threads are pruned by ``list_threads``.

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

from agentrt._errors import BackendUnavailableError, StoreError, ThreadNotFoundError
from agentrt.log import get_logger

from .._closing import AsyncClosing
from ._codec import StoredMessage, decode_metadata, dumps, encode_message, encode_metadata
from ._messages import Message, ThreadInfo, new_thread_id

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from agentrt._redis import RedisGate

__all__ = ["RedisThreadStore"]

log = get_logger("agentrt.thread")

# Index entries read per round trip by list_threads, and thread reads in flight at once.
_PAGE = 50
_CONCURRENT_READS = 16

# -- Lua ----------------------------------------------------------------------
# Every script answers a table whose first item is a status: 'ok', 'none' (no
# such thread), 'exists' (create without exist_ok) or 'corrupt' (then a reason).
# Types are checked before anything is written, so a script never fails half-way
# on a WRONGTYPE error: that is what keeps each of them all-or-nothing.

_THREAD_LUA = """
local function kind(key) return redis.call('TYPE', key)['ok'] end
local function check()
  local meta = kind(KEYS[1])
  if meta == 'none' then return nil end
  if meta ~= 'hash' then return 'its meta key holds a ' .. meta .. ', not a hash' end
  local messages = kind(KEYS[2])
  if messages ~= 'none' and messages ~= 'list' then
    return 'its messages key holds a ' .. messages .. ', not a list'
  end
  local ids = kind(KEYS[3])
  if ids ~= 'none' and ids ~= 'set' then return 'its ids key holds a ' .. ids .. ', not a set' end
  return false
end
local function expire(ttl)
  if ttl ~= '0' then
    for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
local function info(status)
  local f = redis.call('HMGET', KEYS[1], 'created_at', 'updated_at', 'metadata')
  return {status, f[1], f[2], f[3], redis.call('LLEN', KEYS[2])}
end
"""

# KEYS: meta, messages, ids. ARGV: now, metadata JSON, ttl ms ('0': none), exist_ok ('1'/'0').
_CREATE = _THREAD_LUA + """
local bad = check()
if bad then return {'corrupt', bad} end
if bad == nil then
  -- a new thread starts empty, whatever stray messages or ids were left behind
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'created_at', ARGV[1], 'updated_at', ARGV[1], 'metadata', ARGV[2])
  expire(ARGV[3])
  return info('created')
end
if ARGV[4] ~= '1' then return {'exists'} end
expire(ARGV[3])
return info('ok')
"""

# KEYS: meta, messages, ids. ARGV: now, ttl ms ('0': none), then id, record, id, record, ...
_APPEND = _THREAD_LUA + """
local bad = check()
if bad then return {'corrupt', bad} end
if bad == nil then return {'none'} end
local added = 0
for i = 3, #ARGV, 2 do
  if redis.call('SADD', KEYS[3], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i + 1])
    added = added + 1
  end
end
if added > 0 then redis.call('HSET', KEYS[1], 'updated_at', ARGV[1]) end
expire(ARGV[2])
return {'ok', added}
"""

# KEYS: meta, messages, ids. ARGV: '1' to return the messages too.
_READ = _THREAD_LUA + """
local bad = check()
if bad then return {'corrupt', bad} end
if bad == nil then return {'none'} end
local out = info('ok')
if ARGV[1] == '1' then out[6] = redis.call('LRANGE', KEYS[2], 0, -1) end
return out
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


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_record(thread_id: str, position: int, raw: Any) -> Message:
    name = f"#{position}"
    try:
        data = json.loads(_text(raw), parse_constant=_no_constants)
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
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


def _thread_info(thread_id: str, reply: list[Any]) -> ThreadInfo:
    _, created_at, updated_at, metadata, count = reply[:5]
    try:
        if metadata is None:
            raise ValueError("it is missing")
        metadata_json = _text(metadata)
    except ValueError as exc:
        raise StoreError(f"stored metadata of thread {thread_id!r} is corrupt: {exc}") from exc
    return ThreadInfo(
        id=thread_id,
        created_at=_timestamp(thread_id, "created_at", created_at),
        updated_at=_timestamp(thread_id, "updated_at", updated_at),
        message_count=int(count),
        metadata=decode_metadata(thread_id, metadata_json),
    )


def _status(reply: Any) -> str:
    if not isinstance(reply, list) or not reply:
        raise StoreError(f"unexpected reply from a thread store script: {reply!r}")
    return _text(reply[0])


class RedisThreadStore(AsyncClosing):
    """Threads in Redis, through the runtime's :class:`~agentrt._redis.RedisGate`.

    ``ttl`` (seconds) makes a whole thread expire that long after its last
    create/resume or append; ``None`` keeps threads until they are deleted.
    The store shares the gate's connection pool and does not close it.
    """

    def __init__(self, gate: RedisGate, *, ttl: float | None = None) -> None:
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
        self._gate = gate
        self._ttl = ttl
        self._ttl_ms = b"0" if ttl is None else str(max(1, round(ttl * 1000))).encode()
        self._thread_prefix = _bytes(gate.key("thread")) + b":{"
        self._index = gate.key("thread", "index")
        self._closed = False
        client = gate.client
        self._create = client.register_script(_CREATE)
        self._append = client.register_script(_APPEND)
        self._read = client.register_script(_READ)
        self._index_touch = client.register_script(_INDEX_TOUCH)
        self._index_page = client.register_script(_INDEX_PAGE)
        self._index_remove = client.register_script(_INDEX_REMOVE)

    @property
    def ttl(self) -> float | None:
        return self._ttl

    def __repr__(self) -> str:
        return (f"RedisThreadStore(url={self._gate.url!r}, prefix={self._gate.prefix!r}, "
                f"ttl={self._ttl!r})")

    def keys(self, thread_id: str) -> tuple[bytes, bytes, bytes]:
        """The thread's meta, messages and ids keys (one hash tag, so one cluster slot)."""
        if not thread_id or thread_id.startswith("}"):
            # "{}" or "{}..." is an empty hash tag: the keys would land in different slots.
            raise StoreError(f"thread id {thread_id!r} cannot be stored in Redis: it must be "
                             "non-empty and not start with '}'")
        base = self._thread_prefix + _bytes(thread_id) + b"}:"
        return base + b"meta", base + b"messages", base + b"ids"

    # -- the public API ------------------------------------------------------

    async def create_thread(
        self,
        thread_id: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> ThreadInfo:
        thread_id = new_thread_id() if thread_id is None else thread_id
        metadata_json = encode_metadata(thread_id, metadata)
        keys = self.keys(thread_id)
        args = [repr(time.time()), metadata_json, self._ttl_ms, b"1" if exist_ok else b"0"]
        reply = await self._run("create_thread", thread_id,
                                lambda r: self._create(keys=keys, args=args, client=r))
        status = self._check(thread_id, reply)
        if status == "exists":
            raise StoreError(f"thread {thread_id!r} already exists")
        info = _thread_info(thread_id, reply)
        if status == "created":
            await self._touch(thread_id)
        return info

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        keys = self.keys(thread_id)
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

    async def append(self, thread_id: str, messages: Sequence[Message]) -> None:
        # Encode everything first: a message that cannot be stored fails the
        # whole batch before anything is sent.
        rows = [encode_message(thread_id, message) for message in messages]
        keys = self.keys(thread_id)
        args: list[str | bytes] = [repr(time.time()), self._ttl_ms]
        for row in rows:
            args += [_bytes(row.id), _record(row)]
        reply = await self._run("append", thread_id,
                                lambda r: self._append(keys=keys, args=args, client=r))
        if self._check(thread_id, reply) == "none":
            raise ThreadNotFoundError(thread_id)
        if int(reply[1]) > 0:
            await self._touch(thread_id)

    async def messages(self, thread_id: str) -> list[Message]:
        keys = self.keys(thread_id)
        reply = await self._run("messages", thread_id,
                                lambda r: self._read(keys=keys, args=[b"1"], client=r))
        if self._check(thread_id, reply) == "none":
            raise ThreadNotFoundError(thread_id)
        return [_decode_record(thread_id, i, raw) for i, raw in enumerate(reply[5])]

    async def delete_thread(self, thread_id: str) -> None:
        keys = self.keys(thread_id)
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
                   fn: Callable[[Any], Awaitable[Any]]) -> Any:
        """``fn(client)`` through the gate; Redis unavailable -> StoreError naming ``op``."""
        self._check_open()
        await anyio.lowlevel.checkpoint()
        try:
            return await self._gate.run(fn, what=f"thread store {op}")
        except BackendUnavailableError as exc:
            of = "" if thread_id is None else f" of thread {thread_id!r}"
            raise StoreError(f"Redis thread store: {op}{of} failed: {exc}") from exc

    def _check(self, thread_id: str, reply: Any) -> str:
        status = _status(reply)
        if status == "corrupt":
            raise StoreError(f"thread {thread_id!r} in Redis is corrupt: {_text(reply[1])}")
        return status

    async def _index_run(self, op: str, script: Any, *args: Any) -> list[Any]:
        """One script on the index key; its reply (status first)."""
        async def run(client: Any) -> Any:
            return await script(keys=[self._index], args=args, client=client)

        reply = await self._run(op, None, run)
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
        # Shielded (and bounded by the gate's timeout): a caller cancelled right
        # after its write went through still gets the thread listed.
        with anyio.CancelScope(shield=True):
            try:
                await self._index_run("index", self._index_touch, _bytes(thread_id))
            except StoreError as exc:
                log.warning("thread_store.index_lagging", thread_id=thread_id, error=str(exc))

    async def _read_many(self, client: Any, thread_ids: list[str]) -> list[Any]:
        """The read script for each thread, a few at a time (their keys are in many slots)."""
        replies: list[Any] = [None] * len(thread_ids)
        errors: list[Exception] = []
        limiter = anyio.CapacityLimiter(_CONCURRENT_READS)

        async def read(i: int, thread_id: str) -> None:
            async with limiter:
                try:
                    replies[i] = await self._read(keys=self.keys(thread_id), args=[b"0"],
                                                  client=client)
                except Exception as exc:  # re-raised below, so the gate sees the first one
                    errors.append(exc)
                    tg.cancel_scope.cancel()

        async with anyio.create_task_group() as tg:
            for i, thread_id in enumerate(thread_ids):
                tg.start_soon(read, i, thread_id)
        if errors:
            raise errors[0]
        return replies
