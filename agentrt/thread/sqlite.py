"""The embedded durable store: one SQLite file, shareable by several OS processes.

Design choices and why:

- stdlib ``sqlite3`` runs in a worker thread (``anyio.to_thread``), so a slow
  disk or a lock wait never blocks the event loop, on asyncio or trio;
- one connection per store, opened on first use, every use serialized by an
  ``anyio.Lock`` (a sqlite3 connection is not safe for concurrent use);
- WAL journal, so readers never block the writer, and a ``busy_timeout`` so a
  process waits for another's write instead of failing at once;
- every write is one ``BEGIN IMMEDIATE`` transaction: it takes the write lock
  up front, so the read-then-write in ``append`` (existence check, next seq)
  cannot race another process and cannot hit a lock-upgrade deadlock;
- the schema version lives in ``PRAGMA user_version``; a file written by a
  newer agentrt is refused rather than misread, and an older one is migrated in
  place, one version at a time, in one write transaction (a new file takes the
  same steps from version 0, so every migration runs on every new file);
- claims expire on the wall clock (``time.time()``): the processes sharing a
  file share a host, so they share that clock.

Schema version 2 added the thread's owner, its JSON state (with a version for
the optimistic check), thread events and run claims. Threads of a version-1
file get the empty owner: they belong to runs without an identity.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread

from agentrt._errors import StoreError, ThreadChangedError, ThreadNotFoundError

from .._closing import AsyncClosing
from ._codec import (
    StoredEvent,
    StoredMessage,
    check_claim,
    check_owner,
    decode_event,
    decode_message,
    decode_metadata,
    decode_state,
    encode_event,
    encode_message,
    encode_metadata,
    encode_state,
)
from ._messages import Message, ThreadEvent, ThreadInfo, ThreadState, new_thread_id

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["SQLiteThreadStore"]

SCHEMA_VERSION = 2
BUSY_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# ``touch`` is a logical clock bumped on every change: ``list_threads`` orders
# by it, so "most recently updated" follows commit order across processes and
# never depends on two writes reading different (or equal) wall-clock times.
_SCHEMA_V1 = (
    """CREATE TABLE IF NOT EXISTS threads (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        touch INTEGER NOT NULL,
        metadata TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS threads_by_touch ON threads (touch)",
    """CREATE TABLE IF NOT EXISTS messages (
        thread_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        created_at REAL NOT NULL,
        metadata TEXT NOT NULL,
        PRIMARY KEY (thread_id, seq),
        UNIQUE (thread_id, id)
    )""",
)

# Version 2: owners, state, events and claims. ``state`` is the thread's own JSON
# document (pending approvals live there); ``events`` are what happened to a thread
# that is not a message (context summaries); both leave later features room
# without a version 3. A claim row outlives its thread: it locks an id, not a row.
_SCHEMA_V2 = (
    "ALTER TABLE threads ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE threads ADD COLUMN state TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE threads ADD COLUMN state_version INTEGER NOT NULL DEFAULT 0",
    """CREATE TABLE events (
        thread_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (thread_id, seq),
        UNIQUE (thread_id, id)
    )""",
    """CREATE TABLE claims (
        thread_id TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
)

# _MIGRATIONS[n] takes a file from version n to n + 1.
_MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2)
assert len(_MIGRATIONS) == SCHEMA_VERSION

# seq is dense (1..n, messages are never deleted one by one): MAX is the count,
# read from the primary-key index instead of counting rows.
_THREAD_COLUMNS = """t.id, t.created_at, t.updated_at,
    (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.thread_id = t.id),
    t.metadata, t.owner"""
_NEXT_TOUCH = "(SELECT COALESCE(MAX(touch), 0) + 1 FROM threads)"


class SQLiteThreadStore(AsyncClosing):
    """Threads in a SQLite file (created, with its directory, on first use).

    Use it as ``async with SQLiteThreadStore(path) as store:`` or call
    ``aclose()`` when done. Several processes may open the same file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(os.fspath(path))
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._lock = anyio.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"SQLiteThreadStore({str(self._path)!r})"

    async def __aenter__(self) -> SQLiteThreadStore:
        # Open now, so a bad file or a newer schema fails here, not mid-run.
        await self._run("open", _noop)
        return self

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
        return await self._run("create_thread", _write(_create_thread), thread_id,
                               metadata_json, exist_ok, owner)

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        return await self._run("get_thread", _get_thread, thread_id)

    async def list_threads(self, *, limit: int = 100) -> list[ThreadInfo]:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        return await self._run("list_threads", _list_threads, limit)

    async def append(self, thread_id: str, messages: Sequence[Message], *,
                     expected_count: int | None = None) -> None:
        # Encode everything first: a message that cannot be stored fails the
        # whole batch before the transaction starts.
        rows = [encode_message(thread_id, message) for message in messages]
        await self._run("append", _write(_append), thread_id, rows, expected_count)

    async def messages(self, thread_id: str) -> list[Message]:
        return await self._run("messages", _read(_messages), thread_id)

    async def set_owner(self, thread_id: str, owner: str, *, expected: str) -> None:
        check_owner(owner)
        await self._run("set_owner", _write(_set_owner), thread_id, owner, expected)

    async def get_state(self, thread_id: str) -> ThreadState:
        return await self._run("get_state", _get_state, thread_id)

    async def set_state(self, thread_id: str, data: Mapping[str, Any], *,
                        expected_version: int) -> ThreadState:
        text = encode_state(thread_id, data)
        return await self._run("set_state", _write(_set_state), thread_id, text,
                               expected_version)

    async def append_events(self, thread_id: str, events: Sequence[ThreadEvent]) -> None:
        rows = [encode_event(thread_id, event) for event in events]
        await self._run("append_events", _write(_append_events), thread_id, rows)

    async def events(self, thread_id: str) -> list[ThreadEvent]:
        return await self._run("events", _read(_events), thread_id)

    async def claim(self, thread_id: str, holder: str, *, lease: float) -> bool:
        check_claim(holder, lease)
        return await self._run("claim", _write(_claim), thread_id, holder, lease)

    async def renew_claims(self, claims: Sequence[tuple[str, str]], *,
                           lease: float) -> list[bool]:
        for _, holder in claims:
            check_claim(holder, lease)
        if not claims:
            return []
        # one transaction for the whole batch: one write lock, one commit
        return await self._run("renew_claims", _write(_renew_claims), list(claims), lease)

    async def release_claim(self, thread_id: str, holder: str) -> None:
        check_claim(holder)
        await self._run("release_claim", _write(_release_claim), thread_id, holder)

    async def delete_thread(self, thread_id: str) -> None:
        await self._run("delete_thread", _write(_delete_thread), thread_id)

    async def aclose(self) -> None:
        """Close the connection; idempotent. Further use raises ``StoreError``."""
        # Shielded: a cancelled caller must still not leak the connection.
        with anyio.CancelScope(shield=True):
            async with self._lock:
                self._closed = True
                conn, self._conn = self._conn, None
                if conn is not None:
                    await anyio.to_thread.run_sync(conn.close)

    # -- plumbing ------------------------------------------------------------

    async def _run(
        self, op: str, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts
    ) -> T:
        """Run ``fn(conn, *args)`` in a worker thread, one call at a time."""
        async with self._lock:
            if self._closed:
                raise StoreError(f"SQLite store {str(self._path)!r} is closed")
            # Not abandoned on cancellation: the lock stays held until the
            # thread is done with the connection.
            return await anyio.to_thread.run_sync(self._call, op, fn, *args)

    def _call(self, op: str, fn: Callable[[sqlite3.Connection, *Ts], T], *args: *Ts) -> T:
        try:
            if self._conn is None:
                self._conn = self._open()
            return fn(self._conn, *args)
        except (sqlite3.Error, UnicodeEncodeError, RecursionError) as exc:
            # UnicodeEncodeError: an id with a lone surrogate cannot be bound as UTF-8.
            # RecursionError: a value nested too deep for json (the codec catches it
            # too; this is the backstop for anything decoded in the worker thread).
            raise StoreError(
                f"SQLite store {str(self._path)!r}: {op} failed: {exc}"
            ) from exc

    def _open(self) -> sqlite3.Connection:
        if str(self._path) != ":memory:":
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"SQLite store {str(self._path)!r}: cannot create its directory: {exc}"
                ) from exc
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS,
                               isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            if self._check_version(conn) < SCHEMA_VERSION:
                _write(self._migrate)(conn)
            conn.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> int:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"SQLite store {str(self._path)!r} has schema version {version}, newer than "
                f"this agentrt's {SCHEMA_VERSION}; upgrade agentrt to open it"
            )
        return version

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # Re-read under the write lock: another process may have just done it.
        version = self._check_version(conn)
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


# -- SQL, run in a worker thread ---------------------------------------------


def _noop(conn: sqlite3.Connection) -> None:
    return None


def _transaction(
    begin: str, fn: Callable[[sqlite3.Connection, *Ts], T]
) -> Callable[[sqlite3.Connection, *Ts], T]:
    def run(conn: sqlite3.Connection, *args: *Ts) -> T:
        conn.execute(begin)
        try:
            result = fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    return run


def _write(fn: Callable[[sqlite3.Connection, *Ts], T]) -> Callable[[sqlite3.Connection, *Ts], T]:
    """``fn`` in a write transaction that holds the file's write lock from the start."""
    return _transaction("BEGIN IMMEDIATE", fn)


def _read(fn: Callable[[sqlite3.Connection, *Ts], T]) -> Callable[[sqlite3.Connection, *Ts], T]:
    """``fn`` in a read transaction: its statements see one snapshot."""
    return _transaction("BEGIN", fn)


def _thread_info(row: tuple[Any, ...]) -> ThreadInfo:
    thread_id, created_at, updated_at, count, metadata, owner = row
    return ThreadInfo(id=thread_id, created_at=created_at, updated_at=updated_at,
                      message_count=count, metadata=decode_metadata(thread_id, metadata),
                      owner=owner)


def _exists(conn: sqlite3.Connection, thread_id: str) -> None:
    if conn.execute("SELECT 1 FROM threads WHERE id = ?", (thread_id,)).fetchone() is None:
        raise ThreadNotFoundError(thread_id)


def _touch(conn: sqlite3.Connection, thread_id: str) -> None:
    conn.execute(f"UPDATE threads SET updated_at = ?, touch = {_NEXT_TOUCH} WHERE id = ?",
                 (time.time(), thread_id))


def _get_thread(conn: sqlite3.Connection, thread_id: str) -> ThreadInfo | None:
    row = conn.execute(f"SELECT {_THREAD_COLUMNS} FROM threads t WHERE t.id = ?",
                       (thread_id,)).fetchone()
    return None if row is None else _thread_info(row)


def _list_threads(conn: sqlite3.Connection, limit: int) -> list[ThreadInfo]:
    rows = conn.execute(f"SELECT {_THREAD_COLUMNS} FROM threads t ORDER BY t.touch DESC LIMIT ?",
                        (limit,)).fetchall()
    return [_thread_info(row) for row in rows]


def _create_thread(conn: sqlite3.Connection, thread_id: str, metadata: str,
                   exist_ok: bool, owner: str) -> ThreadInfo:
    existing = _get_thread(conn, thread_id)
    if existing is not None:
        if not exist_ok:
            raise StoreError(f"thread {thread_id!r} already exists")
        return existing
    now = time.time()
    conn.execute(
        "INSERT INTO threads (id, created_at, updated_at, touch, metadata, owner) "
        f"VALUES (?, ?, ?, {_NEXT_TOUCH}, ?, ?)",
        (thread_id, now, now, metadata, owner),
    )
    return ThreadInfo(id=thread_id, created_at=now, updated_at=now, message_count=0,
                      metadata=decode_metadata(thread_id, metadata), owner=owner)


def _adds_anything(conn: sqlite3.Connection, thread_id: str, rows: list[StoredMessage]) -> bool:
    ids = {row.id for row in rows}
    marks = ",".join("?" * len(ids))
    held = conn.execute(f"SELECT COUNT(*) FROM messages WHERE thread_id = ? AND id IN ({marks})",
                        (thread_id, *ids)).fetchone()[0]
    return bool(held < len(ids))


def _append(conn: sqlite3.Connection, thread_id: str, rows: list[StoredMessage],
            expected_count: int | None) -> None:
    _exists(conn, thread_id)
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = ?",
                           (thread_id,)).fetchone()
    if (expected_count is not None and last != expected_count and rows
            and _adds_anything(conn, thread_id, rows)):
        raise ThreadChangedError(thread_id, f"expected {expected_count} messages, found {last}")
    added = 0
    for row in rows:
        # An id the thread already holds (from an earlier try, or twice in
        # this batch) is skipped: that is what makes a retried append safe.
        cursor = conn.execute(
            "INSERT INTO messages (thread_id, seq, id, role, content, created_at, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, id) DO NOTHING",
            (thread_id, last + added + 1, row.id, row.role, row.content, row.created_at,
             row.metadata),
        )
        added += cursor.rowcount
    if added:
        _touch(conn, thread_id)


def _messages(conn: sqlite3.Connection, thread_id: str) -> list[Message]:
    _exists(conn, thread_id)
    rows = conn.execute(
        "SELECT id, role, content, created_at, metadata FROM messages "
        "WHERE thread_id = ? ORDER BY seq",
        (thread_id,),
    ).fetchall()
    # Decoded here, in the worker thread: a long thread's JSON is parsed off the loop.
    return [decode_message(thread_id, StoredMessage(*row)) for row in rows]


def _set_owner(conn: sqlite3.Connection, thread_id: str, owner: str, expected: str) -> None:
    row = conn.execute("SELECT owner FROM threads WHERE id = ?", (thread_id,)).fetchone()
    if row is None:
        raise ThreadNotFoundError(thread_id)
    if row[0] not in (expected, owner):  # (already ``owner``: a retry)
        raise ThreadChangedError(thread_id, "its owner is not the one expected")
    conn.execute("UPDATE threads SET owner = ? WHERE id = ?", (owner, thread_id))


def _get_state(conn: sqlite3.Connection, thread_id: str) -> ThreadState:
    row = conn.execute("SELECT state, state_version FROM threads WHERE id = ?",
                       (thread_id,)).fetchone()
    if row is None:
        raise ThreadNotFoundError(thread_id)
    return decode_state(thread_id, row[0], row[1])


def _set_state(conn: sqlite3.Connection, thread_id: str, text: str,
               expected_version: int) -> ThreadState:
    row = conn.execute("SELECT state_version, state FROM threads WHERE id = ?",
                       (thread_id,)).fetchone()
    if row is None:
        raise ThreadNotFoundError(thread_id)
    if row == (expected_version + 1, text):  # the retry of a write that went through
        return decode_state(thread_id, text, expected_version + 1)
    if row[0] != expected_version:
        raise ThreadChangedError(thread_id, f"expected state version {expected_version}, "
                                            f"found {row[0]}")
    conn.execute("UPDATE threads SET state = ?, state_version = ? WHERE id = ?",
                 (text, expected_version + 1, thread_id))
    _touch(conn, thread_id)
    return decode_state(thread_id, text, expected_version + 1)


def _append_events(conn: sqlite3.Connection, thread_id: str, rows: list[StoredEvent]) -> None:
    _exists(conn, thread_id)
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE thread_id = ?",
                           (thread_id,)).fetchone()
    added = 0
    for row in rows:
        cursor = conn.execute(
            "INSERT INTO events (thread_id, seq, id, kind, data, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, id) DO NOTHING",
            (thread_id, last + added + 1, row.id, row.kind, row.data, row.created_at),
        )
        added += cursor.rowcount
    if added:
        _touch(conn, thread_id)


def _events(conn: sqlite3.Connection, thread_id: str) -> list[ThreadEvent]:
    _exists(conn, thread_id)
    rows = conn.execute("SELECT id, kind, data, created_at FROM events WHERE thread_id = ? "
                        "ORDER BY seq", (thread_id,)).fetchall()
    return [decode_event(thread_id, StoredEvent(*row)) for row in rows]


def _claim(conn: sqlite3.Connection, thread_id: str, holder: str, lease: float) -> bool:
    now = time.time()
    row = conn.execute("SELECT holder, expires_at FROM claims WHERE thread_id = ?",
                       (thread_id,)).fetchone()
    if row is not None and row[0] != holder and row[1] > now:
        return False
    conn.execute("INSERT INTO claims (thread_id, holder, expires_at) VALUES (?, ?, ?) "
                 "ON CONFLICT (thread_id) DO UPDATE SET holder = excluded.holder, "
                 "expires_at = excluded.expires_at", (thread_id, holder, now + lease))
    return True


def _renew_claims(conn: sqlite3.Connection, claims: list[tuple[str, str]],
                  lease: float) -> list[bool]:
    now = time.time()
    return [bool(conn.execute("UPDATE claims SET expires_at = ? WHERE thread_id = ? AND "
                              "holder = ? AND expires_at > ?",
                              (now + lease, thread_id, holder, now)).rowcount)
            for thread_id, holder in claims]


def _release_claim(conn: sqlite3.Connection, thread_id: str, holder: str) -> None:
    conn.execute("DELETE FROM claims WHERE thread_id = ? AND holder = ?", (thread_id, holder))


def _delete_thread(conn: sqlite3.Connection, thread_id: str) -> None:
    conn.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
    conn.execute("DELETE FROM events WHERE thread_id = ?", (thread_id,))
    conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
