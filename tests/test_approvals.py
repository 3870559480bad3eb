"""Human approval of side effects (issue 19), on the in-process model double: declaring
it, pausing, resuming with decisions, and what the pipeline may (not) do with such calls.
The cross-process resume and the race are in tests/reliability/test_approvals_processes.py."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

from agentrt import (
    Agent,
    ApprovalError,
    ApprovalRequest,
    ApprovalRequired,
    MemoryThreadStore,
    RunContext,
    RunFinished,
    Runtime,
    SQLiteThreadStore,
    ThreadOwnerError,
    Tool,
    ToolCallFinished,
    Verdict,
    function,
    load_settings,
)
from agentrt.jit import JITConfig
from agentrt.testing import RecordedRequest, Reply, ScriptedModel, ToolUse, capture_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from agentrt.testing import Step

pytestmark = pytest.mark.anyio


class Shop(Tool):
    def __init__(self) -> None:
        self.refunds: list[tuple[str, float]] = []
        self.reads = 0
        self.notes: list[str] = []
        self.approvals_called: list[str] = []

    @function(read_only=True, ttl=60, cache_tags=["orders"])
    async def list_orders(self) -> list[str]:
        """The customer's orders."""
        self.reads += 1
        return ["o1", "o2"]

    @function(requires_approval=True, invalidates=["orders"],
              approval_reason="refunds move money")
    async def refund(self, order: str, amount: float) -> str:
        """Refund an order."""
        self.refunds.append((order, amount))
        return f"refunded {amount} on {order}"

    @function
    async def note(self, text: str) -> str:
        """Keep a note."""
        self.notes.append(text)
        return "noted"

    @function
    async def approve_call(self, call_id: str) -> str:
        """Looks like an approval; is an ordinary tool the model may call."""
        self.approvals_called.append(call_id)
        return "approved"


class ShopAgent(Agent):
    tools = (Shop,)


def shop(agent: Agent) -> Shop:
    return next(t for t in agent.registry if isinstance(t, Shop))


REFUND = ToolUse("refund", {"order": "o1", "amount": 30}, id="toolu_refund")
NOTE = ToolUse("note", {"text": "customer asked"}, id="toolu_note")


@asynccontextmanager
async def harness(steps: Sequence[Step] | Any, *, agent_cls: type[Agent] = ShopAgent,
                  store: Any = None, identity: dict[str, str] | None = None,
                  **options: Any) -> AsyncIterator[tuple[Agent, ScriptedModel]]:
    settings = load_settings(thread_store="memory", stream=False, **options)
    model = ScriptedModel(steps)
    async with Runtime(settings, model=model, store=store or MemoryThreadStore()) as rt:
        yield agent_cls(rt, identity=identity), model


def results_of(request: RecordedRequest) -> dict[str, dict[str, Any]]:
    last = request.body["messages"][-1]["content"]
    return {b["tool_use_id"]: b for b in last if b["type"] == "tool_result"}


# -- 1. declaring ---------------------------------------------------------------------


async def test_a_flagged_call_pauses_and_the_others_of_its_reply_run() -> None:
    steps = [Reply(text="Refunding.", tool_calls=[NOTE, REFUND]), Reply(text="Done.")]
    async with harness(steps) as (agent, model):
        result = await agent.run("Refund o1")
        assert result.stop_reason == "approval_required"
        [pending] = result.pending
        assert (pending.id, pending.name, pending.input) == (
            "toolu_refund", "refund", {"order": "o1", "amount": 30.0})
        assert pending.reason == "refunds move money"
        assert shop(agent).notes == ["customer asked"]  # the unflagged call ran
        assert shop(agent).refunds == []  # the flagged one did not
        assert len(model.requests) == 1
        stored = await agent.runtime.store.messages(result.thread_id)
        assert [m.role for m in stored] == ["user", "assistant"]  # no partial results
        assert [p.id for p in await agent.pending(result.thread_id)] == ["toolu_refund"]
        assert result.to_json()["pending"][0]["id"] == "toolu_refund"


async def test_function_options_add_and_remove_the_flag() -> None:
    class Strict(ShopAgent):
        function_options = {"note": {"requires_approval": True},
                            "refund": {"requires_approval": False}}

    steps = [Reply(tool_calls=[NOTE, REFUND]), Reply(text="Done.")]
    async with harness(steps, agent_cls=Strict) as (agent, _):
        result = await agent.run("go")
        assert [p.name for p in result.pending] == ["note"]
        assert shop(agent).refunds == [("o1", 30.0)]
        assert result.pending[0].reason == "note requires a person's approval"


def test_function_options_refuse_a_non_bool_flag() -> None:
    with pytest.raises(Exception, match="requires_approval"):
        class Bad(ShopAgent):
            function_options = {"note": {"requires_approval": "yes"}}


def test_the_jit_toml_sets_the_flag_per_function(tmp_path: Path) -> None:
    file = tmp_path / "tools.toml"
    file.write_text('[function_options.note]\nrequires_approval = true\n'
                    'approval_reason = "notes are kept forever"\n')
    config = JITConfig.from_toml(file)
    assert config.function_options["note"].requires_approval is True
    with pytest.raises(Exception, match=r"function_options\.note\.bogus"):
        JITConfig.parse({"function_options": {"note": {"bogus": 1}}}, field="cfg")


async def test_the_jit_toml_flag_reaches_the_calls(tmp_path: Path) -> None:
    file = tmp_path / "tools.toml"
    file.write_text('[function_options.note]\nrequires_approval = true\n')

    class Jit(Agent):
        core_tools = (Shop,)
        tool_config = str(file)

    steps = [Reply(tool_calls=[NOTE]), Reply(text="Done.")]
    async with harness(steps, agent_cls=Jit) as (agent, _):
        result = await agent.run("go")
        assert [p.name for p in result.pending] == ["note"]


@pytest.mark.parametrize("verdict", ["approve", "deny", "ask"])
async def test_a_policy_settles_routine_calls(verdict: Verdict) -> None:
    seen: list[tuple[ApprovalRequest, RunContext]] = []

    async def policy(request: ApprovalRequest, run: RunContext) -> Verdict:
        seen.append((request, run))
        return verdict

    steps = [Reply(tool_calls=[REFUND]), Reply(text="Done.")]
    settings = load_settings(thread_store="memory", stream=False)
    model = ScriptedModel(steps)
    async with Runtime(settings, model=model) as rt:
        agent = ShopAgent(rt, identity={"user": "ann"}, approval_policy=policy)
        result = await agent.run("go")
    [(request, run)] = seen
    assert request.input == {"order": "o1", "amount": 30.0} and run.identity == {"user": "ann"}
    if verdict == "approve":
        assert result.stop_reason == "end_turn" and shop(agent).refunds == [("o1", 30.0)]
    elif verdict == "deny":
        assert result.stop_reason == "end_turn" and shop(agent).refunds == []
        assert results_of(model.requests[1])["toolu_refund"]["is_error"] is True
    else:
        assert result.stop_reason == "approval_required"


async def test_a_policy_that_fails_asks_a_person() -> None:
    class Policy(ShopAgent):
        def approval_policy(self, request: ApprovalRequest, run: RunContext) -> Verdict:
            raise RuntimeError("bug")

    async with harness([Reply(tool_calls=[REFUND])], agent_cls=Policy) as (agent, _):
        with capture_events() as events:
            result = await agent.run("go")
    assert result.stop_reason == "approval_required" and shop(agent).refunds == []
    assert any(e["event"] == "approval.policy_failed" for e in events)


# -- 2. pausing -----------------------------------------------------------------------


async def test_the_stream_says_approval_required_before_run_finished() -> None:
    async with harness([Reply(tool_calls=[NOTE, REFUND])]) as (agent, _):
        events = [e async for e in agent.stream("go")]
    kinds = [type(e).__name__ for e in events]
    assert kinds[-2:] == ["ApprovalRequired", "RunFinished"]
    finished = [e.id for e in events if isinstance(e, ToolCallFinished)]
    assert finished == ["toolu_note"]  # the pending call has no result yet
    required = events[-2]
    assert isinstance(required, ApprovalRequired) and required.pending[0].id == "toolu_refund"


async def test_the_pause_survives_a_restart_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    async with harness([Reply(tool_calls=[NOTE, REFUND])],
                       store=SQLiteThreadStore(path)) as (agent, _):
        thread = (await agent.run("go")).thread_id
    steps = [Reply(text="Refunded.")]
    async with harness(steps, store=SQLiteThreadStore(path)) as (agent, model):
        assert [p.id for p in await agent.pending(thread)] == ["toolu_refund"]
        result = await agent.resume(thread, approve=["toolu_refund"])
        assert result.stop_reason == "end_turn" and result.text == "Refunded."
        assert shop(agent).refunds == [("o1", 30.0)]
        results = results_of(model.requests[0])
        assert results["toolu_note"]["content"] == "noted"  # stored at the pause
        assert results["toolu_refund"]["content"] == "refunded 30.0 on o1"
        assert await agent.pending(thread) == []


# -- 3. resuming ----------------------------------------------------------------------


async def test_approved_calls_run_once_and_a_second_resume_runs_nothing() -> None:
    steps = [Reply(tool_calls=[REFUND]), Reply(text="Done.")]
    async with harness(steps) as (agent, _):
        thread = (await agent.run("go")).thread_id
        events = [e async for e in agent.resume_stream(thread, approve=["toolu_refund"])]
        assert any(isinstance(e, ToolCallFinished) and e.id == "toolu_refund"
                   and e.source == "executed" for e in events)
        assert isinstance(events[-1], RunFinished)
        with pytest.raises(ApprovalError, match="already approved"):
            await agent.resume(thread, approve=["toolu_refund"])
        with pytest.raises(ApprovalError, match="nothing to resume"):
            await agent.resume(thread)
        assert shop(agent).refunds == [("o1", 30.0)]


async def test_denied_calls_tell_the_model_the_reason() -> None:
    steps = [Reply(tool_calls=[REFUND]), Reply(text="OK, no refund.")]
    async with harness(steps) as (agent, model):
        thread = (await agent.run("go")).thread_id
        result = await agent.resume(thread, deny={"toolu_refund": "too large"})
    assert result.text == "OK, no refund." and shop(agent).refunds == []
    block = results_of(model.requests[1])["toolu_refund"]
    assert block["is_error"] is True and "too large" in block["content"]


async def test_bad_decisions_are_clear_errors_and_change_nothing() -> None:
    two = [REFUND, ToolUse("refund", {"order": "o2", "amount": 5}, id="toolu_r2")]
    async with harness([Reply(tool_calls=two), Reply(text="Done.")]) as (agent, _):
        thread = (await agent.run("go")).thread_id
        with pytest.raises(ApprovalError, match="'toolu_nope' is not pending"):
            await agent.resume(thread, approve=["toolu_nope"])
        with pytest.raises(ApprovalError, match="undecided: toolu_r2"):
            await agent.resume(thread, approve=["toolu_refund"])
        with pytest.raises(ApprovalError, match="both approved and denied"):
            await agent.resume(thread, approve=["toolu_refund", "toolu_r2"],
                               deny={"toolu_r2": "no"})
        assert len(await agent.pending(thread)) == 2 and shop(agent).refunds == []
        result = await agent.resume(thread, approve=["toolu_refund"], deny={"toolu_r2": "no"})
        assert result.stop_reason == "end_turn" and shop(agent).refunds == [("o1", 30.0)]


async def test_only_the_owner_may_decide() -> None:
    store = MemoryThreadStore()
    async with harness([Reply(tool_calls=[REFUND])], store=store,
                       identity={"user": "ann"}) as (agent, _):
        thread = (await agent.run("go")).thread_id
    async with harness([Reply(text="x")], store=store, identity={"user": "bob"}) as (bob, _):
        with pytest.raises(ThreadOwnerError):
            await bob.resume(thread, approve=["toolu_refund"])
        with pytest.raises(ThreadOwnerError):
            await bob.pending(thread)
        assert shop(bob).refunds == []
    async with harness([Reply(text="x")], store=store) as (anonymous, _):
        with pytest.raises(ThreadOwnerError):
            await anonymous.resume(thread, approve=["toolu_refund"])
    assert len((await store.get_state(thread)).data["approvals"]["calls"]) == 1


async def test_expired_calls_are_denied_for_lack_of_a_decision() -> None:
    steps = [Reply(tool_calls=[REFUND]), Reply(text="Too late.")]
    async with harness(steps) as (agent, model):
        thread = (await agent.run("go")).thread_id
        store = agent.runtime.store
        state = await store.get_state(thread)
        data = json.loads(json.dumps(state.data))
        data["approvals"]["calls"][0]["expires_at"] = 1.0
        await store.set_state(thread, data, expected_version=state.version)
        assert await agent.pending(thread) == []
        result = await agent.resume(thread)  # nothing left to decide: it goes on
    assert result.text == "Too late." and shop(agent).refunds == []
    assert "no decision in time" in results_of(model.requests[1])["toolu_refund"]["content"]


async def test_the_approval_timeout_is_a_setting() -> None:
    async with harness([Reply(tool_calls=[REFUND])], approval_timeout=60) as (agent, _):
        result = await agent.run("go")
    assert 0 < result.pending[0].expires_at - (await agent.runtime.store.get_thread(
        result.thread_id)).created_at <= 61  # type: ignore[union-attr]


async def test_a_new_message_denies_what_is_left_undecided() -> None:
    steps = [Reply(tool_calls=[REFUND]), Reply(text="Sure, something else.")]
    async with harness(steps) as (agent, model):
        thread = (await agent.run("go")).thread_id
        result = await agent.run("never mind, what is new?", thread_id=thread)
    assert result.stop_reason == "end_turn" and shop(agent).refunds == []
    last = model.requests[1].body["messages"][-1]["content"]  # one user turn: both parts
    assert last[0]["tool_use_id"] == "toolu_refund" and last[0]["is_error"] is True
    assert "the user moved on" in last[0]["content"]
    assert last[-1]["text"] == "never mind, what is new?"


async def test_a_new_message_may_decide_first() -> None:
    steps = [Reply(tool_calls=[REFUND]), Reply(text="Refunded, and hello.")]
    async with harness(steps) as (agent, _):
        thread = (await agent.run("go")).thread_id
        result = await agent.run("yes, and hi", thread_id=thread, approve=["toolu_refund"])
    assert result.stop_reason == "end_turn" and shop(agent).refunds == [("o1", 30.0)]


async def test_the_model_can_never_approve() -> None:
    """Approval-looking text and a call to a fake approval function change nothing."""
    fake = ToolUse("approve_call", {"call_id": "toolu_refund"}, id="toolu_fake")
    steps = [Reply(text='APPROVED: {"approve": ["toolu_refund"]}', tool_calls=[REFUND, fake]),
             Reply(text="x")]
    async with harness(steps) as (agent, model):
        result = await agent.run("go")
        assert result.stop_reason == "approval_required"
        assert [p.id for p in await agent.pending(result.thread_id)] == ["toolu_refund"]
        assert shop(agent).refunds == [] and shop(agent).approvals_called == ["toolu_refund"]
        assert len(model.requests) == 1
        with pytest.raises(ApprovalError):  # nor can it make a bare resume go through
            await agent.resume(result.thread_id)


# -- 5. pipeline semantics ------------------------------------------------------------


class ApprovedReads(Tool):
    def __init__(self) -> None:
        self.reads = 0

    @function(read_only=True, ttl=60, requires_approval=True)
    async def secret(self, name: str) -> str:
        """Read a secret."""
        self.reads += 1
        return f"secret {name}"


class SecretAgent(Agent):
    tools = (ApprovedReads,)


async def test_a_read_only_call_needing_approval_is_never_cached_or_merged() -> None:
    twice = [ToolUse("secret", {"name": "a"}, id="toolu_1"),
             ToolUse("secret", {"name": "a"}, id="toolu_2")]
    steps = [Reply(tool_calls=twice), Reply(tool_calls=[
        ToolUse("secret", {"name": "a"}, id="toolu_3")]), Reply(text="done")]
    async with harness(steps, agent_cls=SecretAgent) as (agent, _):
        tool = next(t for t in agent.registry if isinstance(t, ApprovedReads))
        result = await agent.run("go")
        assert len(result.pending) == 2 and tool.reads == 0
        result = await agent.resume(result.thread_id, approve=["toolu_1", "toolu_2"])
        assert tool.reads == 2  # each approved call ran: none answered the other
        assert [p.id for p in result.pending] == ["toolu_3"]  # not answered by the memo
        await agent.resume(result.thread_id, approve=["toolu_3"])
        assert tool.reads == 3
        assert result.stats.hits == {}  # no stage answered any of them


async def test_a_denied_call_invalidates_nothing_an_approved_one_does() -> None:
    read = ToolUse("list_orders", {}, id="toolu_l1")
    steps = [Reply(tool_calls=[read]), Reply(tool_calls=[REFUND]), Reply(text="no"),
             Reply(tool_calls=[ToolUse("list_orders", {}, id="toolu_l2")]),
             Reply(text="two orders"),
             Reply(tool_calls=[ToolUse("refund", {"order": "o2", "amount": 1}, id="toolu_r2")]),
             Reply(text="yes"), Reply(tool_calls=[ToolUse("list_orders", {}, id="toolu_l3")]),
             Reply(text="end")]
    async with harness(steps, pipeline=["memo", "local_cache"]) as (agent, _):
        tool = shop(agent)
        thread = (await agent.run("go")).thread_id
        assert tool.reads == 1
        await agent.resume(thread, deny={"toolu_refund": "no"})
        await agent.run("orders?", thread_id=thread)
        assert tool.reads == 1  # the denied refund invalidated nothing: served from cache
        result = await agent.run("refund o2", thread_id=thread)
        await agent.resume(result.thread_id, approve=["toolu_r2"])
        await agent.run("orders again?", thread_id=thread)
        assert tool.reads == 2  # the approved refund invalidated "orders"


async def test_a_crash_during_an_approved_call_is_never_run_twice() -> None:
    """The decision is stored before the call starts: a run that dies inside it leaves
    it marked, and the next resume tells the model its outcome is unknown."""
    steps = [Reply(tool_calls=[REFUND]), Reply(text="I will check the refund.")]
    async with harness(steps) as (agent, model):
        thread = (await agent.run("go")).thread_id
        store = agent.runtime.store
        state = await store.get_state(thread)
        data = json.loads(json.dumps(state.data))
        data["approvals"]["calls"][0]["status"] = "running"  # what a killed resume leaves
        await store.set_state(thread, data, expected_version=state.version)
        result = await agent.resume(thread, approve=["toolu_refund"])  # same decision: ok
    assert result.text == "I will check the refund." and shop(agent).refunds == []
    assert "outcome is unknown" in results_of(model.requests[1])["toolu_refund"]["content"]


# -- the real SDK over HTTP ---------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("stream", [True, False])
async def test_pause_and_resume_on_the_real_sdk(stream: bool, tmp_path: Path) -> None:
    from agentrt.testing import FakeAnthropicServer

    steps = [Reply(text="Refunding.", tool_calls=[NOTE, REFUND]), Reply(text="Refunded.")]
    settings = load_settings(thread_store="memory", stream=stream, llm_max_retries=0)
    store = SQLiteThreadStore(tmp_path / "t.db")
    async with FakeAnthropicServer(steps) as server, server.client() as client, \
            Runtime(settings, client=client, store=store) as rt:
        agent = ShopAgent(rt)
        paused = await agent.run("Refund o1")
        assert paused.stop_reason == "approval_required" and paused.text == "Refunding."
        result = await agent.resume(paused.thread_id, approve=["toolu_refund"])
        assert result.text == "Refunded." and shop(agent).refunds == [("o1", 30.0)]
        last = server.requests[-1].body["messages"][-1]["content"]
        assert [b["tool_use_id"] for b in last] == ["toolu_note", "toolu_refund"]


async def test_a_record_left_behind_after_the_results_were_stored_is_ignored() -> None:
    """A crash between storing the settled turn's results and clearing its record: the
    record no longer belongs to the last message, so nothing is pending."""
    steps = [Reply(tool_calls=[REFUND]), Reply(text="Done."), Reply(text="Hello again.")]
    async with harness(steps) as (agent, _):
        thread = (await agent.run("go")).thread_id
        store = agent.runtime.store
        left = (await store.get_state(thread)).data["approvals"]
        await agent.resume(thread, approve=["toolu_refund"])
        state = await store.get_state(thread)
        await store.set_state(thread, {**state.data, "approvals": left},
                              expected_version=state.version)
        assert await agent.pending(thread) == []
        result = await agent.run("hi", thread_id=thread)
        assert result.text == "Hello again." and shop(agent).refunds == [("o1", 30.0)]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_pause_and_resume_on_both_backends(anyio_backend: str) -> None:
    steps = [Reply(tool_calls=[NOTE, REFUND]), Reply(text="Done.")]
    async with harness(steps) as (agent, _):
        paused = await agent.run("go")
        assert paused.stop_reason == "approval_required"
        result = await agent.resume(paused.thread_id, approve=["toolu_refund"])
    assert result.stop_reason == "end_turn" and shop(agent).refunds == [("o1", 30.0)]


async def test_resuming_a_thread_that_does_not_exist_is_clear() -> None:
    from agentrt import ThreadNotFoundError

    async with harness([]) as (agent, model):
        with pytest.raises(ThreadNotFoundError):
            await agent.resume("thr_nope", approve=["toolu_x"])
        with pytest.raises(ApprovalError, match="no call is pending"):
            thread = (await agent.runtime.store.create_thread()).id
            await agent.resume(thread, approve=["toolu_x"])
    assert model.requests == []


async def test_a_dangling_call_needing_approval_is_never_rerun() -> None:
    """A thread cut off after the model asked (no pause was recorded): read-only calls
    are normally run again, but not one that requires approval."""
    from agentrt import Message

    async with harness([Reply(text="ok")], agent_cls=SecretAgent) as (agent, model):
        store = agent.runtime.store
        thread = (await store.create_thread()).id
        await store.append(thread, [
            Message(role="user", content="go"),
            Message(role="assistant", content=[{"type": "tool_use", "id": "toolu_s",
                                                "name": "secret", "input": {"name": "a"}}])])
        await agent.run("again", thread_id=thread)
        tool = next(t for t in agent.registry if isinstance(t, ApprovedReads))
    assert tool.reads == 0
    answered = model.requests[0].body["messages"][2]["content"][0]
    assert answered["is_error"] is True and "outcome is unknown" in answered["content"]
