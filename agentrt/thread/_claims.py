"""One run per thread, in one process and across processes.

Two runs continuing one thread at once (a double-submitted message, two service
replicas, two browser tabs) interleave their messages and corrupt it for good:
the API then refuses it ("tool_use ids were found without tool_result blocks").
A run therefore holds its thread for its whole length:

1. in this process, a per-thread queue (a semaphore), so runs of one process wait
   their turn in order, without polling;
2. across processes, the store's claim (``ThreadStore.claim``): a lease, renewed
   while the run goes on, that a process killed mid-run (kill -9) cannot release,
   and that another run takes over once the lease has run out.

A run that cannot get both within ``wait`` seconds is refused with
:class:`~agentrt.ThreadBusyError`. The store's optimistic check on appends
(``expected_count``) is the last line: a run that lost its claim anyway (a
process stalled past its lease) fails with ``ThreadChangedError`` rather than
interleave.

Renewal runs in the background when the runtime has a task group to run it in
(``spawn``: an entered ``Runtime``): one task renews every claim of the process
every ``lease / 3`` seconds, in one store call. Without one, :meth:`Claim.refresh` renews in line,
at each step of the run that calls it; a single step longer than the lease can
then lose the claim (the optimistic check still keeps the thread whole).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .._errors import StoreError, ThreadBusyError
from ..log import get_logger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._store import ThreadStore

    Spawn = Callable[[Callable[[], Awaitable[None]]], bool]

__all__ = ["Claim", "ClaimStatistics", "ThreadClaims"]

log = get_logger("agentrt.thread")

# Polling the store for a claim another process holds (no event crosses processes).
_FIRST_POLL = 0.01
_MAX_POLL = 0.2


@dataclass(frozen=True, slots=True)
class ClaimStatistics:
    held: int  # claims held now
    waiting: int  # runs waiting for a thread now
    acquired: int  # claims taken since the start
    refused: int  # runs refused with ThreadBusyError
    lost: int  # claims found taken over while held (renewal came too late)


class _Queue:
    """The runs of this process on one thread: one at a time, in arrival order."""

    __slots__ = ("semaphore", "users")

    def __init__(self) -> None:
        self.semaphore = anyio.Semaphore(1)
        self.users = 0


class Claim:
    """A thread held by one run, until the ``hold`` block ends."""

    __slots__ = ("_claims", "holder", "lost", "renewed_at", "thread_id")

    def __init__(self, claims: ThreadClaims, thread_id: str, holder: str) -> None:
        self._claims = claims
        self.thread_id = thread_id
        self.holder = holder
        self.renewed_at = anyio.current_time()
        self.lost = False

    async def refresh(self) -> None:
        """Renew the claim now if it is due and nothing renews it in the background.
        Cheap when it is not due: call it at every step of the run."""
        claims = self._claims
        if (not claims.renewing and not self.lost
                and anyio.current_time() - self.renewed_at >= claims.lease / 3):
            await claims.renew(self)


class ThreadClaims:
    """Holds threads for runs: ``async with claims.hold(thread_id, run_id): ...``.

    Share one per store in a process (the runtime does), so that runs of different
    agents on one thread queue together.
    """

    def __init__(self, store: ThreadStore, *, lease: float = 10.0, wait: float = 5.0,
                 queue: int = 16, spawn: Spawn | None = None) -> None:
        """``queue``: runs that may wait for one thread at once in this process; one more
        is refused at once (a flood of messages to one thread is not buffered)."""
        if not lease > 0:
            raise ValueError(f"lease must be a positive number of seconds, not {lease!r}")
        if not wait >= 0:
            raise ValueError(f"wait must be a number of seconds >= 0, not {wait!r}")
        self.store = store
        self.lease = lease
        self.wait = wait
        self.queue = queue
        self._spawn = spawn
        self._queues: dict[str, _Queue] = {}
        self._held: dict[int, Claim] = {}
        self.renewing = False
        self._waiting = self._acquired = self._refused = self._lost = 0

    def statistics(self) -> ClaimStatistics:
        return ClaimStatistics(held=len(self._held), waiting=self._waiting,
                               acquired=self._acquired, refused=self._refused, lost=self._lost)

    @asynccontextmanager
    async def hold(self, thread_id: str, holder: str) -> AsyncIterator[Claim]:
        """The thread, held for ``holder`` (a run id) until the block ends; raises
        ``ThreadBusyError`` if another run keeps it longer than ``wait`` seconds."""
        queue = self._queues.get(thread_id)
        if queue is None:
            queue = self._queues[thread_id] = _Queue()
        elif queue.users > self.queue:  # the one holding it, and `queue` waiting
            raise self._busy(thread_id, queued=queue.users - 1)
        queue.users += 1
        try:
            await self._take(queue, thread_id, holder)
            try:
                claim = Claim(self, thread_id, holder)
                self._held[id(claim)] = claim
                self._acquired += 1
                self._start_renewing()
                try:
                    yield claim
                finally:
                    del self._held[id(claim)]
                    # Shielded: a cancelled run still lets the next one in now, not
                    # after the lease.
                    with anyio.CancelScope(shield=True):
                        await self._release(claim)
            finally:
                queue.semaphore.release()
        finally:
            queue.users -= 1
            if not queue.users:
                del self._queues[thread_id]

    async def _take(self, queue: _Queue, thread_id: str, holder: str) -> None:
        """The thread's place in this process's queue, then the store's claim: both
        within ``wait`` seconds in all."""
        deadline = anyio.current_time() + self.wait
        self._waiting += 1
        try:
            try:
                queue.semaphore.acquire_nowait()
            except anyio.WouldBlock:
                with anyio.move_on_after(self.wait) as scope:
                    await queue.semaphore.acquire()
                if scope.cancelled_caught:
                    raise self._busy(thread_id) from None
            try:
                await self._claim(thread_id, holder, deadline)
            except BaseException:
                queue.semaphore.release()
                raise
        finally:
            self._waiting -= 1

    async def _claim(self, thread_id: str, holder: str, deadline: float) -> None:
        poll = _FIRST_POLL
        while not await self.store.claim(thread_id, holder, lease=self.lease):
            left = deadline - anyio.current_time()
            if left <= 0:
                raise self._busy(thread_id)
            await anyio.sleep(min(poll, left))
            poll = min(poll * 2, _MAX_POLL)

    def _busy(self, thread_id: str, *, queued: int | None = None) -> ThreadBusyError:
        self._refused += 1
        if queued is not None:
            log.warning("thread.queue_full", thread_id=thread_id, waiting=queued)
            return ThreadBusyError(thread_id, 0.0)
        log.info("thread.busy", thread_id=thread_id, waited=self.wait)
        return ThreadBusyError(thread_id, self.wait)

    async def _release(self, claim: Claim) -> None:
        try:
            await self.store.release_claim(claim.thread_id, claim.holder)
        except StoreError as exc:  # it expires after its lease: the next run waits that long
            log.warning("thread.claim_release_failed", thread_id=claim.thread_id,
                        holder=claim.holder, error=str(exc))

    async def renew(self, *claims: Claim) -> None:
        """Extend these claims' leases, in one store call; a claim found taken over is
        marked ``lost``."""
        try:
            kept = await self.store.renew_claims(
                [(claim.thread_id, claim.holder) for claim in claims], lease=self.lease)
        except StoreError as exc:  # Redis or the disk hiccuped: try again next time
            log.warning("thread.claim_renew_failed", claims=len(claims), error=str(exc))
            return
        now = anyio.current_time()
        for claim, ok in zip(claims, kept, strict=True):
            if not ok:
                # expired but free (a stalled process, a slow renewal): take it again
                try:
                    ok = await self.store.claim(claim.thread_id, claim.holder,
                                                lease=self.lease)
                except StoreError as exc:
                    log.warning("thread.claim_renew_failed", thread_id=claim.thread_id,
                                error=str(exc))
                    continue
            claim.renewed_at = now
            if not ok and not claim.lost:
                claim.lost = True
                self._lost += 1
                log.warning("thread.claim_lost", thread_id=claim.thread_id,
                            holder=claim.holder)

    def _start_renewing(self) -> None:
        if not self.renewing and self._spawn is not None:
            self.renewing = self._spawn(self._renew_all)

    async def _renew_all(self) -> None:
        """Every held claim renewed each ``lease / 3`` seconds, all in one store call;
        ends when none is held."""
        try:
            while self._held:
                await anyio.sleep(self.lease / 3)
                claims = [claim for claim in self._held.values() if not claim.lost]
                if claims:
                    try:
                        await self.renew(*claims)
                    except Exception as exc:  # never fatal to the runtime's task group
                        log.warning("thread.claim_renew_failed", claims=len(claims),
                                    error=repr(exc))
        finally:
            self.renewing = False
