"""The contract every ``ThreadStore`` must keep, as a reusable test class.

A store's test module subclasses ``ThreadStoreConformance`` and overrides the
``store`` fixture (an async generator yielding a fresh, empty store). The
suite runs on asyncio and trio; a store bound to one event loop (Redis's
``redis.asyncio``) overrides ``anyio_backend`` to return ``"asyncio"``.

Content is compared by ``repr``, not ``==``: ``1 == 1.0 == True`` in Python,
and ``==`` ignores dict key order, while a store must keep all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from agentrt._errors import StoreError, ThreadChangedError, ThreadNotFoundError
from agentrt.thread._messages import Message, ThreadEvent, ThreadInfo, ThreadState
from agentrt.thread._store import ThreadStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

__all__ = ["ThreadStoreConformance", "assert_same_messages", "deeply_nested", "tricky_messages"]


def tricky_messages() -> list[Message]:
    """Messages whose exact round-trip a careless store would break."""
    return [
        Message(
            role="user",
            content="héllo 世界 🎉 \"quoted\" back\\slash\nnew line \x00 \u2028 lone \ud800",
            id="umsg_1",
            created_at=1_700_000_000.123456,
            metadata={"source": "cli", "tags": ["a", "b"]},
        ),
        Message(
            role="assistant",
            content=[
                {"type": "thinking", "thinking": "hmm…", "signature": "c2ln"},
                {"type": "text", "text": "Let me look.", "citations": None},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "search",
                    "input": {
                        "z_last_key_first": 1,
                        "int": 1,
                        "float": 1.0,
                        "neg_zero": -0.0,
                        "tiny": 1e-300,
                        "tenth": 0.1,
                        "big": 2**70,
                        "flags": [True, False, None, 0, 1],
                        "nested": {"b": {"a": [{"y": 2.5, "x": "ü"}]}, "a": []},
                        "empty": {},
                    },
                },
            ],
            id="msg_01ABC",
            created_at=1_700_000_001.5,
            metadata={"usage": {"input_tokens": 12, "output_tokens": 7}, "stop_reason": "tool_use",
                      "cost": 0.0},
        ),
        Message(
            role="user",
            content=[
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": "found 3 results"}],
                    "is_error": False,
                },
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": "boom",
                 "is_error": True, "cache_control": {"type": "ephemeral"}},
            ],
            id="umsg_2",
            created_at=1_700_000_002.0,
        ),
        Message(role="assistant", content=[], id="msg_02", created_at=0.0),
        Message(role="user", content="", id="umsg_3", created_at=1e9),
    ]


def assert_same_messages(got: Sequence[Message], expected: Sequence[Message]) -> None:
    assert [repr(m) for m in got] == [repr(m) for m in expected]


def batch(prefix: str, n: int) -> list[Message]:
    return [Message(role="user", content=f"{prefix} #{i}", id=f"{prefix}-{i}") for i in range(n)]


def ids(messages: Sequence[Message] | Sequence[ThreadEvent]) -> list[str]:
    return [m.id for m in messages]


def deeply_nested(depth: int = 100_000) -> list[Any]:
    """A JSON-shaped value nested ``depth`` lists deep (past any recursion limit)."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


async def until(condition: Any, *, timeout: float = 5.0) -> None:
    """Poll ``await condition()`` (claims expire on a clock: no event to wait on)."""
    with anyio.fail_after(timeout):
        while not await condition():
            await anyio.sleep(0.01)


class ThreadStoreConformance:
    pytestmark = pytest.mark.anyio

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        return request.param

    @pytest.fixture
    async def store(self) -> AsyncIterator[ThreadStore]:
        """Override: yield a fresh, empty store, and close it afterwards."""
        raise NotImplementedError("a ThreadStoreConformance subclass must define `store`")
        yield  # pragma: no cover

    # -- threads -------------------------------------------------------------

    async def test_is_a_thread_store(self, store: ThreadStore) -> None:
        assert isinstance(store, ThreadStore)

    async def test_create_with_generated_id(self, store: ThreadStore) -> None:
        info = await store.create_thread()
        assert info.id.startswith("thr_")
        assert (info.message_count, info.metadata) == (0, {})
        assert info.created_at == info.updated_at > 0
        assert await store.get_thread(info.id) == info
        assert (await store.create_thread()).id != info.id

    async def test_create_with_id_and_metadata(self, store: ThreadStore) -> None:
        metadata = {"user": "ünïcode", "n": 1, "x": 1.0, "nested": {"b": [True, None], "a": 2}}
        info = await store.create_thread("t1", metadata=metadata)
        assert info.id == "t1"
        assert repr(info.metadata) == repr(metadata)
        got = await store.get_thread("t1")
        assert got is not None
        assert repr(got.metadata) == repr(metadata)

    async def test_create_existing_fails_unless_exist_ok(self, store: ThreadStore) -> None:
        await store.create_thread("t1", metadata={"v": 1})
        await store.append("t1", batch("m", 2))
        with pytest.raises(StoreError, match="already exists"):
            await store.create_thread("t1")
        info = await store.create_thread("t1", metadata={"v": 2}, exist_ok=True)
        assert (info.id, info.metadata, info.message_count) == ("t1", {"v": 1}, 2)
        assert info == await store.get_thread("t1")

    async def test_concurrent_create_exist_ok(self, store: ThreadStore) -> None:
        infos: list[ThreadInfo] = []

        async def create() -> None:
            infos.append(await store.create_thread("t1", exist_ok=True))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(create)
        assert len({info.created_at for info in infos}) == 1
        assert [t.id for t in await store.list_threads()] == ["t1"]

    async def test_get_missing_thread_is_none(self, store: ThreadStore) -> None:
        assert await store.get_thread("nope") is None

    async def test_list_threads_most_recently_updated_first(self, store: ThreadStore) -> None:
        assert await store.list_threads() == []
        for name in ("a", "b", "c"):
            await store.create_thread(name)
        assert [t.id for t in await store.list_threads()] == ["c", "b", "a"]
        await store.append("a", batch("m", 3))
        listed = await store.list_threads()
        assert [(t.id, t.message_count) for t in listed] == [("a", 3), ("c", 0), ("b", 0)]
        assert [t.id for t in await store.list_threads(limit=2)] == ["a", "c"]
        assert await store.list_threads(limit=0) == []
        await store.append("b", batch("n", 1))
        assert [t.id for t in await store.list_threads()] == ["b", "a", "c"]
        with pytest.raises(ValueError, match="limit"):
            await store.list_threads(limit=-1)

    async def test_delete_thread(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        await store.create_thread("t2")
        await store.append("t1", batch("m", 2))
        await store.delete_thread("t1")
        assert await store.get_thread("t1") is None
        assert [t.id for t in await store.list_threads()] == ["t2"]
        with pytest.raises(ThreadNotFoundError):
            await store.messages("t1")
        await store.delete_thread("t1")  # idempotent
        await store.delete_thread("never-existed")
        # the id is free again, and the new thread starts empty
        assert (await store.create_thread("t1")).message_count == 0
        assert await store.messages("t1") == []

    # -- messages ------------------------------------------------------------

    async def test_round_trip_is_exact(self, store: ThreadStore) -> None:
        expected = tricky_messages()
        await store.create_thread("t1")
        await store.append("t1", expected)
        assert_same_messages(await store.messages("t1"), expected)
        info = await store.get_thread("t1")
        assert info is not None
        assert info.message_count == len(expected)

    async def test_order_is_kept_across_appends(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        expected: list[Message] = []
        for i in range(6):
            new = batch(f"b{i}", i % 3 + 1)
            await store.append("t1", new)
            expected += new
        assert_same_messages(await store.messages("t1"), expected)

    async def test_append_updates_the_thread(self, store: ThreadStore) -> None:
        created = await store.create_thread("t1")
        await store.append("t1", batch("m", 2))
        info = await store.get_thread("t1")
        assert info is not None
        assert info.message_count == 2
        assert info.created_at == created.created_at
        assert info.updated_at >= created.updated_at

    async def test_append_is_idempotent_by_id(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        first = batch("m", 3)
        await store.append("t1", first)
        await store.append("t1", first)  # a retry after a crash
        assert ids(await store.messages("t1")) == ["m-0", "m-1", "m-2"]
        # a batch overlapping what is stored: only the new ones are added, in order
        more = batch("m", 5)
        await store.append("t1", [more[4], more[1], more[3]])
        assert ids(await store.messages("t1")) == ["m-0", "m-1", "m-2", "m-4", "m-3"]
        # the same id twice in one batch: stored once, the first one wins
        twice = [Message(role="user", content="one", id="x"),
                 Message(role="user", content="two", id="x")]
        await store.append("t1", twice)
        stored = await store.messages("t1")
        assert [(m.id, m.content) for m in stored[5:]] == [("x", "one")]
        info = await store.get_thread("t1")
        assert info is not None
        assert info.message_count == 6

    async def test_empty_append(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        await store.append("t1", [])
        assert await store.messages("t1") == []
        with pytest.raises(ThreadNotFoundError):
            await store.append("missing", [])

    async def test_missing_thread_raises(self, store: ThreadStore) -> None:
        with pytest.raises(ThreadNotFoundError) as info:
            await store.append("missing", batch("m", 1))
        assert info.value.thread_id == "missing"
        with pytest.raises(ThreadNotFoundError):
            await store.messages("missing")
        assert await store.get_thread("missing") is None  # and the append created nothing

    async def test_unstorable_batch_is_refused_whole(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        good = batch("ok", 2)
        not_json = Message(role="user", content=[{"type": "text", "text": object()}], id="bad")
        with pytest.raises(StoreError, match="'bad'"):
            await store.append("t1", [*good, not_json])
        nan = Message(role="user", content=[{"type": "x", "v": float("nan")}], id="nan")
        with pytest.raises(StoreError, match="'nan'"):
            await store.append("t1", [*good, nan])
        bad_role = Message(role="system", content="hi", id="sys")  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="role"):
            await store.append("t1", [*good, bad_role])
        assert await store.messages("t1") == []
        with pytest.raises(StoreError, match="metadata"):
            await store.create_thread("t2", metadata={"x": object()})
        assert await store.get_thread("t2") is None

    async def test_concurrent_appends_lose_and_duplicate_nothing(self, store: ThreadStore) -> None:
        tasks, per_batch = 50, 5
        await store.create_thread("t1")
        go = anyio.Event()

        async def writer(n: int) -> None:
            await go.wait()
            await store.append("t1", batch(f"w{n}a", per_batch))
            await store.append("t1", batch(f"w{n}b", per_batch))

        async with anyio.create_task_group() as tg:
            for n in range(tasks):
                tg.start_soon(writer, n)
            await wait_all_tasks_blocked()
            go.set()

        stored = ids(await store.messages("t1"))
        assert len(stored) == len(set(stored)) == tasks * per_batch * 2
        for n in range(tasks):
            for half in "ab":
                start = stored.index(f"w{n}{half}-0")
                assert stored[start:start + per_batch] == ids(batch(f"w{n}{half}", per_batch))
            assert stored.index(f"w{n}a-0") < stored.index(f"w{n}b-0")

    async def test_cancelled_append_is_all_or_nothing(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        messages = batch("m", 20)
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.append, "t1", messages)
            await wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        assert ids(await store.messages("t1")) in ([], ids(messages))
        await store.append("t1", messages)  # the retry completes it, exactly once
        assert ids(await store.messages("t1")) == ids(messages)

    async def test_deeply_nested_records_are_refused_whole(self, store: ThreadStore) -> None:
        """Failed before: a record nested 100,000 deep raised a bare RecursionError."""
        await store.create_thread("t1")
        deep = Message(role="user", content=[{"type": "text", "text": "x",
                                              "deep": deeply_nested()}], id="deep")
        with pytest.raises(StoreError, match=r"'deep'.*nested too deeply"):
            await store.append("t1", [*batch("ok", 1), deep])
        odd = Message(role="user", content="x", id="odd", metadata={"deep": deeply_nested()})
        with pytest.raises(StoreError, match="'odd'"):
            await store.append("t1", [odd])
        with pytest.raises(StoreError, match="'t2'"):
            await store.create_thread("t2", metadata={"deep": deeply_nested()})
        with pytest.raises(StoreError, match="'t1'"):
            await store.set_state("t1", {"deep": deeply_nested()}, expected_version=0)
        with pytest.raises(StoreError, match="'e1'"):
            await store.append_events("t1", [ThreadEvent("x", {"deep": deeply_nested()},
                                                         id="e1")])
        # nothing of it was stored, and the thread goes on
        assert await store.messages("t1") == []
        assert await store.events("t1") == []
        assert await store.get_state("t1") == ThreadState({}, 0)
        assert await store.get_thread("t2") is None
        await store.append("t1", batch("m", 1))
        assert ids(await store.messages("t1")) == ["m-0"]

    # -- the optimistic check ------------------------------------------------

    async def test_append_with_the_expected_count(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        await store.append("t1", batch("a", 2), expected_count=0)
        await store.append("t1", batch("b", 1), expected_count=2)
        with pytest.raises(ThreadChangedError, match="expected 2 messages, found 3") as caught:
            await store.append("t1", batch("c", 2), expected_count=2)
        assert caught.value.thread_id == "t1"
        assert isinstance(caught.value, StoreError)
        assert ids(await store.messages("t1")) == ["a-0", "a-1", "b-0"]  # nothing of it stored
        # a batch adding nothing (the retry of an append that went through) succeeds
        await store.append("t1", batch("b", 1), expected_count=2)
        await store.append("t1", batch("b", 1), expected_count=0)
        # ... but one adding anything is checked, even if part of it is stored
        with pytest.raises(ThreadChangedError):
            await store.append("t1", [*batch("b", 1), *batch("d", 1)], expected_count=2)
        await store.append("t1", [*batch("b", 1), *batch("d", 1)], expected_count=3)
        assert ids(await store.messages("t1")) == ["a-0", "a-1", "b-0", "d-0"]
        with pytest.raises(ThreadNotFoundError):
            await store.append("missing", batch("m", 1), expected_count=0)

    async def test_racing_writers_with_the_expected_count_never_interleave(
            self, store: ThreadStore) -> None:
        """Each writer appends what it believes comes next; exactly one wins each round,
        the others are told the thread changed, and the thread stays a sequence."""
        await store.create_thread("t1")
        go = anyio.Event()
        outcomes: list[str] = []

        async def writer(n: int) -> None:
            await go.wait()
            count = len(await store.messages("t1"))
            try:
                await store.append("t1", batch(f"w{n}", 2), expected_count=count)
                outcomes.append("won")
            except ThreadChangedError:
                outcomes.append("lost")

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(writer, n)
            await wait_all_tasks_blocked()
            go.set()
        stored = ids(await store.messages("t1"))
        assert outcomes.count("won") >= 1 and len(outcomes) == 20
        assert len(stored) == 2 * outcomes.count("won")
        for start in range(0, len(stored), 2):  # whole batches, one after the other
            assert stored[start].endswith("-0") and stored[start + 1] == (
                stored[start][:-1] + "1")

    # -- owners --------------------------------------------------------------

    async def test_a_thread_has_the_owner_it_was_created_with(self, store: ThreadStore) -> None:
        owner = '{"account":"ünï","user":"bob"}'
        info = await store.create_thread("t1", owner=owner)
        assert info.owner == owner
        assert (await store.get_thread("t1")) == info
        # exist_ok returns the thread as it is: another caller's owner does not replace it
        again = await store.create_thread("t1", exist_ok=True, owner='{"user":"eve"}')
        assert again.owner == owner
        assert (await store.create_thread("t2")).owner == ""
        listed = {t.id: t.owner for t in await store.list_threads()}
        assert listed == {"t1": owner, "t2": ""}

    async def test_set_owner_is_compare_and_set(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        await store.set_owner("t1", '{"user":"bob"}', expected="")
        info = await store.get_thread("t1")
        assert info is not None and info.owner == '{"user":"bob"}'
        await store.set_owner("t1", '{"user":"bob"}', expected="")  # a retry: already so
        with pytest.raises(ThreadChangedError, match="owner"):
            await store.set_owner("t1", '{"user":"eve"}', expected="")
        info = await store.get_thread("t1")
        assert info is not None and info.owner == '{"user":"bob"}'
        with pytest.raises(ThreadNotFoundError):
            await store.set_owner("missing", "x", expected="")

    # -- state ---------------------------------------------------------------

    async def test_state_is_versioned_json(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        assert await store.get_state("t1") == ThreadState({}, 0)
        data = {"pending": [{"id": "toolu_1", "input": {"n": 1.0, "big": 2**70}}], "z": None}
        stored = await store.set_state("t1", data, expected_version=0)
        assert stored == ThreadState(data, 1)
        got = await store.get_state("t1")
        assert repr(got.data) == repr(data) and got.version == 1
        # the retry of a write that went through succeeds, and changes nothing
        assert (await store.set_state("t1", data, expected_version=0)).version == 1
        with pytest.raises(ThreadChangedError, match="expected state version 0, found 1"):
            await store.set_state("t1", {"other": 1}, expected_version=0)
        assert (await store.set_state("t1", {}, expected_version=1)).version == 2
        got.data["pending"].clear()  # what a caller holds is not the stored state
        assert await store.get_state("t1") == ThreadState({}, 2)
        with pytest.raises(StoreError, match="JSON"):
            await store.set_state("t1", {"x": object()}, expected_version=2)
        with pytest.raises(ThreadNotFoundError):
            await store.get_state("missing")
        with pytest.raises(ThreadNotFoundError):
            await store.set_state("missing", {}, expected_version=0)

    # -- events --------------------------------------------------------------

    async def test_events_round_trip_in_order_and_idempotently(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        assert await store.events("t1") == []
        first = [ThreadEvent("summary", {"covers": [0, 12], "text": "ü \ud800"}, id="e1",
                             created_at=1.5),
                 ThreadEvent("cleared", {"tool_use_ids": ["toolu_1"]}, id="e2", created_at=2)]
        await store.append_events("t1", first)
        await store.append_events("t1", [first[1], ThreadEvent("x", {}, id="e3",
                                                                  created_at=3.0)])
        got = await store.events("t1")
        assert ids(got) == ["e1", "e2", "e3"]
        assert [repr(e.data) for e in got[:2]] == [repr(e.data) for e in first]
        assert [e.kind for e in got] == ["summary", "cleared", "x"]
        assert [e.created_at for e in got] == [1.5, 2.0, 3.0]
        assert ids(await store.messages("t1")) == []  # events are not messages
        with pytest.raises(StoreError, match="'bad'"):
            await store.append_events("t1", [ThreadEvent("y", {}, id="e4"),
                                             ThreadEvent("y", {"v": float("nan")}, id="bad")])
        assert ids(await store.events("t1")) == ["e1", "e2", "e3"]
        with pytest.raises(ThreadNotFoundError):
            await store.events("missing")
        with pytest.raises(ThreadNotFoundError):
            await store.append_events("missing", first)

    async def test_a_deleted_thread_takes_its_state_and_events_along(
            self, store: ThreadStore) -> None:
        await store.create_thread("t1", owner="bob")
        await store.set_state("t1", {"a": 1}, expected_version=0)
        await store.append_events("t1", [ThreadEvent("x", id="e1")])
        await store.delete_thread("t1")
        info = await store.create_thread("t1")
        assert info.owner == "" and info.message_count == 0
        assert await store.get_state("t1") == ThreadState({}, 0)
        assert await store.events("t1") == []

    # -- claims --------------------------------------------------------------

    async def test_one_holder_at_a_time(self, store: ThreadStore) -> None:
        assert await store.claim("t1", "run_a", lease=30)  # no thread needed
        assert not await store.claim("t1", "run_b", lease=30)
        assert await store.claim("t1", "run_a", lease=30)  # its own: taken again
        assert await store.claim("t2", "run_b", lease=30)  # another thread
        assert await store.renew_claims([("t1", "run_a"), ("t2", "run_b"), ("t1", "run_b"),
                                         ("t3", "run_c")], lease=30) == [
            True, True, False, False]
        assert await store.renew_claims([], lease=30) == []
        await store.release_claim("t1", "run_b")  # not its claim: nothing happens
        assert not await store.claim("t1", "run_b", lease=30)
        await store.release_claim("t1", "run_a")
        await store.release_claim("t1", "run_a")  # idempotent
        assert await store.renew_claims([("t1", "run_a")], lease=30) == [False]
        assert await store.claim("t1", "run_b", lease=30)

    async def test_an_expired_claim_is_taken_over(self, store: ThreadStore) -> None:
        assert await store.claim("t1", "dead_run", lease=0.05)

        async def taken() -> bool:
            return await store.claim("t1", "run_b", lease=30)

        await until(taken)
        assert await store.renew_claims([("t1", "dead_run")], lease=30) == [False]  # lost
        assert not await store.claim("t1", "dead_run", lease=30)
        await store.release_claim("t1", "dead_run")  # too late: run_b keeps it
        assert not await store.claim("t1", "run_c", lease=30)

    async def test_a_renewed_claim_outlives_its_first_lease(self, store: ThreadStore) -> None:
        assert await store.claim("t1", "run_a", lease=0.2)
        assert await store.renew_claims([("t1", "run_a")], lease=30) == [True]
        await anyio.sleep(0.3)
        assert not await store.claim("t1", "run_b", lease=30)

    async def test_racing_claims_have_one_winner(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        go = anyio.Event()
        won: list[str] = []

        async def contender(n: int) -> None:
            await go.wait()
            if await store.claim("t1", f"run_{n}", lease=30):
                won.append(f"run_{n}")

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(contender, n)
            await wait_all_tasks_blocked()
            go.set()
        assert len(won) == 1

    async def test_claims_outlive_the_thread_and_check_their_arguments(
            self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        assert await store.claim("t1", "run_a", lease=30)
        await store.delete_thread("t1")
        assert not await store.claim("t1", "run_b", lease=30)  # a lock on the id, not a row
        for holder, lease in (("", 1.0), ("run", 0), ("run", -1.0), ("run", float("nan"))):
            with pytest.raises(ValueError):
                await store.claim("t1", holder, lease=lease)
        with pytest.raises(ValueError):
            await store.release_claim("t1", "")

    # -- isolation -----------------------------------------------------------

    async def test_returned_objects_are_not_stored_state(self, store: ThreadStore) -> None:
        metadata: dict[str, Any] = {"tags": ["a"]}
        info = await store.create_thread("t1", metadata=metadata)
        metadata["tags"].append("mutated")
        info.metadata["tags"].append("mutated")
        sent = tricky_messages()
        await store.append("t1", sent)
        assert isinstance(sent[1].content, list)
        sent[1].content[2]["input"]["int"] = 999
        sent[1].content.append({"type": "text", "text": "added"})
        sent[0].metadata["source"] = "mutated"

        got = await store.messages("t1")
        assert isinstance(got[1].content, list)
        got[1].content[2]["input"]["nested"]["b"]["a"].clear()
        got[1].blocks().clear()
        got[0].metadata.clear()
        fetched = await store.get_thread("t1")
        assert fetched is not None
        fetched.metadata.clear()
        (await store.list_threads())[0].metadata["x"] = 1

        assert_same_messages(await store.messages("t1"), tricky_messages())
        again = await store.get_thread("t1")
        assert again is not None
        assert again.metadata == {"tags": ["a"]}

    # -- lifecycle -----------------------------------------------------------

    async def test_closed_store_refuses_use(self, store: ThreadStore) -> None:
        await store.create_thread("t1")
        await store.aclose()
        await store.aclose()  # idempotent
        with pytest.raises(StoreError, match="closed"):
            await store.get_thread("t1")
        with pytest.raises(StoreError, match="closed"):
            await store.append("t1", batch("m", 1))

    async def test_operations_are_cancellation_points(self, store: ThreadStore) -> None:
        # A store call checkpoints, so a loop of them can be cancelled and
        # never hogs the event loop.
        await store.create_thread("t1")
        reached = False
        with anyio.CancelScope() as scope:
            scope.cancel()
            await store.get_thread("t1")
            reached = True  # pragma: no cover
        assert not reached
