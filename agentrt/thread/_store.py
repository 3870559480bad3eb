"""The one interface every thread store implements (memory, SQLite, Redis)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._messages import Message, ThreadEvent, ThreadInfo, ThreadState

__all__ = ["ThreadStore"]


@runtime_checkable
class ThreadStore(Protocol):
    """Durable home of threads: their messages, owner, state, events and run claims.

    Contract (checked for every implementation by ``tests/thread/conformance.py``):

    - ``append`` is atomic: all of ``messages`` are stored, in order, or none is;
      two writers racing never lose or interleave a batch;
    - it is idempotent by ``Message.id``: a message whose id the thread already
      holds is skipped, so a retried append after a crash never duplicates;
    - with ``expected_count``, a batch that adds anything is stored only if the
      thread holds exactly that many messages; otherwise ``ThreadChangedError``
      and nothing is stored (a batch adding nothing, the retry of an append that
      went through, succeeds whatever the count);
    - ``messages`` returns exactly what was appended (ids, content blocks, order);
    - a claim is held by one holder at a time: ``claim`` takes it when it is free,
      expired, or already the caller's, for ``lease`` seconds from now; ``renew_claims``
      extends each of a batch only while its holder still has it (one call for all
      the claims of a process: renewing them one by one cost a store write per claim
      every few seconds); ``release_claim`` gives one up.
      Claims are locks on a thread id: they neither need nor create the thread,
      and ``delete_thread`` leaves them alone;
    - ``set_state`` and ``set_owner`` are compare-and-set, like ``expected_count``,
      and safe to retry: one that finds its own write already there succeeds;
    - a store that expires threads keeps one whose state has a number ``keep_until``
      (epoch seconds) at least until then (calls waiting for approval set it);
    - ``append_events`` is atomic and idempotent by ``ThreadEvent.id``, as ``append``.

    ``ThreadNotFoundError`` is raised by every per-thread method but ``get_thread``,
    ``delete_thread`` and the claim methods when the thread does not exist.
    """

    async def create_thread(
        self,
        thread_id: str | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
        owner: str = "",
    ) -> ThreadInfo:
        """Create a thread (a new id when none is given) owned by ``owner``.

        Raises ``StoreError`` if it exists, unless ``exist_ok`` (then the existing
        thread is returned as it is: its metadata and owner are not changed).
        """
        ...

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        """The thread's info, or None if it does not exist."""
        ...

    async def list_threads(self, *, limit: int = 100) -> list[ThreadInfo]:
        """Threads, most recently updated first."""
        ...

    async def append(self, thread_id: str, messages: Sequence[Message], *,
                     expected_count: int | None = None) -> None:
        """Store ``messages`` at the end of the thread: atomic, idempotent by message id,
        and with ``expected_count`` only if the thread holds that many (see above)."""
        ...

    async def messages(self, thread_id: str) -> list[Message]:
        """Every message of the thread, in the order appended."""
        ...

    async def set_owner(self, thread_id: str, owner: str, *, expected: str) -> None:
        """Make ``owner`` the thread's owner if it is ``expected`` (or ``owner``) now,
        else ``ThreadChangedError``."""
        ...

    async def get_state(self, thread_id: str) -> ThreadState:
        """The thread's state and its version (version 0 and no data before any
        ``set_state``)."""
        ...

    async def set_state(self, thread_id: str, data: Mapping[str, Any], *,
                        expected_version: int) -> ThreadState:
        """Replace the thread's state if its version is ``expected_version`` (else
        ``ThreadChangedError``); the stored state, with its version bumped by one."""
        ...

    async def append_events(self, thread_id: str, events: Sequence[ThreadEvent]) -> None:
        """Store ``events`` at the end of the thread's event log: atomic, idempotent by
        event id."""
        ...

    async def events(self, thread_id: str) -> list[ThreadEvent]:
        """The thread's events, in the order appended."""
        ...

    async def claim(self, thread_id: str, holder: str, *, lease: float) -> bool:
        """True if ``holder`` now holds the thread's claim for ``lease`` seconds."""
        ...

    async def renew_claims(self, claims: Sequence[tuple[str, str]], *,
                           lease: float) -> list[bool]:
        """For each ``(thread_id, holder)``: True if the holder still held the claim and
        now holds it ``lease`` seconds more; False if it expired, someone else has it,
        or its stored form is unreadable."""
        ...

    async def release_claim(self, thread_id: str, holder: str) -> None:
        """Give the claim up if ``holder`` holds it; otherwise do nothing."""
        ...

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread with its messages, state and events; nothing if it does
        not exist. Its claim, if any, is left alone."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections; the store is not used after."""
        ...
