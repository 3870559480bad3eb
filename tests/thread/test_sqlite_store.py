from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from agentrt._errors import StoreError
from agentrt.thread._messages import ThreadEvent, ThreadState
from agentrt.thread.sqlite import SCHEMA_VERSION, SQLiteThreadStore

from .conformance import ThreadStoreConformance, assert_same_messages, batch, ids, tricky_messages

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def raw(path: Path, sql: str, *params: Any) -> list[Any]:
    """One statement on the file through a separate plain sqlite3 connection."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return conn.execute(sql, params).fetchall()


async def write_file(path: Path, data: bytes) -> None:
    await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
    await anyio.Path(path).write_bytes(data)


class TestSQLiteThreadStore(ThreadStoreConformance):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[SQLiteThreadStore]:
        store = SQLiteThreadStore(tmp_path / "threads.db")
        yield store
        await store.aclose()

    @pytest.fixture
    def db(self, tmp_path: Path) -> Path:
        return tmp_path / "nested" / "dir" / "threads.db"

    async def test_creates_file_and_directory_on_first_use(self, db: Path) -> None:
        store = SQLiteThreadStore(db)
        assert not db.parent.exists()  # nothing happens before first use
        async with store:
            assert await anyio.Path(db).is_file()
        assert store.path == db
        assert repr(store) == f"SQLiteThreadStore({str(db)!r})"

    async def test_data_survives_close_and_reopen(self, db: Path) -> None:
        async with SQLiteThreadStore(db) as store:
            await store.create_thread("old", metadata={"n": 1.0})
            await store.create_thread("t1", metadata={"user": "ü"})
            await store.append("t1", tricky_messages())
            before_threads = await store.list_threads()
        async with SQLiteThreadStore(str(db)) as store:
            assert await store.list_threads() == before_threads
            assert repr((await store.list_threads())[1].metadata) == repr({"n": 1.0})
            assert_same_messages(await store.messages("t1"), tricky_messages())
            # appends continue after what was stored, and retries still dedupe
            await store.append("t1", [*tricky_messages()[-1:], *batch("more", 2)])
            assert ids(await store.messages("t1")) == [
                *ids(tricky_messages()), "more-0", "more-1"]

    async def test_wal_mode_and_schema_version(self, db: Path) -> None:
        async with SQLiteThreadStore(db) as store:
            await store.create_thread("t1")
        assert raw(db, "PRAGMA journal_mode") == [("wal",)]
        assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]

    async def test_newer_schema_is_refused(self, db: Path) -> None:
        async with SQLiteThreadStore(db) as store:
            await store.create_thread("t1")
        raw(db, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        store = SQLiteThreadStore(db)
        with pytest.raises(StoreError, match=f"{db.name}.*schema version {SCHEMA_VERSION + 1}"):
            await store.get_thread("t1")
        with pytest.raises(StoreError, match="newer"):
            async with store:
                pass  # pragma: no cover
        await store.aclose()

    async def test_corrupt_content_raises_store_error(self, db: Path) -> None:
        async with SQLiteThreadStore(db) as store:
            await store.create_thread("t1")
            await store.append("t1", batch("m", 3))
            raw(db, "UPDATE messages SET content = '[{\"type\": ' WHERE id = 'm-1'")
            with pytest.raises(StoreError, match="'m-1' of thread 't1' is corrupt") as info:
                await store.messages("t1")
            assert isinstance(info.value.__cause__, ValueError)

    @pytest.mark.parametrize(
        ("column", "value"),
        [("role", "system"), ("content", "42"), ("content", "[1]"), ("metadata", "[]"),
         ("created_at", "yesterday")],
    )
    async def test_invalid_row_raises_store_error(self, db: Path, column: str,
                                                  value: object) -> None:
        async with SQLiteThreadStore(db) as store:
            await store.create_thread("t1")
            await store.append("t1", batch("m", 2))
            raw(db, f"UPDATE messages SET {column} = ? WHERE id = 'm-0'", value)
            with pytest.raises(StoreError, match="'m-0' of thread 't1' is corrupt"):
                await store.messages("t1")

    async def test_corrupt_thread_metadata_raises_store_error(self, db: Path) -> None:
        async with SQLiteThreadStore(db) as store:
            await store.create_thread("t1")
            raw(db, "UPDATE threads SET metadata = '{oops' WHERE id = 't1'")
            with pytest.raises(StoreError, match="metadata of thread 't1' is corrupt"):
                await store.get_thread("t1")
            with pytest.raises(StoreError, match="'t1'"):
                await store.list_threads()

    async def test_not_a_database_raises_store_error(self, db: Path) -> None:
        await write_file(db, b"this is not a sqlite file, just some text " * 100)
        store = SQLiteThreadStore(db)
        with pytest.raises(StoreError, match=db.name) as info:
            await store.list_threads()
        assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
        await store.aclose()

    async def test_directory_path_raises_store_error(self, tmp_path: Path) -> None:
        store = SQLiteThreadStore(tmp_path)
        with pytest.raises(StoreError, match="open") as info:
            await store.create_thread()
        assert isinstance(info.value.__cause__, sqlite3.Error)
        await store.aclose()

    async def test_two_stores_on_one_file_in_one_process(self, db: Path) -> None:
        # Two connections: the second waits on the file's lock (busy_timeout).
        async with SQLiteThreadStore(db) as a, SQLiteThreadStore(db) as b:
            await a.create_thread("t1")
            async with anyio.create_task_group() as tg:
                for n in range(10):
                    tg.start_soon(a.append, "t1", batch(f"a{n}", 3))
                    tg.start_soon(b.append, "t1", batch(f"b{n}", 3))
            stored = ids(await b.messages("t1"))
            assert len(stored) == len(set(stored)) == 60
            for n in range(10):
                for who in "ab":
                    start = stored.index(f"{who}{n}-0")
                    assert stored[start:start + 3] == ids(batch(f"{who}{n}", 3))
            assert ids(await a.messages("t1")) == stored

    async def test_failed_open_can_be_retried(self, db: Path) -> None:
        await write_file(db, b"garbage " * 1000)
        store = SQLiteThreadStore(db)
        with pytest.raises(StoreError):
            await store.get_thread("t1")
        await anyio.Path(db).unlink()
        assert await store.get_thread("t1") is None
        await store.aclose()


@pytest.mark.anyio
async def test_in_memory_database() -> None:
    async with SQLiteThreadStore(":memory:") as store:
        await store.create_thread("t1")
        await store.append("t1", tricky_messages())
        assert_same_messages(await store.messages("t1"), tricky_messages())


# -- schema version 1 -> 2 ----------------------------------------------------------------

V1_FILE = Path(__file__).with_name("fixtures") / "threads-v1.db"


@pytest.fixture
def v1_db(tmp_path: Path) -> Path:
    """A copy of a file written by agentrt's version-1 store (tests/thread/fixtures)."""
    db = tmp_path / "threads.db"
    shutil.copyfile(V1_FILE, db)
    assert raw(db, "PRAGMA user_version") == [(1,)]
    return db


@pytest.mark.anyio
async def test_a_version_1_file_is_migrated_in_place(v1_db: Path) -> None:
    before = raw(v1_db, "SELECT id, created_at, updated_at, touch, metadata FROM threads")
    async with SQLiteThreadStore(v1_db) as store:
        assert raw(v1_db, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(2,)]
        # everything version 1 stored is there as it was
        assert [t.id for t in await store.list_threads()] == ["empty", "legacy"]
        legacy = await store.get_thread("legacy")
        assert legacy is not None
        assert repr(legacy.metadata) == repr({"user": "ünïcode", "n": 1.0})
        assert legacy.message_count == len(tricky_messages())
        assert_same_messages(await store.messages("legacy"), tricky_messages())
        # threads from before owners belong to runs without an identity
        assert legacy.owner == ""
        assert await store.get_state("legacy") == ThreadState({}, 0)
        assert await store.events("legacy") == []
        # and what version 2 added works on them
        await store.append("legacy", batch("more", 1), expected_count=len(tricky_messages()))
        await store.set_owner("legacy", '{"user":"bob"}', expected="")
        await store.set_state("legacy", {"pending": []}, expected_version=0)
        await store.append_events("legacy", [ThreadEvent("summary", {"text": "hi"}, id="e1")])
        assert await store.claim("legacy", "run_a", lease=30)
    after = raw(v1_db, "SELECT id, created_at, updated_at, touch, metadata FROM threads "
                       "WHERE id = 'empty'")
    assert after == [row for row in before if row[0] == "empty"]
    async with SQLiteThreadStore(v1_db) as store:  # reopened: nothing migrates twice
        info = await store.get_thread("legacy")
        assert info is not None and info.owner == '{"user":"bob"}'
        assert ids(await store.events("legacy")) == ["e1"]
        assert not await store.claim("legacy", "run_b", lease=30)


@pytest.mark.anyio
async def test_two_stores_migrating_one_file_at_once(v1_db: Path) -> None:
    async with SQLiteThreadStore(v1_db) as a, SQLiteThreadStore(v1_db) as b:
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.get_thread, "legacy")
            tg.start_soon(b.get_thread, "legacy")
        assert_same_messages(await b.messages("legacy"), tricky_messages())
    assert raw(v1_db, "PRAGMA user_version") == [(2,)]
    columns = [row[1] for row in raw(v1_db, "PRAGMA table_info(threads)")]
    assert columns.count("owner") == 1 and columns.count("state") == 1


@pytest.mark.anyio
async def test_a_file_newer_than_version_2_is_refused_without_change(v1_db: Path) -> None:
    raw(v1_db, "PRAGMA user_version = 3")
    store = SQLiteThreadStore(v1_db)
    with pytest.raises(StoreError, match="schema version 3, newer"):
        await store.get_thread("legacy")
    await store.aclose()
    assert "owner" not in [row[1] for row in raw(v1_db, "PRAGMA table_info(threads)")]
