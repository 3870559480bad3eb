"""A durable run's semantics on a real Temporal dev server (a worker in this process):
approvals are workflow updates (a paused run runs no activity), cancelling a run
cancels its workflow and activities and leaves the thread whole, one run per thread."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import anyio
import pytest
from reliability.support import check_thread
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from agentrt import Runtime, ThreadBusyError, UsageError
from agentrt.temporal import TemporalRuntime
from agentrt.temporal._types import workflow_id
from agentrt.testing import capture_events

from .fleet import FleetAgent
from .support import fleet

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.redis,
              pytest.mark.timeout(60)]


async def test_an_approval_is_a_decision_sent_to_the_waiting_workflow(
        temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with fleet(temporal_address, tmp_path) as harness:
        monkeypatch.setenv("FLEET_PREFIX", harness.prefix)
        async with harness.in_process_worker(), harness.runtime() as runtime:
            agent = FleetAgent(runtime)
            paused = await agent.run("Refund: kiwi")
            assert paused.stop_reason == "approval_required"
            (call,) = paused.pending
            assert (call.name, call.input, call.reason) == ("refund", {"item": "kiwi"},
                                                            "money leaves the shop")
            # the workflow waits for a decision with no activity running, and the store
            # shows the pending call as a local run would
            handle = runtime.temporal.get_workflow_handle(workflow_id(paused.thread_id))
            description = await handle.describe()
            assert description.status == WorkflowExecutionStatus.RUNNING
            assert not description.raw_description.pending_activities
            assert [p.id for p in await agent.pending(paused.thread_id)] == [call.id]
            # one run per thread: a new message while it waits is refused
            with pytest.raises(ThreadBusyError):
                await agent.run("Refund: fig", thread_id=paused.thread_id)
            done = await agent.resume(paused.thread_id, approve=[call.id])
            assert done.stop_reason == "end_turn"
            assert done.text == "Refund settled."
            assert await handle.result()
            check_thread(await runtime.store.messages(paused.thread_id))
            assert await agent.pending(paused.thread_id) == []
        refunds = [r for r in await harness.records() if r["fn"] == "refund"]
        assert [r["item"] for r in refunds] == ["kiwi"]


async def test_a_stop_that_outlasts_the_update_call_is_waited_for_again(
        temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The call that waits for a run's stop is a workflow update with an RPC deadline:
    loaded workers (fifty runs beside two other test suites) did not reach a stop within
    the server's, and the run failed with WorkflowUpdateRPCTimeoutOrCancelledError. The
    call is made again, attached to the same update, until the run stops."""
    async with fleet(temporal_address, tmp_path) as harness:
        monkeypatch.setenv("FLEET_PREFIX", harness.prefix)
        monkeypatch.setenv("FLEET_SLOW", "2")  # slow_check: 2 s, four update deadlines
        async with harness.in_process_worker(), harness.runtime(
                update_rpc_timeout=0.5) as runtime:
            with capture_events() as logs:
                result = await FleetAgent(runtime).run("Check: fig")
            assert (result.stop_reason, result.text) == ("end_turn", "Checked fig.")
            check_thread(await runtime.store.messages(result.thread_id))
            for bad in (0, -1.0, float("nan")):
                with pytest.raises(UsageError, match="update_rpc_timeout"):
                    TemporalRuntime(client=runtime.temporal, task_queue="q",
                                    update_rpc_timeout=bad)
    assert "temporal.update_retried" in [e["event"] for e in logs]


async def test_a_denial_is_answered_to_the_model(temporal_address: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async with fleet(temporal_address, tmp_path) as harness:
        monkeypatch.setenv("FLEET_PREFIX", harness.prefix)
        async with harness.in_process_worker(), harness.runtime() as runtime:
            agent = FleetAgent(runtime)
            paused = await agent.run("Refund: kiwi")
            (call,) = paused.pending
            done = await agent.resume(paused.thread_id, deny={call.id: "not in policy"})
            assert done.stop_reason == "end_turn"
            messages = await runtime.store.messages(paused.thread_id)
            check_thread(messages)
            (result,) = [b for b in messages[-2].blocks() if b.get("type") == "tool_result"]
            assert result["is_error"] and "not in policy" in str(result["content"])
        assert [r for r in await harness.records() if r["fn"] == "refund"] == []


async def test_cancelling_a_run_cancels_its_workflow_and_activities(
        temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with fleet(temporal_address, tmp_path) as harness:
        monkeypatch.setenv("FLEET_PREFIX", harness.prefix)
        monkeypatch.setenv("FLEET_HANG", "ship")
        thread_id = f"thread_{uuid.uuid4().hex}"
        async with harness.in_process_worker(), harness.runtime() as runtime:
            agent = FleetAgent(runtime)
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: agent.run("Ship: lime", thread_id=thread_id))
                await harness.wait_for("ship", "start")
                group.cancel_scope.cancel()
            handle = runtime.temporal.get_workflow_handle(workflow_id(thread_id))
            with pytest.raises(WorkflowFailureError):
                await handle.result()
            assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
            messages = await runtime.store.messages(thread_id)
            check_thread(messages)
            results = {b["tool_use_id"]: b for b in messages[-1].blocks()}
            assert any("cancelled" in str(b["content"]) for b in results.values())
            # the thread is free again: a new run on it goes through
            again = await agent.run("Ship: lime", thread_id=thread_id)
            assert again.stop_reason == "end_turn"
        ships = [r["phase"] for r in await harness.records() if r["fn"] == "ship"]
        assert ships == ["start", "start", "effect"]


async def test_a_local_run_is_refused_while_a_durable_run_holds_the_thread(
        temporal_address: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workflow's activities hold the store's claim: an in-process run (what
    `agentrt chat` does) on the same thread is refused meanwhile, and goes through once
    the durable run is over."""
    async with fleet(temporal_address, tmp_path) as harness:
        monkeypatch.setenv("FLEET_PREFIX", harness.prefix)
        monkeypatch.setenv("FLEET_HANG", "ship")
        thread_id = f"thread_{uuid.uuid4().hex}"
        settings = harness.settings().model_copy(update={"thread_wait": 0.0})
        async with harness.in_process_worker(), harness.runtime() as runtime, \
                harness.server.client() as client, Runtime(settings, client=client) as local:
            durable, nearby = FleetAgent(runtime), FleetAgent(local)
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: durable.run("Ship: lime", thread_id=thread_id))
                await harness.wait_for("ship", "start")
                with pytest.raises(ThreadBusyError):
                    await nearby.run("Ship: pear", thread_id=thread_id)
                group.cancel_scope.cancel()  # the hung call: the run is cancelled
            with pytest.raises(WorkflowFailureError):
                await runtime.temporal.get_workflow_handle(workflow_id(thread_id)).result()
            again = await nearby.run("Ship: pear", thread_id=thread_id)
            assert again.stop_reason == "end_turn"
            check_thread(await local.store.messages(thread_id))
