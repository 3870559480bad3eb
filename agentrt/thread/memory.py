"""A thread store in a dict: for tests and for runs that need no persistence.

It keeps the same stored form as the durable stores (JSON text, see
``_codec``), so a test on it catches content SQLite or Redis would refuse, and
nothing a caller holds can reach into what it stored.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from agentrt._errors import StoreError, ThreadNotFoundError

from .._closing import AsyncClosing
from ._codec import StoredMessage, decode_message, decode_metadata, encode_message, encode_metadata
from ._messages import Message, ThreadInfo, new_thread_id

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["MemoryThreadStore"]


@dataclass(slots=True)
class _Thread:
    id: str
    created_at: float
    updated_at: float
    # Logical clock of the last change: orders ``list_threads`` even when two
    # updates read the same wall-clock time.
    touch: int
    metadata: str
    messages: list[StoredMessage] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def info(self) -> ThreadInfo:
        return ThreadInfo(
            id=self.id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            message_count=len(self.messages),
            metadata=decode_metadata(self.id, self.metadata),
        )


class MemoryThreadStore(AsyncClosing):
    """Threads in process memory; everything is lost when the process ends."""

    def __init__(self) -> None:
        self._threads: dict[str, _Thread] = {}
        self._clock = itertools.count(1)
        # Every operation holds the lock, so an append is never seen half-done even
        # if the store one day awaits inside one. It also holds runs back: its owner
        # keeps it across the acquire's checkpoint, so the others wait parked rather
        # than all being ready at once. With a plain checkpoint instead, 500
        # concurrent runs (tests/reliability/test_load.py) ran 40% slower and the
        # event loop lagged 15 times more.
        self._lock = anyio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryThreadStore(threads={len(self._threads)})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this MemoryThreadStore is closed")

    async def create_thread(
        self,
        thread_id: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> ThreadInfo:
        thread_id = new_thread_id() if thread_id is None else thread_id
        metadata_json = encode_metadata(thread_id, metadata)
        async with self._lock:
            self._check_open()
            existing = self._threads.get(thread_id)
            if existing is not None:
                if not exist_ok:
                    raise StoreError(f"thread {thread_id!r} already exists")
                return existing.info()
            now = time.time()
            thread = _Thread(thread_id, now, now, next(self._clock), metadata_json)
            self._threads[thread_id] = thread
            return thread.info()

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        async with self._lock:
            self._check_open()
            thread = self._threads.get(thread_id)
            return None if thread is None else thread.info()

    async def list_threads(self, *, limit: int = 100) -> list[ThreadInfo]:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        async with self._lock:
            self._check_open()
            newest = sorted(self._threads.values(), key=lambda t: t.touch, reverse=True)
            return [thread.info() for thread in newest[:limit]]

    async def append(self, thread_id: str, messages: Sequence[Message]) -> None:
        # Encode everything first: a message that cannot be stored fails the
        # whole batch before any of it is.
        rows = [encode_message(thread_id, message) for message in messages]
        async with self._lock:
            self._check_open()
            thread = self._threads.get(thread_id)
            if thread is None:
                raise ThreadNotFoundError(thread_id)
            added = False
            for row in rows:
                if row.id not in thread.ids:
                    thread.ids.add(row.id)
                    thread.messages.append(row)
                    added = True
            if added:
                thread.updated_at = time.time()
                thread.touch = next(self._clock)

    async def messages(self, thread_id: str) -> list[Message]:
        async with self._lock:
            self._check_open()
            thread = self._threads.get(thread_id)
            if thread is None:
                raise ThreadNotFoundError(thread_id)
            rows = list(thread.messages)
        return [decode_message(thread_id, row) for row in rows]

    async def delete_thread(self, thread_id: str) -> None:
        async with self._lock:
            self._check_open()
            self._threads.pop(thread_id, None)

    async def aclose(self) -> None:
        """Refuse further use; idempotent. The threads are dropped."""
        self._closed = True
        self._threads.clear()
