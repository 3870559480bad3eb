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
  newer agentrt is refused rather than misread.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

import anyio
import anyio.to_thread

from agentrt._errors import StoreError, ThreadNotFoundError

from .._closing import AsyncClosing
from ._codec import StoredMessage, decode_message, decode_metadata, encode_message, encode_metadata
from ._messages import Message, ThreadInfo, new_thread_id

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ["SQLiteThreadStore"]

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 10.0

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# ``touch`` is a logical clock bumped on every change: ``list_threads`` orders
# by it, so "most recently updated" follows commit order across processes and
# never depends on two writes reading different (or equal) wall-clock times.
_SCHEMA = (
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

# seq is dense (1..n, messages are never deleted one by one): MAX is the count,
# read from the primary-key index instead of counting rows.
_THREAD_COLUMNS = """t.id, t.created_at, t.updated_at,
    (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.thread_id = t.id),
    t.metadata"""
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
    ) -> ThreadInfo:
        thread_id = new_thread_id() if thread_id is None else thread_id
        metadata_json = encode_metadata(thread_id, metadata)
        return await self._run("create_thread", _write(_create_thread), thread_id,
                               metadata_json, exist_ok)

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        return await self._run("get_thread", _get_thread, thread_id)

    async def list_threads(self, *, limit: int = 100) -> list[ThreadInfo]:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        return await self._run("list_threads", _list_threads, limit)

    async def append(self, thread_id: str, messages: Sequence[Message]) -> None:
        # Encode everything first: a message that cannot be stored fails the
        # whole batch before the transaction starts.
        rows = [encode_message(thread_id, message) for message in messages]
        await self._run("append", _write(_append), thread_id, rows)

    async def messages(self, thread_id: str) -> list[Message]:
        return await self._run("messages", _read(_messages), thread_id)

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
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            # UnicodeEncodeError: an id with a lone surrogate cannot be bound as UTF-8.
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
        if self._check_version(conn) < SCHEMA_VERSION:
            for statement in _SCHEMA:
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
    thread_id, created_at, updated_at, count, metadata = row
    return ThreadInfo(id=thread_id, created_at=created_at, updated_at=updated_at,
                      message_count=count, metadata=decode_metadata(thread_id, metadata))


def _get_thread(conn: sqlite3.Connection, thread_id: str) -> ThreadInfo | None:
    row = conn.execute(f"SELECT {_THREAD_COLUMNS} FROM threads t WHERE t.id = ?",
                       (thread_id,)).fetchone()
    return None if row is None else _thread_info(row)


def _list_threads(conn: sqlite3.Connection, limit: int) -> list[ThreadInfo]:
    rows = conn.execute(f"SELECT {_THREAD_COLUMNS} FROM threads t ORDER BY t.touch DESC LIMIT ?",
                        (limit,)).fetchall()
    return [_thread_info(row) for row in rows]


def _create_thread(conn: sqlite3.Connection, thread_id: str, metadata: str,
                   exist_ok: bool) -> ThreadInfo:
    existing = _get_thread(conn, thread_id)
    if existing is not None:
        if not exist_ok:
            raise StoreError(f"thread {thread_id!r} already exists")
        return existing
    now = time.time()
    conn.execute(
        "INSERT INTO threads (id, created_at, updated_at, touch, metadata) "
        f"VALUES (?, ?, ?, {_NEXT_TOUCH}, ?)",
        (thread_id, now, now, metadata),
    )
    return ThreadInfo(id=thread_id, created_at=now, updated_at=now, message_count=0,
                      metadata=decode_metadata(thread_id, metadata))


def _append(conn: sqlite3.Connection, thread_id: str, rows: list[StoredMessage]) -> None:
    if conn.execute("SELECT 1 FROM threads WHERE id = ?", (thread_id,)).fetchone() is None:
        raise ThreadNotFoundError(thread_id)
    (last,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = ?",
                           (thread_id,)).fetchone()
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
        conn.execute(f"UPDATE threads SET updated_at = ?, touch = {_NEXT_TOUCH} WHERE id = ?",
                     (time.time(), thread_id))


def _messages(conn: sqlite3.Connection, thread_id: str) -> list[Message]:
    if conn.execute("SELECT 1 FROM threads WHERE id = ?", (thread_id,)).fetchone() is None:
        raise ThreadNotFoundError(thread_id)
    rows = conn.execute(
        "SELECT id, role, content, created_at, metadata FROM messages "
        "WHERE thread_id = ? ORDER BY seq",
        (thread_id,),
    ).fetchall()
    # Decoded here, in the worker thread: a long thread's JSON is parsed off the loop.
    return [decode_message(thread_id, StoredMessage(*row)) for row in rows]


def _delete_thread(conn: sqlite3.Connection, thread_id: str) -> None:
    conn.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
    conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
