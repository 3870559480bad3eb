"""Durable runs on a real Temporal dev server with worker OS processes: a worker
SIGKILLed in the middle of a turn (during the model request, a read-only tool, a
side-effecting tool), and the run finishes on the other worker with its thread
whole, no side effect run twice, no cached read repeated; 50 runs across 2 workers."""

from __future__ import annotations

import collections
import uuid
from typing import TYPE_CHECKING

import anyio
import pytest
from reliability.support import check_thread

from agentrt.temporal._types import workflow_id

from .fleet import FleetAgent
from .support import fleet, fleet_model

if TYPE_CHECKING:
    from pathlib import Path

    from agentrt import RunResult
    from agentrt.testing import RecordedRequest, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.redis,
              pytest.mark.timeout(90)]


async def test_a_run_completes_on_a_worker_process(temporal_address: str,
                                                   tmp_path: Path) -> None:
    async with fleet(temporal_address, tmp_path) as harness:
        await harness.worker()
        async with harness.runtime() as runtime:
            agent = FleetAgent(runtime)
            texts: list[str] = []
            result = None
            async for event in agent.stream("Ship: apple"):
                if type(event).__name__ == "TextDelta":
                    texts.append(event.text)  # type: ignore[union-attr]
                if type(event).__name__ == "RunFinished":
                    result = event.result  # type: ignore[union-attr]
            assert result is not None
            assert result.stop_reason == "end_turn", result
            assert result.text == "All shipped: apple"
            assert "".join(texts) == "Shipping apple.All shipped: apple"
            messages = await runtime.store.messages(result.thread_id)
            check_thread(messages)
            assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
            # one thread, one run at a time: the store's claim is given back at the end
            assert await runtime.store.claim(result.thread_id, "someone", lease=1.0)
        effects = [r for r in await harness.records() if r["phase"] == "effect"]
        assert [(r["fn"], r["item"]) for r in effects] == [("stock", "apple"),
                                                          ("ship", "apple")]


async def _finish_on_the_other(harness_run: anyio.abc.TaskGroup, agent: FleetAgent,
                               task: str, results: list[RunResult],
                               thread_id: str | None = None) -> None:
    results.append(await agent.run(task, thread_id=thread_id))


async def test_worker_killed_during_the_model_request(temporal_address: str,
                                                      tmp_path: Path) -> None:
    reached, killed = anyio.Event(), anyio.Event()
    seen: collections.Counter[int] = collections.Counter()

    async def model(request: RecordedRequest) -> Reply:
        turn = len(request.body["messages"])
        seen[turn] += 1
        if turn == 3 and seen[turn] == 1:  # the second request, the first time: its
            reached.set()                  # worker is killed while it waits for the reply
            await killed.wait()
        return fleet_model(request)

    async with fleet(temporal_address, tmp_path, model) as harness:
        await harness.start(2)
        thread_id = f"thread_{uuid.uuid4().hex}"
        async with harness.runtime() as runtime, anyio.create_task_group() as group:
            results: list[RunResult] = []
            group.start_soon(_finish_on_the_other, group, FleetAgent(runtime),
                             "Ship: pear", results, thread_id)
            with anyio.fail_after(30):
                await reached.wait()
            # the worker running the model request, as Temporal knows it ("pid@host")
            description = await runtime.temporal.get_workflow_handle(
                workflow_id(thread_id)).describe()
            (running,) = description.raw_description.pending_activities
            assert running.activity_type.name == "agentrt.model_turn"
            harness.by_pid(int(running.last_worker_identity.split("@")[0])).kill()
            killed.set()
        (result,) = results
        assert result.stop_reason == "end_turn"
        assert result.text == "All shipped: pear"
        assert seen[3] == 2  # asked again on the other worker, the lost reply never stored
        async with harness.runtime() as runtime:
            messages = await runtime.store.messages(result.thread_id)
        check_thread(messages)
        assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
        effects = [(r["fn"], r["item"]) for r in await harness.records()
                   if r["phase"] == "effect"]
        assert effects == [("stock", "pear"), ("ship", "pear")]


async def test_worker_killed_during_a_read_only_tool(temporal_address: str,
                                                     tmp_path: Path) -> None:
    async with fleet(temporal_address, tmp_path) as harness:
        await harness.start(2, hang="slow_check")
        async with harness.runtime() as runtime:
            async with anyio.create_task_group() as group:
                results: list[RunResult] = []
                group.start_soon(_finish_on_the_other, group, FleetAgent(runtime),
                                 "Check: fig", results)
                killed_in = await harness.wait_for("slow_check", "start")
                harness.by_pid(killed_in["pid"]).kill()
            (result,) = results
            assert result.stop_reason == "end_turn"
            assert result.text == "Checked fig."
            messages = await runtime.store.messages(result.thread_id)
            check_thread(messages)
            records = await harness.records()
            # the read in flight ran again on the other worker; the one that had
            # finished (its result recorded by Temporal, and cached) did not
            checks = [r for r in records if r["fn"] == "slow_check"]
            assert [(r["phase"], r["pid"] == killed_in["pid"]) for r in checks] == [
                ("start", True), ("start", False), ("effect", False)]
            assert [r["pid"] for r in records if r["fn"] == "stock"] == [killed_in["pid"]]
            # and a later run is answered from the caches: the survivor's own, or the
            # shared one (which of them depends on what that worker has seen)
            again = await FleetAgent(runtime).run("Check: fig")
            assert again.stop_reason == "end_turn"
            assert again.stats.executed == 0, again.stats
            assert set(again.stats.hits) <= {"local_cache", "shared_cache"}, again.stats
            assert sum(again.stats.hits.values()) == 2, again.stats
            assert [r["pid"] for r in await harness.records() if r["fn"] == "stock"] == [
                killed_in["pid"]]


async def test_worker_killed_during_a_side_effect(temporal_address: str,
                                                  tmp_path: Path) -> None:
    async with fleet(temporal_address, tmp_path) as harness:
        await harness.start(2, hang="ship")
        async with harness.runtime() as runtime:
            async with anyio.create_task_group() as group:
                results: list[RunResult] = []
                group.start_soon(_finish_on_the_other, group, FleetAgent(runtime),
                                 "Ship: plum", results)
                killed_in = await harness.wait_for("ship", "start")
                harness.by_pid(killed_in["pid"]).kill()
            (result,) = results
            assert result.stop_reason == "end_turn"
            assert result.text == "All shipped: plum"
            messages = await runtime.store.messages(result.thread_id)
        check_thread(messages)
        # the lost shipment was not run again blindly: the model was told its outcome
        # is unknown, checked, and shipped it once, on the other worker
        unknown = [b for m in messages for b in m.blocks()
                   if b.get("type") == "tool_result" and "outcome is unknown" in str(
                       b.get("content"))]
        assert len(unknown) == 1
        ships = [(r["phase"], r["pid"] == killed_in["pid"]) for r in await harness.records()
                 if r["fn"] == "ship"]
        assert ships == [("start", True), ("start", False), ("effect", False)]


async def test_a_read_cached_on_one_worker_answers_a_run_on_another(
        temporal_address: str, tmp_path: Path) -> None:
    """The shared cache works across workers: a run on a second worker (the first one
    gone, so it cannot be answered from that worker's own memory) gets both reads from
    Redis and runs neither again."""
    async with fleet(temporal_address, tmp_path) as harness:
        (first,) = await harness.start(1)
        async with harness.runtime() as runtime:
            done = await FleetAgent(runtime).run("Check: fig")
            assert done.stats.executed == 2, done.stats
            await harness.worker()
            first.kill()
            assert await first.process.wait() == -9
            again = await FleetAgent(runtime).run("Check: fig")
            assert again.text == "Checked fig."
            assert again.stats.executed == 0, again.stats
            assert again.stats.hits == {"shared_cache": 2}, again.stats
        effects = sorted((r["fn"], r["pid"]) for r in await harness.records()
                         if r["phase"] == "effect")
        assert effects == [("slow_check", first.process.pid), ("stock", first.process.pid)]


async def test_fifty_concurrent_runs_across_two_workers(temporal_address: str,
                                                        tmp_path: Path) -> None:
    async with fleet(temporal_address, tmp_path) as harness:
        await harness.start(2)
        async with harness.runtime() as runtime:
            agent = FleetAgent(runtime)
            results: dict[int, RunResult] = {}

            async def one(index: int) -> None:
                results[index] = await agent.run(f"Ship: item{index}")

            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    for index in range(50):
                        group.start_soon(one, index)
            assert sorted(results) == list(range(50))
            assert {r.stop_reason for r in results.values()} == {"end_turn"}
            for index, result in results.items():
                assert result.text == f"All shipped: item{index}"
                check_thread(await runtime.store.messages(result.thread_id))
        records = await harness.records()
        shipped = collections.Counter(r["item"] for r in records
                                      if r["fn"] == "ship" and r["phase"] == "effect")
        assert shipped == {f"item{i}": 1 for i in range(50)}
        assert len({r["pid"] for r in records}) == 2  # both workers took runs
