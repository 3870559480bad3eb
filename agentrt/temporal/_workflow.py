"""The durable run: the loop's decisions as a Temporal workflow.

It holds ids, counts and small decisions only (which calls run together, whether to
go round again, when to pause); every model request, tool call and store write is an
activity (``_activities``). Deterministic: no I/O, no clock but the workflow's.

Tool calls: one activity each. A read-only call is retried (its worker died, it
failed); a side-effecting one gets one attempt: lost with its worker, it is answered
to the model as "outcome unknown", exactly as a resumed thread answers it. With
parallel tool calls, consecutive read-only calls run at once and a side effect runs
alone, in order (the pipeline's own rule).

Approvals: a call that requires approval pauses the run: its record is stored, the
run reports ``approval_required`` to whoever waits (the ``wait_stop`` update), and
the workflow waits for the ``decide`` update with no activity running (a paused run
costs no worker), at most ``approval_timeout``; then undecided calls are denied.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.workflow import HandlerUnfinishedPolicy

with workflow.unsafe.imports_passed_through():
    from ._types import (
        DECIDE,
        WAIT,
        WORKFLOW,
        BeginInput,
        BeginOutput,
        CallInput,
        CallOutput,
        Options,
        PauseInput,
        ResultsInput,
        RunInput,
        RunRef,
        SettleInput,
        TurnInput,
        TurnOutput,
    )

__all__ = ["AgentRunWorkflow"]

_FINAL = frozenset({"end_turn", "stop_sequence", "refusal", "model_context_window_exceeded"})
_NOT_ANSWERED = frozenset({"executed", "rejected", "cancelled", "interrupted", "denied",
                           "pending"})
_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
               "cache_read_input_tokens")
# a store write or the start of a run: retried until it passes (the store dedups)
_STORE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                           maximum_interval=timedelta(seconds=2), maximum_attempts=20,
                           non_retryable_error_types=["ConfigError"])


def _add(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    return {k: total.get(k, 0) + int(part.get(k, 0)) for k in _USAGE_KEYS}


class _Stats:
    def __init__(self) -> None:
        self.tool_calls = self.executed = self.errors = 0
        self.hits: dict[str, int] = {}

    def record(self, source: str, is_error: bool) -> None:
        self.tool_calls += 1
        self.errors += is_error
        if source not in _NOT_ANSWERED:
            self.hits[source] = self.hits.get(source, 0) + 1

    def add(self, data: dict[str, Any]) -> None:
        self.tool_calls += int(data.get("tool_calls", 0))
        self.executed += int(data.get("executed", 0))
        self.errors += int(data.get("errors", 0))
        for name, count in dict(data.get("hits") or {}).items():
            self.hits[name] = self.hits.get(name, 0) + int(count)

    def to_json(self) -> dict[str, Any]:
        return {"tool_calls": self.tool_calls, "executed": self.executed,
                "errors": self.errors, "hits": dict(self.hits)}


@workflow.defn(name=WORKFLOW)
class AgentRunWorkflow:
    def __init__(self) -> None:
        self._stops: list[dict[str, Any]] = []
        self._decision: SettleInput | None = None
        self._paused: list[dict[str, Any]] = []
        # the turn whose calls run now, and their outcomes so far (answered on cancel)
        self._turn: tuple[TurnOutput, dict[str, CallOutput | dict[str, Any]]] | None = None

    # ---- the caller's handles ---------------------------------------------------------

    # the caller falls back on the workflow's result when it ends (failed, cancelled)
    # before the update can answer
    @workflow.update(name=WAIT, unfinished_policy=HandlerUnfinishedPolicy.ABANDON)
    async def wait_stop(self, seen: int) -> dict[str, Any]:
        """The run's next stop after the first ``seen``: paused for approval, or done."""
        await workflow.wait_condition(lambda: len(self._stops) > seen)
        return {"index": len(self._stops), **self._stops[-1]}

    @workflow.update(name=DECIDE, unfinished_policy=HandlerUnfinishedPolicy.ABANDON)
    async def decide(self, approve: list[str], deny: dict[str, str]) -> dict[str, Any]:
        """Decide the paused run's calls; returns its next stop."""
        seen = len(self._stops)
        self._decision = SettleInput(RunRef("", "", ""), list(approve), dict(deny))
        await workflow.wait_condition(lambda: len(self._stops) > seen)
        return {"index": len(self._stops), **self._stops[-1]}

    @decide.validator
    def _check_decide(self, approve: list[str], deny: dict[str, str]) -> None:
        if not self._paused or self._decision is not None:
            raise ApplicationError("this run is not waiting for a decision",
                                   type="ApprovalError")
        ids = {str(p["id"]) for p in self._paused}
        unknown = sorted((set(approve) | set(deny)) - ids)
        if unknown:
            raise ApplicationError(f"calls not pending on this run: {', '.join(unknown)}",
                                   type="ApprovalError")

    # ---- the run ----------------------------------------------------------------------

    @workflow.run
    async def run(self, data: RunInput) -> dict[str, Any]:
        ref, options = data.ref, data.options
        stats = _Stats()
        usage: dict[str, int] = dict.fromkeys(_USAGE_KEYS, 0)
        texts: list[str] = []
        iterations, limit, stop_reason = 0, None, "max_iterations"
        last_prompt = sent = 0
        count = 0
        try:
            begun = await self._store(options, "agentrt.begin", BeginInput(
                ref, data.user_input, list(data.approve), dict(data.deny)), BeginOutput)
            count = begun.count
            stats.add(begun.stats)
            limits = dict(data.limits or begun.limits)
            while iterations < begun.max_iterations:
                turn: TurnOutput = await workflow.execute_activity(
                    "agentrt.model_turn",
                    TurnInput(ref, count, iterations + 1, usage, last_prompt, sent, limits),
                    result_type=TurnOutput,
                    start_to_close_timeout=timedelta(seconds=options.model_timeout),
                    heartbeat_timeout=timedelta(seconds=options.heartbeat_timeout),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(milliseconds=200),
                        maximum_attempts=options.model_attempts,
                        non_retryable_error_types=["ConfigError"]))
                if turn.limit is not None:
                    limit, stop_reason = turn.limit, "usage_limit"
                    break
                iterations += 1
                count, sent = turn.count, turn.sent
                usage = _add(usage, turn.usage)
                last_prompt = sum(int(turn.usage.get(k, 0)) for k in _USAGE_KEYS
                                  if k != "output_tokens")
                texts.append(turn.text)
                if turn.calls:
                    outcomes, limited = await self._run_calls(ref, turn, limits, stats,
                                                              begun.parallel, options)
                    self._turn = None
                    if limited:
                        limit = "tool_calls"
                    pending = [o.pending for o in outcomes.values()
                               if isinstance(o, CallOutput) and o.pending is not None]
                    if pending:
                        count = await self._pause(ref, turn, outcomes, pending, usage,
                                                  texts, iterations, stats, options)
                        self._paused = []
                    else:
                        count = await self._store(options, "agentrt.store_results",
                                                  ResultsInput(
                                                      ref, count, _results_id(ref, iterations),
                                                      _blocks(turn, outcomes),
                                                      _turn_event(turn, iterations)), int)
                        texts.clear()
                if limit is not None:
                    stop_reason = "usage_limit"
                    break
                if not turn.calls and turn.stop_reason in _FINAL:
                    stop_reason = turn.stop_reason
                    break
        except (asyncio.CancelledError, ActivityError, ApplicationError) as exc:
            if not _cancelled(exc):
                await self._finish(ref, options)
                raise
            # cancelled (its activities with it): the turn's calls are answered, those
            # that had not finished as cancelled, so the thread is whole; the claim goes
            if self._turn is not None:
                turn, done = self._turn
                await self._store(options, "agentrt.store_results", ResultsInput(
                    ref, turn.count, _results_id(ref, iterations),
                    _blocks(turn, done, missing={"skip": "cancelled"})), int)
            await self._finish(ref, options)
            raise
        await self._finish(ref, options)
        result = {"text": "".join(texts).strip(), "thread_id": ref.thread_id,
                  "run_id": ref.run_id, "stop_reason": stop_reason, "iterations": iterations,
                  "limit": limit, "pending": [], "usage": usage, "stats": stats.to_json()}
        self._stops.append(result)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _store(self, options: Options, name: str, arg: Any, kind: type[Any]) -> Any:
        return await workflow.execute_activity(
            name, arg, result_type=kind,
            start_to_close_timeout=timedelta(seconds=options.tool_timeout),
            heartbeat_timeout=timedelta(seconds=options.heartbeat_timeout),
            retry_policy=_STORE_RETRY)

    async def _finish(self, ref: RunRef, options: Options) -> None:
        await workflow.execute_activity(
            "agentrt.finish", ref, start_to_close_timeout=timedelta(
                seconds=options.store_timeout), retry_policy=_STORE_RETRY)

    async def _run_calls(self, ref: RunRef, turn: TurnOutput, limits: dict[str, int | None],
                         stats: _Stats, parallel: bool, options: Options,
                         ) -> tuple[dict[str, CallOutput | dict[str, Any]], bool]:
        """Each call's outcome by id: a ``CallOutput``, or a mark for one answered without
        running (``{"skip": "cut" | "limited" | "lost"}``)."""
        calls = turn.calls
        runnable = len(calls) - turn.cut
        bound = limits.get("tool_calls")
        limited = False
        if bound is not None and stats.tool_calls + runnable > bound:
            runnable = max(0, bound - stats.tool_calls)
            limited = True
        outcomes: dict[str, CallOutput | dict[str, Any]] = {}
        self._turn = (turn, outcomes)
        for index in range(runnable, len(calls)):
            skip = "cut" if turn.cut and index == len(calls) - 1 else "limited"
            outcomes[str(calls[index]["id"])] = {"skip": skip}
            stats.record("rejected", True)
        group: list[dict[str, Any]] = []
        for call in calls[:runnable]:
            if parallel and call.get("read_only"):
                group.append(call)
                continue
            await self._run_group(ref, turn, group, outcomes, stats, options)
            group = []
            await self._run_group(ref, turn, [call], outcomes, stats, options)
        await self._run_group(ref, turn, group, outcomes, stats, options)
        return {str(c["id"]): outcomes[str(c["id"])] for c in calls}, limited

    async def _run_group(self, ref: RunRef, turn: TurnOutput, calls: list[dict[str, Any]],
                         outcomes: dict[str, CallOutput | dict[str, Any]], stats: _Stats,
                         options: Options) -> None:
        if not calls:
            return
        done = await asyncio.gather(*(self._call(ref, turn, c, options) for c in calls))
        for call, outcome in zip(calls, done, strict=True):
            outcomes[str(call["id"])] = outcome
            if isinstance(outcome, CallOutput):
                if outcome.outcome is not None:
                    stats.record(str(outcome.outcome["source"]),
                                 bool(outcome.outcome["is_error"]))
                stats.executed += outcome.executed
            else:
                stats.record("interrupted", True)

    async def _call(self, ref: RunRef, turn: TurnOutput, call: dict[str, Any],
                    options: Options) -> CallOutput | dict[str, Any]:
        read_only = bool(call.get("read_only"))
        try:
            output: CallOutput = await workflow.execute_activity(
                "agentrt.tool_call", CallInput(ref, turn.count, call), result_type=CallOutput,
                start_to_close_timeout=timedelta(seconds=options.tool_timeout),
                heartbeat_timeout=timedelta(seconds=options.heartbeat_timeout),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=200),
                    maximum_attempts=options.read_only_attempts if read_only else 1,
                    non_retryable_error_types=["ConfigError"]))
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError):  # the run is being cancelled
                raise
            # the worker died or the call failed outside the pipeline (which answers a
            # tool's own errors): a side effect may or may not have happened
            workflow.logger.warning("agentrt call %s lost: %s", call.get("id"), exc.cause)
            return {"skip": "lost"}
        return output

    async def _pause(self, ref: RunRef, turn: TurnOutput,
                     outcomes: dict[str, CallOutput | dict[str, Any]],
                     pending: list[dict[str, Any]], usage: dict[str, int], texts: list[str],
                     iterations: int, stats: _Stats, options: Options) -> int:
        """Store the paused turn, report the stop, wait for a decision (or the timeout:
        then undecided calls are denied), settle it. Returns the thread's length."""
        recorded: list[dict[str, Any] | None] = []
        for call in turn.calls:
            outcome = outcomes[str(call["id"])]
            if isinstance(outcome, CallOutput):
                recorded.append(outcome.outcome)
            else:
                recorded.append(outcome)
        await self._store(options, "agentrt.pause", PauseInput(
            ref, turn.message_id, turn.calls, recorded, pending), type(None))
        self._paused = pending
        self._stops.append({"text": "".join(texts).strip(), "thread_id": ref.thread_id,
                            "run_id": ref.run_id, "stop_reason": "approval_required",
                            "iterations": iterations, "limit": None, "pending": pending,
                            "usage": usage, "stats": stats.to_json()})
        try:
            await workflow.wait_condition(lambda: self._decision is not None,
                                          timeout=timedelta(seconds=options.approval_timeout))
        except TimeoutError:
            workflow.logger.info("agentrt run %s: no decision in time", ref.run_id)
        decision = self._decision or SettleInput(ref, [], {}, moved_on=True)
        self._decision = None
        self._paused = []
        settled: BeginOutput = await self._store(options, "agentrt.settle", SettleInput(
            ref, decision.approve, decision.deny, moved_on=decision.moved_on), BeginOutput)
        stats.add(settled.stats)
        texts.clear()
        return settled.count


def _cancelled(exc: BaseException) -> bool:
    """The run was cancelled: here, or in the activity it was waiting for."""
    return isinstance(exc, asyncio.CancelledError) or (
        isinstance(exc, ActivityError) and isinstance(exc.cause, CancelledError))


def _results_id(ref: RunRef, iteration: int) -> str:
    return f"umsg_{ref.run_id.removeprefix('run_')}_r{iteration}"


def _turn_event(turn: TurnOutput, iteration: int) -> dict[str, Any]:
    return {"type": "turn", "iteration": iteration, "stop_reason": turn.stop_reason,
            "usage": turn.usage}


def _blocks(turn: TurnOutput, outcomes: dict[str, CallOutput | dict[str, Any]],
            missing: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for call in turn.calls:
        outcome = outcomes.get(str(call["id"]), missing)
        data = outcome.outcome if isinstance(outcome, CallOutput) else outcome
        if data is None:  # pending, or not finished when the run was cancelled
            data = missing or {"skip": "cancelled"}
        blocks.append({"id": str(call["id"]), **data})
    return blocks
