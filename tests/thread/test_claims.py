"""ThreadClaims: one holder per thread, queued in process, claimed in the store, renewed
while held, refused with ThreadBusyError past ``wait``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from agentrt._errors import ThreadBusyError
from agentrt.testing import capture_events
from agentrt.thread._claims import ThreadClaims
from agentrt.thread.memory import MemoryThreadStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import TaskGroup

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def spawner(tg: TaskGroup) -> Callable[[Callable[[], Awaitable[None]]], bool]:
    def spawn(fn: Callable[[], Awaitable[None]]) -> bool:
        tg.start_soon(fn)
        return True
    return spawn


async def test_runs_of_one_process_take_turns_in_arrival_order() -> None:
    claims = ThreadClaims(MemoryThreadStore(), wait=10)
    order: list[str] = []
    release = anyio.Event()

    async def run(name: str) -> None:
        async with claims.hold("t1", name):
            order.append(f"{name} in")
            if name == "a":
                await release.wait()
            order.append(f"{name} out")

    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(run, name)
            await wait_all_tasks_blocked()
        assert claims.statistics().waiting == 2 and claims.statistics().held == 1
        release.set()
    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]
    stats = claims.statistics()
    assert (stats.held, stats.waiting, stats.acquired, stats.refused) == (0, 0, 3, 0)
    assert not claims._queues  # nothing kept for threads nobody holds


async def test_other_threads_do_not_wait() -> None:
    claims = ThreadClaims(MemoryThreadStore(), wait=0)
    async with claims.hold("t1", "run_a"), claims.hold("t2", "run_b"):
        assert claims.statistics().held == 2


async def test_a_run_waits_at_most_wait_then_is_refused() -> None:
    claims = ThreadClaims(MemoryThreadStore(), wait=0.1)
    async with claims.hold("t1", "run_a"):
        started = anyio.current_time()
        with pytest.raises(ThreadBusyError) as caught:
            async with claims.hold("t1", "run_b"):
                pass  # pragma: no cover
        assert anyio.current_time() - started >= 0.1
    assert caught.value.thread_id == "t1" and caught.value.waited == 0.1
    async with claims.hold("t1", "run_b"):  # free again
        pass
    assert claims.statistics().refused == 1


async def test_the_store_claim_is_held_and_released(anyio_backend: str) -> None:
    store = MemoryThreadStore()
    claims = ThreadClaims(store, wait=0)
    async with claims.hold("t1", "run_a"):
        assert not await store.claim("t1", "elsewhere", lease=10)
    assert await store.claim("t1", "elsewhere", lease=10)
    # ... and now a run of this process is refused by the store's claim
    with pytest.raises(ThreadBusyError):
        async with claims.hold("t1", "run_b"):
            pass  # pragma: no cover


async def test_a_claim_held_elsewhere_is_waited_for() -> None:
    store = MemoryThreadStore()
    assert await store.claim("t1", "elsewhere", lease=0.2)  # expires unreleased
    claims = ThreadClaims(store, wait=5)
    started = anyio.current_time()
    async with claims.hold("t1", "run_a"):
        assert anyio.current_time() - started >= 0.19


async def test_cancelled_holders_and_waiters_leave_nothing_behind() -> None:
    store = MemoryThreadStore()
    claims = ThreadClaims(store, wait=10)
    entered = anyio.Event()

    async def holder() -> None:
        async with claims.hold("t1", "run_a"):
            entered.set()
            await anyio.sleep_forever()

    async def waiter() -> None:
        async with claims.hold("t1", "run_b"):
            pass  # pragma: no cover

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await entered.wait()
        tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert claims.statistics().held == claims.statistics().waiting == 0
    assert await store.claim("t1", "run_c", lease=10)  # released in the store too
    await store.release_claim("t1", "run_c")
    async with claims.hold("t1", "run_d"):
        pass


async def test_claims_are_renewed_in_the_background() -> None:
    store = MemoryThreadStore()
    async with anyio.create_task_group() as tg:
        claims = ThreadClaims(store, lease=0.6, wait=0, spawn=spawner(tg))
        async with claims.hold("t1", "run_a") as claim:
            assert claims.renewing
            await anyio.sleep(1.5)  # more than two leases
            assert not await store.claim("t1", "elsewhere", lease=10)
            assert not claim.lost
        await anyio.sleep(0.3)  # the renewer's last sleep: it ends with no claim held
    assert not claims.renewing


async def test_without_a_task_group_refresh_renews_in_line() -> None:
    store = MemoryThreadStore()
    claims = ThreadClaims(store, lease=0.6, wait=0, spawn=lambda fn: False)
    async with claims.hold("t1", "run_a") as claim:
        for _ in range(15):
            await anyio.sleep(0.1)
            await claim.refresh()  # what the loop does at each step
        assert not await store.claim("t1", "elsewhere", lease=10)
        assert not claims.renewing


async def test_a_claim_taken_over_while_held_is_reported_lost() -> None:
    store = MemoryThreadStore()
    claims = ThreadClaims(store, lease=0.05, wait=0)
    with capture_events() as logs:
        async with claims.hold("t1", "run_a") as claim:
            await anyio.sleep(0.1)  # stalled past its lease ...
            assert await store.claim("t1", "run_b", lease=10)  # ... and taken over
            await claim.refresh()
            assert claim.lost
    assert claims.statistics().lost == 1
    assert [e["event"] for e in logs] == ["thread.claim_lost"]
    assert not await store.claim("t1", "run_c", lease=10)  # run_b's, not released by run_a


async def test_an_expired_but_free_claim_is_taken_again_on_renewal() -> None:
    store = MemoryThreadStore()
    claims = ThreadClaims(store, lease=0.05, wait=0)
    async with claims.hold("t1", "run_a") as claim:
        await anyio.sleep(0.1)
        await claim.refresh()
        assert not claim.lost
        assert not await store.claim("t1", "run_b", lease=10)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="lease"):
        ThreadClaims(MemoryThreadStore(), lease=0)
    with pytest.raises(ValueError, match="wait"):
        ThreadClaims(MemoryThreadStore(), wait=-1)


@pytest.mark.anyio
async def test_a_flood_of_runs_on_one_thread_is_refused_not_buffered() -> None:
    """Failed before: every run waited in line (up to thread_wait each), without bound."""
    from agentrt import MemoryThreadStore, ThreadBusyError
    from agentrt.thread._claims import ThreadClaims

    store = MemoryThreadStore()
    claims = ThreadClaims(store, wait=30, queue=2)
    release = anyio.Event()
    entered = 0
    refused = 0

    async def run(holder: str) -> None:
        nonlocal entered, refused
        try:
            async with claims.hold("thr_flood", holder):
                entered += 1
                await release.wait()
        except ThreadBusyError:
            refused += 1

    async with anyio.create_task_group() as tg:
        for index in range(6):
            tg.start_soon(run, f"run_{index}")
        await anyio.wait_all_tasks_blocked()
        assert (entered, refused) == (1, 3)  # one holds it, two wait, three refused at once
        release.set()
    assert (entered, refused) == (3, 3)
