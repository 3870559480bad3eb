"""A thread store in a dict: for tests and for runs that need no persistence.

It keeps the same stored form as the durable stores (JSON text, see
``_codec``), so a test on it catches content SQLite or Redis would refuse, and
nothing a caller holds can reach into what it stored. Claims expire on the
event loop's clock: they only ever matter within this process.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

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
    owner: str
    messages: list[StoredMessage] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    state: str = "{}"
    state_version: int = 0
    events: list[StoredEvent] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)

    def info(self) -> ThreadInfo:
        return ThreadInfo(
            id=self.id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            message_count=len(self.messages),
            metadata=decode_metadata(self.id, self.metadata),
            owner=self.owner,
        )


class MemoryThreadStore(AsyncClosing):
    """Threads in process memory; everything is lost when the process ends."""

    def __init__(self) -> None:
        self._threads: dict[str, _Thread] = {}
        self._claims: dict[str, tuple[str, float]] = {}  # thread id -> (holder, expiry)
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

    def _thread(self, thread_id: str) -> _Thread:
        self._check_open()
        thread = self._threads.get(thread_id)
        if thread is None:
            raise ThreadNotFoundError(thread_id)
        return thread

    def _touch(self, thread: _Thread) -> None:
        thread.updated_at = time.time()
        thread.touch = next(self._clock)

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
        async with self._lock:
            self._check_open()
            existing = self._threads.get(thread_id)
            if existing is not None:
                if not exist_ok:
                    raise StoreError(f"thread {thread_id!r} already exists")
                return existing.info()
            now = time.time()
            thread = _Thread(thread_id, now, now, next(self._clock), metadata_json, owner)
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

    async def append(self, thread_id: str, messages: Sequence[Message], *,
                     expected_count: int | None = None) -> None:
        # Encode everything first: a message that cannot be stored fails the
        # whole batch before any of it is.
        rows = [encode_message(thread_id, message) for message in messages]
        async with self._lock:
            thread = self._thread(thread_id)
            new: list[StoredMessage] = []
            added: set[str] = set()
            for row in rows:
                # An id the thread already holds (from an earlier try, or twice in
                # this batch) is skipped: that is what makes a retried append safe.
                if row.id not in thread.ids and row.id not in added:
                    added.add(row.id)
                    new.append(row)
            if not new:
                return
            if expected_count is not None and len(thread.messages) != expected_count:
                raise ThreadChangedError(thread_id, f"expected {expected_count} messages, "
                                                    f"found {len(thread.messages)}")
            thread.messages += new
            thread.ids |= added
            self._touch(thread)

    async def messages(self, thread_id: str) -> list[Message]:
        async with self._lock:
            rows = list(self._thread(thread_id).messages)
        return [decode_message(thread_id, row) for row in rows]

    async def set_owner(self, thread_id: str, owner: str, *, expected: str) -> None:
        check_owner(owner)
        async with self._lock:
            thread = self._thread(thread_id)
            if thread.owner not in (expected, owner):  # (already ``owner``: a retry)
                raise ThreadChangedError(thread_id, "its owner is not the one expected")
            thread.owner = owner

    async def get_state(self, thread_id: str) -> ThreadState:
        async with self._lock:
            thread = self._thread(thread_id)
            text, version = thread.state, thread.state_version
        return decode_state(thread_id, text, version)

    async def set_state(self, thread_id: str, data: Mapping[str, Any], *,
                        expected_version: int) -> ThreadState:
        text = encode_state(thread_id, data)
        async with self._lock:
            thread = self._thread(thread_id)
            if thread.state_version == expected_version + 1 and thread.state == text:
                return decode_state(thread_id, text, thread.state_version)  # a retry
            if thread.state_version != expected_version:
                raise ThreadChangedError(thread_id, f"expected state version "
                                                    f"{expected_version}, found "
                                                    f"{thread.state_version}")
            thread.state, thread.state_version = text, thread.state_version + 1
            self._touch(thread)
            version = thread.state_version
        return decode_state(thread_id, text, version)

    async def append_events(self, thread_id: str, events: Sequence[ThreadEvent]) -> None:
        rows = [encode_event(thread_id, event) for event in events]
        async with self._lock:
            thread = self._thread(thread_id)
            added = False
            for row in rows:
                if row.id not in thread.event_ids:
                    thread.event_ids.add(row.id)
                    thread.events.append(row)
                    added = True
            if added:
                self._touch(thread)

    async def events(self, thread_id: str) -> list[ThreadEvent]:
        async with self._lock:
            rows = list(self._thread(thread_id).events)
        return [decode_event(thread_id, row) for row in rows]

    async def claim(self, thread_id: str, holder: str, *, lease: float) -> bool:
        check_claim(holder, lease)
        async with self._lock:
            self._check_open()
            now = anyio.current_time()
            current = self._claims.get(thread_id)
            if current is not None and current[0] != holder and current[1] > now:
                return False
            self._claims[thread_id] = (holder, now + lease)
            return True

    async def renew_claims(self, claims: Sequence[tuple[str, str]], *,
                           lease: float) -> list[bool]:
        for _, holder in claims:
            check_claim(holder, lease)
        async with self._lock:
            self._check_open()
            now = anyio.current_time()
            kept: list[bool] = []
            for thread_id, holder in claims:
                current = self._claims.get(thread_id)
                ok = current is not None and current[0] == holder and current[1] > now
                if ok:
                    self._claims[thread_id] = (holder, now + lease)
                kept.append(ok)
            return kept

    async def release_claim(self, thread_id: str, holder: str) -> None:
        check_claim(holder)
        async with self._lock:
            self._check_open()
            current = self._claims.get(thread_id)
            if current is not None and current[0] == holder:
                del self._claims[thread_id]

    async def delete_thread(self, thread_id: str) -> None:
        async with self._lock:
            self._check_open()
            self._threads.pop(thread_id, None)

    async def aclose(self) -> None:
        """Refuse further use; idempotent. The threads are dropped."""
        self._closed = True
        self._threads.clear()
        self._claims.clear()
