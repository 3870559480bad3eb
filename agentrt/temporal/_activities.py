"""The activities of a durable run: every model request, every tool call and every
thread-store write happens here, on a worker, through the agent's own loop pieces
(``ThreadManager``: request builder, model, pipeline, approvals, persistence).

Each activity rebuilds what it needs from the thread store (the source of truth):
the history, the run's tools and the memo the pipeline replays from it. Each is
safe to run again after a worker died in it: stored messages carry ids derived from
the run (appends are idempotent by id), a reply already stored is returned instead
of asked for again, and a paused turn's decisions are stored before an approved call
runs (a call caught in a crash is answered "outcome unknown", never run twice).

While one runs, it heartbeats every second (a dead worker is noticed after the
heartbeat timeout) and holds the thread's claim in the store, renewed as the loop's
own runs renew theirs, so an ``agentrt chat`` on the thread is refused meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from temporalio import activity
from temporalio.exceptions import ApplicationError

from .._approval_gate import paused_record
from .._approvals import PendingCall, already_decided, paused_turn, with_record
from .._context import RunContext
from .._errors import (
    AgentRtError,
    BackendUnavailableError,
    ModelError,
    StoreError,
    ThreadBusyError,
    ThreadChangedError,
)
from .._events import TextDelta
from ..llm._model import ModelReply
from ..llm._usage import Usage, UsageLimits
from ..log import get_logger
from ..loop import (
    _CANCELLED,
    _CONTINUE_AFTER_MAX_TOKENS,
    _CUT_OFF,
    _INTERRUPTED,
    _LIMITED,
    _RunState,
    _text_of,
    _tool_uses,
)
from ..pipeline._types import CallContext, ToolOutcome
from ..pipeline.processor import PENDING, TurnOutcomes, result_block
from ..thread._messages import Message
from ..thread._owners import open_thread
from ._types import (
    BeginInput,
    BeginOutput,
    CallInput,
    CallOutput,
    PauseInput,
    ResultsInput,
    RunRef,
    SettleInput,
    TurnInput,
    TurnOutput,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from ..agent import Agent
    from ..loop import ThreadManager
    from ..thread._messages import ContentBlock
    from ._stream import EventSink

__all__ = ["Activities", "outcome_from", "outcome_json"]

log = get_logger("agentrt.temporal")

_HEARTBEAT_EVERY = 1.0
# errors worth another attempt (on this worker or another); any other agentrt error
# is the run's answer and fails it at once
_RETRYABLE: tuple[type[AgentRtError], ...] = (ThreadBusyError, StoreError,
                                              BackendUnavailableError)
_SKIPPED = {"cut": _CUT_OFF, "limited": _LIMITED, "cancelled": _CANCELLED,
            "lost": _INTERRUPTED}


def outcome_json(outcome: ToolOutcome) -> dict[str, Any]:
    return {"content": outcome.content, "is_error": outcome.is_error,
            "source": outcome.source, "transient": outcome.transient,
            "blocks": None if outcome.blocks is None else [dict(b) for b in outcome.blocks],
            "error_type": outcome.error_type}


def outcome_from(data: Mapping[str, Any]) -> ToolOutcome:
    """An outcome as the workflow recorded it: a call's ``CallOutput``, or a mark
    (``{"skip": "lost"}``...) for a call answered without running."""
    skip = data.get("skip")
    if skip is not None:
        return _SKIPPED[str(skip)]
    blocks = data.get("blocks")
    return ToolOutcome(str(data["content"]), bool(data["is_error"]), str(data["source"]),
                       bool(data.get("transient", False)),
                       None if blocks is None else tuple(blocks), data.get("error_type"))


def _message_id(ref: RunRef, suffix: str) -> str:
    return f"umsg_{ref.run_id.removeprefix('run_')}_{suffix}"


def _limits(data: Mapping[str, int | None]) -> UsageLimits:
    return UsageLimits(input_tokens=data.get("input_tokens"),
                       output_tokens=data.get("output_tokens"),
                       tool_calls=data.get("tool_calls"))


def _reraised(exc: AgentRtError) -> BaseException:
    """An agentrt error as Temporal sees it: retried if it may pass, else final (the
    workflow fails with its class and message)."""
    return ApplicationError(str(exc), type=type(exc).__name__,
                            non_retryable=not isinstance(exc, _RETRYABLE))


class Activities:
    """The activities of one worker, for its agents (by ``Agent.name``)."""

    def __init__(self, agents: Mapping[str, Agent], sink: EventSink | None = None) -> None:
        self.agents = dict(agents)
        self.sink = sink

    def all(self) -> list[Callable[..., Any]]:
        return [self.begin, self.model_turn, self.tool_call, self.store_results, self.pause,
                self.settle, self.finish]

    def _manager(self, ref: RunRef) -> tuple[Agent, ThreadManager]:
        agent = self.agents.get(ref.agent)
        if agent is None:
            raise ApplicationError(
                f"this worker has no agent {ref.agent!r} (it runs "
                f"{', '.join(sorted(self.agents)) or 'none'}): start a worker with it on "
                "this task queue", type="ConfigError", non_retryable=True)
        return agent, agent._manager

    @asynccontextmanager
    async def _working(self, ref: RunRef) -> AsyncIterator[tuple[Agent, ThreadManager]]:
        """The agent, the thread's claim held for the run, heartbeats every second; an
        agentrt error leaves as Temporal's (retryable or not)."""
        agent, manager = self._manager(ref)
        store, lease = manager.store, manager.claims.lease
        try:
            if not await store.claim(ref.thread_id, ref.run_id, lease=lease):
                raise ThreadBusyError(ref.thread_id, 0.0)
            # a task of its own, not a task group: an error of the activity leaves as
            # itself (Temporal's activities run on asyncio only)
            beat = asyncio.ensure_future(self._beat(manager, ref))
            try:
                yield agent, manager
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
        except AgentRtError as exc:
            raise _reraised(exc) from exc

    async def _beat(self, manager: ThreadManager, ref: RunRef) -> None:
        lease = manager.claims.lease
        renewed = anyio.current_time()
        while True:
            activity.heartbeat()
            await anyio.sleep(_HEARTBEAT_EVERY)
            if anyio.current_time() - renewed >= lease / 3:
                try:
                    kept = await manager.store.renew_claims([(ref.thread_id, ref.run_id)],
                                                            lease=lease)
                    if not kept[0]:
                        await manager.store.claim(ref.thread_id, ref.run_id, lease=lease)
                    renewed = anyio.current_time()
                except StoreError as exc:
                    log.warning("temporal.claim_renew_failed", thread_id=ref.thread_id,
                                error=str(exc))

    async def _state(self, agent: Agent, manager: ThreadManager, ref: RunRef,
                     limits: UsageLimits | None = None) -> _RunState:
        """The run's state from the store: its history, tools and replayed memo."""
        history = await manager.store.messages(ref.thread_id)
        stored = await manager.store.get_state(ref.thread_id)
        run = RunContext(thread_id=ref.thread_id, run_id=ref.run_id, agent=ref.agent,
                         identity=dict(ref.identity), deps=dict(agent.deps))
        tools = await manager.tools.open_run(run, history)
        bound = log.bind(thread_id=ref.thread_id, run_id=ref.run_id, agent=ref.agent,
                         attempt=activity.info().attempt)
        state = _RunState(CallContext(run, log=bound, telemetry=manager.telemetry), tools,
                          history, limits or manager.limits, stored=stored)
        await manager.processor.replay(history, state.context, tools)
        return state

    async def _publish(self, ref: RunRef, events: Sequence[dict[str, Any]]) -> None:
        if self.sink is not None and ref.events and events:
            await self.sink.publish(ref.events, events)

    @activity.defn(name="agentrt.begin")
    async def begin(self, data: BeginInput) -> BeginOutput:
        """Open the thread (created, owned by the caller), settle what an earlier run
        left (dangling calls, a paused turn with the caller's decisions), store the
        user's message."""
        ref = data.ref
        async with self._working(ref) as (agent, manager):
            user_id = _message_id(ref, "user")
            await open_thread(manager.store, ref.thread_id, identity=ref.identity,
                              claim_unowned=manager.claim_unowned_threads)
            state = await self._state(agent, manager, ref)
            settled: list[dict[str, Any]] = []
            if not any(m.id == user_id for m in state.history):
                paused = paused_turn(state.stored, state.history)
                if paused is None and (data.user_input is None or data.approve or data.deny):
                    raise _reraised(already_decided(state.stored, data.approve, data.deny,
                                                    ref.thread_id))
                if paused is None:
                    await manager._answer_dangling(state)
                else:
                    turn = await manager._settle(state, paused, data.approve, data.deny,
                                                 moved_on=data.user_input is not None)
                    settled = _finished(turn)
                if data.user_input is not None:
                    await manager._persist(state, Message(role="user", content=data.user_input,
                                                          id=user_id))
                await self._publish(ref, settled)
            limits = manager.limits
            return BeginOutput(count=len(state.history), max_iterations=manager.max_iterations,
                               parallel=manager.processor.parallel,
                               limits={"input_tokens": limits.input_tokens,
                                       "output_tokens": limits.output_tokens,
                                       "tool_calls": limits.tool_calls},
                               settled=settled, stats=state.context.stats.snapshot().to_json())

    @activity.defn(name="agentrt.model_turn")
    async def model_turn(self, data: TurnInput) -> TurnOutput:
        """One model request and its reply stored; a reply an earlier attempt stored is
        taken from the store instead of asked for again."""
        ref = data.ref
        async with self._working(ref) as (agent, manager):
            state = await self._state(agent, manager, ref, _limits(data.limits))
            history = state.history
            if len(history) > data.count and history[data.count].role == "assistant":
                return await self._turn_output(manager, state, data, history[data.count])
            if len(history) != data.count:
                raise ThreadChangedError(
                    ref.thread_id, f"expected {data.count} messages, found {len(history)}")
            state.usage = Usage(**data.usage)
            state.last_prompt, state.sent = data.last_prompt, data.sent
            if manager.context is not None:  # long threads kept under the budget
                state.window = await manager._open_window(state)
            while True:
                request = await manager._request(state)
                if request is None:
                    return TurnOutput(count=data.count, stop_reason="",
                                      usage=Usage().to_json(), text="", calls=[], cut=False,
                                      message_id="", limit=state.limit, sent=state.sent)
                reply: ModelReply | None = None
                try:
                    async for item in manager.model.turn(request, stream=manager.stream,
                                                         logger=state.context.log):
                        if isinstance(item, ModelReply):
                            reply = item
                        elif isinstance(item, TextDelta):
                            await self._publish(ref, [{"type": "text", "text": item.text}])
                except ModelError as exc:
                    if state.window is not None and state.window.overflowed(exc):
                        continue  # too long for the API: re-fitted and sent again
                    raise
                break
            assert reply is not None
            await manager._store_reply(state, reply)
            if state.window is not None:
                await state.window.observe(reply)
            if not reply.content:  # nothing stored (the API refuses it back)
                return TurnOutput(count=len(state.history), stop_reason=reply.stop_reason,
                                  usage=reply.usage.to_json(), text="", calls=[], cut=False,
                                  message_id="", sent=state.sent)
            return await self._turn_output(manager, state, data, state.history[data.count])

    async def _turn_output(self, manager: ThreadManager, state: _RunState, data: TurnInput,
                           reply: Message) -> TurnOutput:
        content = reply.blocks()
        calls = _tool_uses(content)
        stop_reason = str(reply.metadata.get("stop_reason", ""))
        usage = dict(reply.metadata.get("usage") or Usage().to_json())
        if not calls and stop_reason == "max_tokens":
            await self._append_once(manager, state, Message(
                role="user", content=_CONTINUE_AFTER_MAX_TOKENS,
                id=_message_id(data.ref, f"more{data.iteration}")), data.count + 1)
        marked: list[dict[str, Any]] = []
        for block in calls:
            bound = await state.tools.resolve(str(block.get("name")))
            options = (None if isinstance(bound, str)
                       else manager.processor.options_for(bound.spec))
            marked.append({**block, "read_only": options is not None and options.read_only
                           and not options.requires_approval})
        await self._publish(data.ref, [
            {"type": "tool_started", "id": str(b.get("id")), "name": str(b.get("name")),
             "input": dict(b.get("input") or {})} for b in calls])
        if not calls:
            await self._publish(data.ref, [{"type": "turn", "iteration": data.iteration,
                                            "stop_reason": stop_reason, "usage": usage}])
        return TurnOutput(count=len(state.history), stop_reason=stop_reason, usage=usage,
                          text=_text_of(content), calls=marked,
                          cut=bool(calls) and stop_reason == "max_tokens"
                          and content[-1].get("type") == "tool_use",
                          message_id=reply.id, sent=state.sent)

    async def _append_once(self, manager: ThreadManager, state: _RunState, message: Message,
                           count: int) -> None:
        """Store ``message`` at ``count`` unless an earlier attempt did."""
        if any(m.id == message.id for m in state.history):
            return
        await manager.store.append(state.context.run.thread_id, [message],
                                   expected_count=count)
        state.history.append(message)

    @activity.defn(name="agentrt.tool_call")
    async def tool_call(self, data: CallInput) -> CallOutput:
        """One tool call through the agent's pipeline (cache, single-flight, execution);
        a call that requires approval comes back pending, or settled by the agent's
        policy."""
        ref = data.ref
        async with self._working(ref) as (agent, manager):
            state = await self._state(agent, manager, ref)
            pending: list[PendingCall] = []
            block = {k: v for k, v in data.call.items() if k != "read_only"}
            turn = TurnOutcomes([block])
            started = time.monotonic()
            await manager.processor.process(turn, state.context, state.tools,
                                            screen=manager.approvals.screen(
                                                state.context.run, state.context.log, pending))
            outcome = turn.outcomes[0]
            assert outcome is not None
            if outcome is PENDING:
                return CallOutput(outcome=None, duration=time.monotonic() - started,
                                  pending=pending[0].to_json())
            duration = turn.durations[0]
            await self._publish(ref, [_finished_event(block, outcome, duration)])
            return CallOutput(outcome=outcome_json(outcome), duration=duration,
                              executed=state.context.stats.executed)

    @activity.defn(name="agentrt.store_results")
    async def store_results(self, data: ResultsInput) -> int:
        """The turn's results message (once, whatever the attempts); calls answered
        without running (lost with their worker, cut off, over the limit) are reported,
        and a lost side effect's cached reads are forgotten as a resumed thread does."""
        ref = data.ref
        async with self._working(ref) as (agent, manager):
            state = await self._state(agent, manager, ref)
            if any(m.id == data.message_id for m in state.history):
                return len(state.history)
            calls = _tool_uses(state.history[data.count - 1].blocks())
            by_id = {str(c.get("id")): c for c in calls}
            lost = [by_id[str(o["id"])] for o in data.blocks
                    if o.get("skip") == "lost" and str(o["id"]) in by_id]
            if lost:
                await manager.processor.forget_effects(lost, state.context, state.tools)
            blocks: list[ContentBlock] = []
            events: list[dict[str, Any]] = []
            for item in data.blocks:
                outcome = outcome_from(item)
                blocks.append(result_block(str(item["id"]), outcome))
                if "skip" in item:
                    events.append(_finished_event(by_id.get(str(item["id"]), {
                        "id": item["id"], "name": ""}), outcome, 0.0))
            await self._append_once(manager, state, Message(role="user", content=blocks,
                                                            id=data.message_id), data.count)
            await self._publish(ref, [*events, *([data.turn] if data.turn else [])])
            return len(state.history)

    @activity.defn(name="agentrt.pause")
    async def pause(self, data: PauseInput) -> None:
        """Store the paused turn's record (its pending calls and the results of those
        that ran), as the loop does: ``threads show`` and ``resume`` see it."""
        ref = data.ref
        async with self._working(ref) as (agent, manager):
            state = await self._state(agent, manager, ref)
            if paused_turn(state.stored, state.history) is not None:
                return
            turn = TurnOutcomes([{k: v for k, v in c.items() if k != "read_only"}
                                 for c in data.calls])
            turn.outcomes = [PENDING if o is None else outcome_from(o) for o in data.outcomes]
            record = paused_record(data.assistant_id, turn,
                                   [PendingCall(**p) for p in data.pending])
            await manager.store.set_state(ref.thread_id, with_record(state.stored.data, record),
                                          expected_version=state.stored.version)
            await manager.store.release_claim(ref.thread_id, ref.run_id)

    @activity.defn(name="agentrt.settle")
    async def settle(self, data: SettleInput) -> BeginOutput:
        """Finish a paused turn with a person's decisions: approved calls run, denied
        ones are answered, the results stored (the loop's own ``_settle``: an approved
        call caught in a crash is answered "outcome unknown" by the next attempt)."""
        ref = data.ref
        async with self._working(ref) as (agent, manager):
            state = await self._state(agent, manager, ref)
            paused = paused_turn(state.stored, state.history)
            settled: list[dict[str, Any]] = []
            if paused is not None:
                turn = await manager._settle(state, paused, data.approve, data.deny,
                                             moved_on=data.moved_on)
                settled = _finished(turn)
                await self._publish(ref, settled)
            return BeginOutput(count=len(state.history), max_iterations=0, parallel=True,
                               limits={}, settled=settled,
                               stats=state.context.stats.snapshot().to_json())

    @activity.defn(name="agentrt.finish")
    async def finish(self, ref: RunRef) -> None:
        """The run is over: its claim on the thread is given up."""
        _, manager = self._manager(ref)
        try:
            await manager.store.release_claim(ref.thread_id, ref.run_id)
        except AgentRtError as exc:
            raise _reraised(exc) from exc


def _finished_event(block: Mapping[str, Any], outcome: ToolOutcome,
                    duration: float) -> dict[str, Any]:
    return {"type": "tool_finished", "id": str(block.get("id")), "name": str(block.get("name")),
            "is_error": outcome.is_error, "source": outcome.source, "content": outcome.content,
            "duration": duration}


def _finished(turn: TurnOutcomes) -> list[dict[str, Any]]:
    return [_finished_event(b, o, d) for b, o, d in zip(turn.blocks, turn.outcomes,
                                                        turn.durations, strict=True)
            if o is not None and o is not PENDING]

