"""The Redis thread store: the shared contract on real Redis, a real cluster and fakeredis,
then what is particular to Redis (TTL, foreign values, Redis down, several processes)."""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from processes import opened, start_together_and_finish
from redis.crc import key_slot
from redis_support import ManualClock, make_fake_gate

from agentrt._errors import BackendUnavailableError, StoreError, ThreadNotFoundError
from agentrt.testing import capture_events
from agentrt.thread._messages import Message, ThreadEvent, ThreadState
from agentrt.thread.redis import RedisThreadStore

from .conformance import ThreadStoreConformance, assert_same_messages, batch, ids, tricky_messages

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from redis_support import GateFactory, LocalRedisCluster, RedisServerProcess

    from agentrt._redis import RedisGate

pytestmark = pytest.mark.anyio

CHILD = Path(__file__).with_name("redis_child.py")


class RedisConformance(ThreadStoreConformance):
    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"  # redis.asyncio is asyncio-only


class TestRedisThreadStore(RedisConformance):
    pytestmark = [pytest.mark.anyio, pytest.mark.redis]

    @pytest.fixture
    async def store(self, redis_gate: GateFactory) -> AsyncIterator[RedisThreadStore]:
        store = RedisThreadStore(redis_gate())
        yield store
        await store.aclose()


class TestRedisThreadStoreOnCluster(RedisConformance):
    pytestmark = [pytest.mark.anyio, pytest.mark.integration]

    @pytest.fixture
    async def store(self, redis_cluster_gate: GateFactory) -> AsyncIterator[RedisThreadStore]:
        store = RedisThreadStore(redis_cluster_gate())
        yield store
        await store.aclose()


class TestRedisThreadStoreOnFakeRedis(RedisConformance):
    @pytest.fixture
    async def store(self, fake_redis_gate: RedisGate) -> AsyncIterator[RedisThreadStore]:
        store = RedisThreadStore(fake_redis_gate)
        yield store
        await store.aclose()


# -- one body, three backends --------------------------------------------------------------


@pytest.fixture(params=[
    "fakeredis",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.integration),
])
def gate(request: pytest.FixtureRequest) -> RedisGate:
    """A gate on fakeredis (fast layer), the real server, and the local cluster."""
    if request.param == "fakeredis":
        fake: RedisGate = request.getfixturevalue("fake_redis_gate")
        return fake
    factory: GateFactory = request.getfixturevalue(
        "redis_gate" if request.param == "redis" else "redis_cluster_gate")
    return factory()


@pytest.fixture
def make_store(gate: RedisGate) -> Callable[..., RedisThreadStore]:
    def make(**options: Any) -> RedisThreadStore:
        return RedisThreadStore(gate, **options)
    return make


@pytest.fixture
def store(make_store: Callable[..., RedisThreadStore]) -> RedisThreadStore:
    return make_store()


async def pttls(gate: RedisGate, store: RedisThreadStore, thread_id: str) -> list[int]:
    return [await gate.client.pttl(key) for key in store.keys(thread_id)]


async def until(condition: Callable[[], Any], *, timeout: float = 5.0) -> None:
    """Wait (polling: Redis expiry has no event to wait on) until ``await condition()``."""
    with anyio.fail_after(timeout):
        for _ in iter(int, 1):
            if await condition():
                return
            await anyio.sleep(0.02)


async def test_the_keys_of_a_thread_share_one_slot(store: RedisThreadStore) -> None:
    for thread_id in ("t1", "thr_0123", "a}b", "{x}", "ü\ud800", "a:b:{c}"):
        meta, messages, ids_key = store.keys(thread_id)
        assert meta.endswith(b":meta") and messages.endswith(b":messages")
        assert key_slot(meta) == key_slot(messages) == key_slot(ids_key)
    assert len({key_slot(store.keys(f"thr_{n}")[0]) for n in range(50)}) > 40  # spread out
    for bad in ("", "}x"):
        with pytest.raises(StoreError, match="cannot be stored in Redis"):
            store.keys(bad)
        with pytest.raises(StoreError, match="cannot be stored in Redis"):
            await store.create_thread(bad)


async def test_layout_and_json_values(gate: RedisGate, store: RedisThreadStore) -> None:
    await store.create_thread("t1", metadata={"user": "ü"})
    await store.append("t1", tricky_messages())
    meta, messages, ids_key = store.keys("t1")
    assert meta == f"{gate.prefix}:thread:{{t1}}:meta".encode()
    stored_meta = await gate.client.hgetall(meta)
    assert json.loads(stored_meta[b"metadata"]) == {"user": "ü"}
    raw = await gate.client.lrange(messages, 0, -1)
    # JSON objects a person (or another language) can read: never pickle
    assert [json.loads(item)["id"] for item in raw] == ids(tricky_messages())
    assert all(item.startswith(b'{"id":') for item in raw)
    assert json.loads(raw[1])["content"][2]["input"]["big"] == 2**70
    assert await gate.client.smembers(ids_key) == {m.id.encode() for m in tricky_messages()}
    index = await gate.client.zrevrange(gate.key("thread", "index"), 0, -1)
    assert index == [b"t1"]


async def test_odd_ids_round_trip(store: RedisThreadStore) -> None:
    thread_id = "thr \ud800 {tag} ü"
    messages = [Message(role="user", content="x", id="m \udfff"),
                Message(role="user", content="y", id="m:{1}")]
    await store.create_thread(thread_id)
    await store.append(thread_id, messages)
    await store.append(thread_id, messages)  # dedup works on these ids too
    assert_same_messages(await store.messages(thread_id), messages)
    assert [t.id for t in await store.list_threads()] == [thread_id]


async def test_two_stores_on_one_prefix_share_threads(gate: RedisGate) -> None:
    a, b = RedisThreadStore(gate), RedisThreadStore(gate)
    await a.create_thread("t1")
    await b.append("t1", batch("m", 2))
    assert ids(await a.messages("t1")) == ["m-0", "m-1"]
    info = await b.get_thread("t1")
    assert info is not None and info.message_count == 2


@pytest.mark.redis
async def test_another_prefix_is_another_store(redis_gate: GateFactory) -> None:
    one = RedisThreadStore(redis_gate())
    other = RedisThreadStore(redis_gate(prefix=f"{redis_gate().prefix}-other"))
    await one.create_thread("t1")
    assert await other.get_thread("t1") is None
    assert await other.list_threads() == []


async def test_store_options_repr_and_close(gate: RedisGate) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RedisThreadStore(gate, ttl=0)
    with pytest.raises(ValueError, match="ttl"):
        RedisThreadStore(gate, ttl=-1.0)
    async with RedisThreadStore(gate, ttl=30) as store:
        assert store.ttl == 30
        assert repr(store) == (f"RedisThreadStore(url={gate.url!r}, prefix={gate.prefix!r}, "
                               "ttl=30)")
        await store.create_thread("t1")
    with pytest.raises(StoreError, match="closed"):
        await store.list_threads()
    # the gate is the runtime's: closing the store leaves it open for the others
    assert await RedisThreadStore(gate).get_thread("t1") is not None


# -- TTL --------------------------------------------------------------------------------


async def test_no_ttl_means_threads_never_expire(gate: RedisGate, store: RedisThreadStore) -> None:
    await store.create_thread("t1")
    await store.append("t1", batch("m", 1))
    assert await pttls(gate, store, "t1") == [-1, -1, -1]


async def test_ttl_is_set_on_create_and_refreshed_by_append_and_resume(
        gate: RedisGate, make_store: Callable[..., RedisThreadStore]) -> None:
    store = make_store(ttl=60)
    await store.create_thread("t1")
    meta_ttl, messages_ttl, ids_ttl = await pttls(gate, store, "t1")
    assert 55_000 < meta_ttl <= 60_000
    assert messages_ttl == ids_ttl == -2  # no messages yet, so no such keys
    await store.append("t1", batch("m", 2))
    assert all(55_000 < ttl <= 60_000 for ttl in await pttls(gate, store, "t1"))

    for key in store.keys("t1"):
        await gate.client.pexpire(key, 5_000)
    await store.append("t1", batch("m", 2))  # nothing new, but the thread is in use
    assert all(55_000 < ttl <= 60_000 for ttl in await pttls(gate, store, "t1"))

    for key in store.keys("t1"):
        await gate.client.pexpire(key, 5_000)
    await store.create_thread("t1", exist_ok=True)  # a run resuming the thread
    assert all(55_000 < ttl <= 60_000 for ttl in await pttls(gate, store, "t1"))

    for key in store.keys("t1"):
        await gate.client.pexpire(key, 5_000)
    await store.messages("t1")  # reads do not extend it
    await store.get_thread("t1")
    assert all(0 < ttl <= 5_000 for ttl in await pttls(gate, store, "t1"))


async def test_keep_until_in_the_state_outlives_the_ttl(
        gate: RedisGate, make_store: Callable[..., RedisThreadStore]) -> None:
    """Calls waiting for approval set ``keep_until``: the thread lives at least until
    then, through later writes too; clearing it gives the thread its ttl back."""
    import time

    store = make_store(ttl=60)
    await store.create_thread("t1")

    async def ttls_within(low: int, high: int, *, missing_ok: bool = False) -> None:
        ttls = dict(zip(store.keys("t1"), await pttls(gate, store, "t1"), strict=True))
        assert all(low < ttl <= high for ttl in ttls.values()
                   if not (missing_ok and ttl == -2)), ttls  # -2: no such key

    state = await store.set_state("t1", {"keep_until": time.time() + 3600},
                                  expected_version=0)
    await ttls_within(3_500_000, 3_600_000, missing_ok=True)  # no messages yet
    await store.append("t1", batch("m", 1))
    await ttls_within(3_500_000, 3_600_000)
    await store.set_state("t1", {}, expected_version=state.version)
    await ttls_within(55_000, 60_000)
    await store.set_state("t1", {"keep_until": time.time() - 10}, expected_version=2)
    await ttls_within(55_000, 60_000)


async def test_a_whole_thread_expires_and_leaves_the_list(
        gate: RedisGate, make_store: Callable[..., RedisThreadStore]) -> None:
    short, forever = make_store(ttl=0.2), make_store()
    await forever.create_thread("kept")
    await short.create_thread("t1")
    await short.append("t1", batch("m", 3))
    assert [t.id for t in await short.list_threads()] == ["t1", "kept"]

    async def gone() -> bool:
        return await short.get_thread("t1") is None

    await until(gone)
    for key in short.keys("t1"):
        assert not await gate.client.exists(key)
    with pytest.raises(ThreadNotFoundError):
        await short.messages("t1")
    with pytest.raises(ThreadNotFoundError):
        await short.append("t1", batch("n", 1))
    # the index entry of the expired thread is skipped, then pruned
    index = gate.key("thread", "index")
    assert await gate.client.zcard(index) == 2
    assert [t.id for t in await short.list_threads()] == ["kept"]
    assert await gate.client.zrange(index, 0, -1) == [b"kept"]
    # and the id can be used again, from scratch
    assert (await short.create_thread("t1")).message_count == 0
    assert await short.messages("t1") == []


# -- the index --------------------------------------------------------------------------


async def test_list_threads_skips_and_prunes_entries_of_vanished_threads(
        gate: RedisGate, store: RedisThreadStore) -> None:
    for n in range(120):  # more than one page of the index
        await store.create_thread(f"t{n:03d}")
    for n in range(0, 120, 2):  # gone behind the store's back (as an expired thread is)
        await gate.client.delete(*store.keys(f"t{n:03d}"))
    expected = [f"t{n:03d}" for n in range(119, 0, -2)]
    assert [t.id for t in await store.list_threads(limit=55)] == expected[:55]
    assert [t.id for t in await store.list_threads()] == expected
    assert await gate.client.zcard(gate.key("thread", "index")) == 60


async def test_a_refreshed_index_entry_is_not_pruned(gate: RedisGate,
                                                     store: RedisThreadStore) -> None:
    await store.create_thread("t1")
    index = gate.key("thread", "index")
    (_, clock), = await gate.client.zrange(index, 0, 0, withscores=True)
    # another process recreated t1 after our read: its clock moved on, so the
    # prune of the old entry must leave it alone
    await store._index_run("test", store._index_remove, b"t1", str(clock - 1).encode())
    assert await gate.client.zcard(index) == 1
    await store._index_run("test", store._index_remove, b"t1", str(clock).encode())
    assert await gate.client.zcard(index) == 0


async def test_an_index_update_that_fails_only_makes_the_list_lag(
        gate: RedisGate, store: RedisThreadStore) -> None:
    index = gate.key("thread", "index")
    await gate.client.set(index, "not a sorted set")
    with capture_events() as logs:
        await store.create_thread("t1")
        await store.append("t1", batch("m", 2))
    assert ids(await store.messages("t1")) == ["m-0", "m-1"]  # the writes went through
    lagging = [e for e in logs if e["event"] == "thread_store.index_lagging"]
    assert len(lagging) == 2 and lagging[0]["thread_id"] == "t1"
    with pytest.raises(StoreError, match="thread index holds a string"):
        await store.list_threads()
    assert gate.available and gate.failures == 0  # bad data is not Redis being down


async def test_a_foreign_index_member_raises_store_error(gate: RedisGate,
                                                         store: RedisThreadStore) -> None:
    await store.create_thread("t1")
    await gate.client.zadd(gate.key("thread", "index"), {b"\xff\xfe": 0})
    with pytest.raises(StoreError, match=re.escape(r"holds b'\xff\xfe', not a thread id")):
        await store.list_threads()


async def _append_after_a_script_flush(gate: RedisGate) -> None:
    store = RedisThreadStore(gate)
    await store.create_thread("t1")
    await gate.client.script_flush()  # as after a restart or a failover
    await store.append("t1", batch("m", 1))
    assert ids(await store.messages("t1")) == ["m-0"]


async def test_scripts_are_reloaded_after_a_script_flush(fake_redis_gate: RedisGate) -> None:
    await _append_after_a_script_flush(fake_redis_gate)


@pytest.mark.redis
@pytest.mark.integration
async def test_scripts_are_reloaded_after_a_script_flush_on_a_real_server(
        redis_server_process: RedisServerProcess) -> None:
    """On a private server: SCRIPT FLUSH is server-wide, and on the shared one it
    failed other tests' scripts mid-call."""
    from agentrt._redis import RedisGate

    gate = RedisGate(redis_server_process.url, prefix="flush")
    try:
        await _append_after_a_script_flush(gate)
    finally:
        await gate.aclose()


# -- values this store did not write ----------------------------------------------------


async def corrupt_message(gate: RedisGate, store: RedisThreadStore, value: bytes) -> None:
    await store.create_thread("t1")
    await store.append("t1", batch("m", 3))
    await gate.client.lset(store.keys("t1")[1], 1, value)


@pytest.mark.parametrize(("value", "message"), [
    (b'{"id": "m-1", "role": ', r"#1 of thread 't1' is corrupt"),
    (pickle.dumps({"id": "m-1"}), r"#1 of thread 't1' is corrupt"),
    (b"\xff\xfe", r"#1 of thread 't1' is corrupt"),
    (b"[1, 2]", r"#1 of thread 't1' is corrupt: it is not a JSON object"),
    (b'{"id": "m-1", "role": "system", "content": "", "created_at": 0, "metadata": {}}',
     r"'m-1' of thread 't1' is corrupt: .*role"),
    (b'{"id": "m-1", "role": "user", "content": [1], "created_at": 0, "metadata": {}}',
     r"'m-1' of thread 't1' is corrupt: a content block"),
    (b'{"id": "m-1", "role": "user", "content": 42, "created_at": 0, "metadata": {}}',
     r"'m-1' of thread 't1' is corrupt"),
    (b'{"id": "m-1", "role": "user", "content": "", "created_at": "now", "metadata": {}}',
     r"'m-1' of thread 't1' is corrupt: created_at"),
    (b'{"id": "m-1", "role": "user", "content": "", "created_at": NaN, "metadata": {}}',
     r"#1 of thread 't1' is corrupt: NaN is not JSON"),
    (b'{"id": "m-1", "role": "user", "content": "", "created_at": 0, "metadata": []}',
     r"'m-1' of thread 't1' is corrupt: metadata"),
    (b'{"role": "user", "content": "", "created_at": 0, "metadata": {}}',
     r"#1 of thread 't1' is corrupt: its id"),
])
async def test_a_corrupt_message_raises_store_error(gate: RedisGate, store: RedisThreadStore,
                                                    value: bytes, message: str) -> None:
    await corrupt_message(gate, store, value)
    with pytest.raises(StoreError, match=message):
        await store.messages("t1")
    # the thread itself is still readable, and Redis is not "down"
    info = await store.get_thread("t1")
    assert info is not None and info.message_count == 3
    assert gate.available and gate.failures == 0


@pytest.mark.parametrize("key", [0, 1, 2])
async def test_a_foreign_value_under_a_thread_key_raises_store_error(
        gate: RedisGate, store: RedisThreadStore, key: int) -> None:
    await store.create_thread("t1")
    await store.append("t1", batch("m", 1))
    target = store.keys("t1")[key]
    await gate.client.delete(target)
    await gate.client.set(target, b"\x80\x04\x95 someone else's value")
    kind = ("meta", "messages", "ids")[key]
    calls = [store.messages("t1"), store.append("t1", batch("n", 2)),
             store.create_thread("t1", exist_ok=True)]
    if key != 2:  # get_thread and list_threads read meta and messages, not ids
        calls += [store.get_thread("t1"), store.list_threads()]
    for call in calls:
        with pytest.raises(StoreError, match=f"thread 't1' in Redis is corrupt: its {kind} key "
                                             "holds a string"):
            await call
    # checked before any write: the failed append added nothing
    await gate.client.delete(target)
    if key != 0:
        assert "n-0" not in ids(await store.messages("t1"))
    assert gate.available and gate.failures == 0


@pytest.mark.parametrize(("field", "value", "message"), [
    ("metadata", b"{oops", "metadata of thread 't1' is corrupt"),
    ("metadata", b"\xff{}", "metadata of thread 't1' is corrupt"),
    ("metadata", b"[]", "metadata of thread 't1' is not a JSON object"),
    ("created_at", b"yesterday", "created_at of thread 't1' is corrupt"),
    ("updated_at", b"inf", "updated_at of thread 't1' is corrupt"),
])
async def test_corrupt_thread_fields_raise_store_error(
        gate: RedisGate, store: RedisThreadStore, field: str, value: bytes, message: str) -> None:
    await store.create_thread("t1")
    await gate.client.hset(store.keys("t1")[0], field, value)
    with pytest.raises(StoreError, match=message):
        await store.get_thread("t1")
    with pytest.raises(StoreError, match=message):
        await store.list_threads()


async def test_a_missing_thread_field_raises_store_error(gate: RedisGate,
                                                         store: RedisThreadStore) -> None:
    await store.create_thread("t1")
    await gate.client.hdel(store.keys("t1")[0], "metadata")
    with pytest.raises(StoreError, match="metadata of thread 't1' is corrupt: it is missing"):
        await store.get_thread("t1")
    await store.create_thread("t2")
    await gate.client.hdel(store.keys("t2")[0], "created_at")
    with pytest.raises(StoreError, match="created_at of thread 't2' is corrupt"):
        await store.get_thread("t2")


# -- Redis unavailable ------------------------------------------------------------------


async def test_fake_redis_down_raises_store_error_naming_the_operation(
        fake_redis_server: Any, redis_prefix: str) -> None:
    clock = ManualClock()
    gate = make_fake_gate(fake_redis_server, prefix=redis_prefix, clock=clock)
    store = RedisThreadStore(gate, retry_for=0)  # one try: this test is about giving up
    await store.create_thread("t1")
    fake_redis_server.connected = False
    for name, call in [("append", store.append("t1", batch("m", 1))),
                       ("get_thread", store.get_thread("t1")),
                       ("messages", store.messages("t1")),
                       ("list_threads", store.list_threads()),
                       ("create_thread", store.create_thread("t2")),
                       ("delete_thread", store.delete_thread("t1"))]:
        with pytest.raises(StoreError, match=f"Redis thread store: {name}") as caught:
            await call
        assert isinstance(caught.value.__cause__, BackendUnavailableError)
    fake_redis_server.connected = True
    clock.advance(store.gate.retry_after)
    await store.append("t1", batch("m", 1))
    assert ids(await store.messages("t1")) == ["m-0"]
    await gate.aclose()


@pytest.mark.redis
@pytest.mark.integration
async def test_redis_stopped_raises_store_error_and_the_store_recovers_after_a_restart(
        redis_server_process: RedisServerProcess, redis_gate: GateFactory) -> None:
    clock = ManualClock()
    gate = redis_gate(url=redis_server_process.url, timeout=1.0, retry_after=5.0, clock=clock)
    store = RedisThreadStore(gate, ttl=3600, retry_for=0)  # one try: about giving up
    await store.create_thread("t1", metadata={"who": "me"})
    await store.append("t1", batch("m", 1))

    redis_server_process.stop()
    with capture_events() as logs:
        with pytest.raises(StoreError, match="append of thread 't1' failed") as caught:
            await store.append("t1", batch("m", 2))
        assert isinstance(caught.value.__cause__, BackendUnavailableError)
        # no "circuit open": the store has nowhere else to go, so it asks Redis each time
        with pytest.raises(StoreError, match=r"messages of thread 't1' failed.*connecting"):
            await store.messages("t1")
        with pytest.raises(StoreError, match="list_threads failed"):
            await store.list_threads()
    assert [e["event"] for e in logs] == ["redis.unavailable"]

    redis_server_process.start()  # same port; the data comes back from its AOF
    clock.advance(store.gate.retry_after)
    await store.append("t1", batch("m", 2))  # the same store: no restart, no new gate
    assert ids(await store.messages("t1")) == ["m-0", "m-1"]
    info = await store.get_thread("t1")
    assert info is not None and info.metadata == {"who": "me"}


# -- several processes ------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.integration
async def test_two_processes_appending_to_one_thread(redis_url: str,
                                                     redis_gate: GateFactory) -> None:
    gate = redis_gate()
    count = 100
    store = RedisThreadStore(gate)
    await store.create_thread("t1")

    def command(tag: str) -> list[str]:
        return [sys.executable, str(CHILD), "append", redis_url, gate.prefix, "t1", tag,
                str(count)]

    with anyio.fail_after(50):
        async with (opened(command("A"), env=dict(os.environ)) as a,
                    opened(command("B"), env=dict(os.environ)) as b):
            await start_together_and_finish(a, b)

    stored = await store.messages("t1")
    info = await store.get_thread("t1")
    assert len(stored) == len({m.id for m in stored}) == 2 * count
    assert info is not None and info.message_count == 2 * count
    for tag, pid in (("A", a.pid), ("B", b.pid)):
        own = [m for m in stored if m.id.startswith(f"{tag}-")]
        assert [m.id for m in own] == [f"{tag}-{i:03d}" for i in range(count)]
        assert {m.metadata["pid"] for m in own} == {pid}
    # both really ran at once: their messages interleave
    tags = [m.id[0] for m in stored]
    assert tags != sorted(tags)


# -- the cluster ------------------------------------------------------------------------


@pytest.mark.integration
async def test_threads_spread_over_the_cluster_nodes(
        redis_cluster_gate: GateFactory, redis_cluster_nodes: LocalRedisCluster) -> None:
    gate = redis_cluster_gate()
    store = RedisThreadStore(gate)
    for n in range(30):
        await store.create_thread(f"thr_{n}")
        await store.append(f"thr_{n}", batch(f"m{n}", 2))
    owners = set()
    for n in range(30):
        keys = store.keys(f"thr_{n}")
        slots = {int(await gate.client.cluster_keyslot(key)) for key in keys}
        assert len(slots) == 1  # the server agrees: one slot per thread
        owners.add(gate.client.get_node_from_key(keys[0]).port)
    assert owners == {node.port for node in redis_cluster_nodes.nodes}
    assert len(await store.list_threads()) == 30


# -- layout version 1 -> 2 --------------------------------------------------------------

V1_DUMP = Path(__file__).with_name("fixtures") / "redis-v1.json"


async def load_v1_threads(gate: RedisGate) -> None:
    """The keys agentrt's layout-1 store wrote (tests/thread/fixtures), under ``gate``'s prefix."""
    dump = json.loads(V1_DUMP.read_text())
    client = gate.client
    for name, entry in dump["keys"].items():
        key = (gate.prefix + name.removeprefix(dump["prefix"])).encode("utf-8", "surrogatepass")
        value = entry["value"]
        if entry["type"] == "hash":
            await client.hset(key, mapping=value)
        elif entry["type"] == "list":
            await client.rpush(key, *[v.encode("utf-8", "surrogatepass") for v in value])
        elif entry["type"] == "set":
            await client.sadd(key, *value)
        else:
            await client.zadd(key, dict(value))


async def test_a_layout_1_thread_is_upgraded_on_read(gate: RedisGate,
                                                     store: RedisThreadStore) -> None:
    await load_v1_threads(gate)
    meta = store.keys("legacy")[0]
    assert await gate.client.hget(meta, "v") is None
    legacy = await store.get_thread("legacy")  # a read upgrades it
    assert legacy is not None and legacy.owner == ""  # it belongs to runs without identity
    assert repr(legacy.metadata) == repr({"user": "ünïcode", "n": 1.0})
    fields = await gate.client.hgetall(meta)
    assert (fields[b"v"], fields[b"owner"], fields[b"state"], fields[b"state_version"]) == (
        b"2", b"", b"{}", b"0")
    assert_same_messages(await store.messages("legacy"), tricky_messages())
    assert [t.id for t in await store.list_threads()] == ["empty", "legacy"]
    assert (await store.get_thread("empty")) is not None
    # and what layout 2 added works on it
    await store.append("legacy", batch("more", 1), expected_count=len(tricky_messages()))
    assert await store.get_state("legacy") == ThreadState({}, 0)
    await store.set_state("legacy", {"pending": []}, expected_version=0)
    await store.set_owner("legacy", '{"user":"bob"}', expected="")
    await store.append_events("legacy", [ThreadEvent("summary", id="e1")])
    assert ids(await store.events("legacy")) == ["e1"]
    info = await store.get_thread("legacy")
    assert info is not None and info.owner == '{"user":"bob"}'


async def test_a_layout_1_thread_is_upgraded_by_a_write_too(gate: RedisGate,
                                                            store: RedisThreadStore) -> None:
    await load_v1_threads(gate)
    await store.append("empty", batch("m", 1))
    assert await gate.client.hget(store.keys("empty")[0], "v") == b"2"
    info = await store.create_thread("empty", exist_ok=True, owner='{"user":"eve"}')
    assert info.owner == "" and info.message_count == 1


async def test_a_newer_layout_is_refused(gate: RedisGate, store: RedisThreadStore) -> None:
    await store.create_thread("t1")
    await gate.client.hset(store.keys("t1")[0], "v", "3")
    for call in (store.get_thread("t1"), store.messages("t1"), store.append("t1", batch("m", 1)),
                 store.create_thread("t1", exist_ok=True)):
        with pytest.raises(StoreError, match="layout version 3, newer than this agentrt's 2"):
            await call
    assert await gate.client.llen(store.keys("t1")[1]) == 0  # the append wrote nothing


async def test_a_missing_owner_is_corrupt_not_unowned(gate: RedisGate,
                                                      store: RedisThreadStore) -> None:
    # defaulting it to "" would hand the thread to every run without an identity
    await store.create_thread("t1", owner='{"user":"bob"}')
    await gate.client.hdel(store.keys("t1")[0], "owner")
    with pytest.raises(StoreError, match="owner of thread 't1' is corrupt: it is missing"):
        await store.get_thread("t1")


@pytest.mark.parametrize("key", ["events", "event_ids", "claim"])
async def test_a_foreign_value_under_a_new_key_raises_store_error(
        gate: RedisGate, store: RedisThreadStore, key: str) -> None:
    await store.create_thread("t1")
    events, event_ids = store.event_keys("t1")
    target = {"events": events, "event_ids": event_ids}.get(key)
    if target is None:
        await gate.client.hset(store.claim_key("t1"), mapping={"x": 1})
        with pytest.raises(StoreError, match="its claim key holds a hash"):
            await store.claim("t1", "run_a", lease=30)
        # in a batch of renewals, it is only not renewed: the others are
        assert await store.claim("t2", "run_b", lease=30)
        assert await store.renew_claims([("t1", "run_a"), ("t2", "run_b")], lease=30) == [
            False, True]
    else:
        await gate.client.hset(target, mapping={"x": 1})
        with pytest.raises(StoreError, match=f"its {key} key holds a hash"):
            await store.events("t1")
    assert store.gate.available and store.gate.failures == 0


async def test_events_expire_with_their_thread(gate: RedisGate,
                                               make_store: Callable[..., RedisThreadStore]) -> None:
    store = make_store(ttl=60)
    await store.create_thread("t1")
    await store.append_events("t1", [ThreadEvent("x", id="e1")])
    for key in store.event_keys("t1"):
        assert 55_000 < await gate.client.pttl(key) <= 60_000
    assert await store.claim("t1", "run_a", lease=30)
    assert 25_000 < await gate.client.pttl(store.claim_key("t1")) <= 30_000  # its own lease


@pytest.mark.redis
async def test_five_hundred_concurrent_writers_queue_instead_of_failing(
        redis_gate: GateFactory) -> None:
    """Failed before: past redis-py's 100 pooled connections, commands failed with
    MaxConnectionsError, which opened the circuit as if Redis were down: 400 of 500
    concurrent runs' writes failed on a healthy Redis."""
    # A timeout no busy machine misses: the pool's cap failed commands at once, whatever
    # the timeout, so this still fails on the old pool.
    gate = redis_gate(timeout=10)
    store = RedisThreadStore(gate, retry_for=0)  # no retries to hide behind
    failures: list[BaseException] = []

    async def writer(n: int) -> None:
        try:
            await store.create_thread(f"t{n}", exist_ok=True)
            for i in range(3):
                await store.append(f"t{n}", batch(f"m{i}", 1), expected_count=i)
        except StoreError as exc:
            failures.append(exc)

    with capture_events() as logs:
        async with anyio.create_task_group() as tg:
            for n in range(500):
                tg.start_soon(writer, n)
    assert failures == []
    assert "redis.unavailable" not in [e["event"] for e in logs]
    assert (await store.get_thread("t499")) is not None
