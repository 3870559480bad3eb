"""ThreadManager: the message loop, as typed steps over one thread.

It sits above the stores (``agentrt.thread``, storage only), the model client
(``agentrt.llm``) and the tool-call pipeline (``agentrt.pipeline``), and below the
``Agent`` shell that builds it.

Each step persists before the next depends on it: the user message before the
model is asked, the assistant message before any tool result is stored and before
any side effect runs, the tool results before the model is asked again. So at
every ``yield`` the stored thread is a valid conversation, and a run cancelled or
crashed anywhere resumes from it. Read-only calls may start while the reply still
streams (eager execution, ``agentrt._eager``, on by default when streaming); their
results are stored only with the others, after the assistant message.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ._approval_gate import ApprovalGate, paused_record
from ._approvals import PausedTurn, PendingCall, already_decided, paused_turn, with_record
from ._context import RunContext
from ._eager import EagerTurn
from ._errors import ModelError, ThreadNotFoundError
from ._events import (
    ApprovalRequired,
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from ._result import RunResult
from .context import open_window
from .llm._model import ModelReply, ToolUseComplete
from .llm._usage import Usage, UsageLimits, estimate_tokens
from .log import get_logger
from .pipeline._types import CallContext, ToolOutcome
from .pipeline.processor import PENDING, ResponseProcessor, TurnOutcomes, result_block
from .thread._claims import Claim, ThreadClaims
from .thread._messages import ContentBlock, Message, ThreadState
from .thread._owners import open_thread

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
    from contextlib import AbstractAsyncContextManager, AbstractContextManager

    from anyio.abc import TaskGroup
    from opentelemetry.trace import Span

    from ._approvals import ApprovalPolicy
    from ._output import OutputCheck
    from .context import ContextPolicy, ThreadWindow
    from .llm._model import Model
    from .llm._request import RequestBuilder
    from .llm._usage import Limit
    from .pipeline._types import ToolCall
    from .telemetry import Telemetry
    from .thread._store import ThreadStore
    from .tools._provider import RunTools, ToolProvider

__all__ = ["ThreadManager"]

log = get_logger("agentrt.loop")

_CONTINUE_AFTER_MAX_TOKENS = (
    "Your previous reply was cut off at the output token limit. "
    "Continue exactly where it stopped."
)
_CANCELLED = ToolOutcome("The run was cancelled before this call finished; its outcome is "
                         "unknown.", is_error=True, source="cancelled")
_INTERRUPTED = ToolOutcome("An earlier run stopped before this call's result was stored; its "
                           "outcome is unknown. Check before repeating it.", is_error=True,
                           source="interrupted")
_CUT_OFF = ToolOutcome("This call was cut off at the output token limit (max_tokens), so its "
                       "input may be incomplete; it was not run. Call it again, with shorter "
                       "input if need be.", is_error=True, source="rejected")
_LIMITED = ToolOutcome("This call was not run: the run reached its limit on tool calls.",
                       is_error=True, source="rejected")
_NO_SPAN = nullcontext()
_FINAL = frozenset({"end_turn", "stop_sequence", "refusal", "model_context_window_exceeded"})


def _tool_uses(content: Sequence[ContentBlock]) -> list[ContentBlock]:
    return [block for block in content if block.get("type") == "tool_use"]


def _text_of(content: Sequence[ContentBlock]) -> str:
    return "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")


def _merge(turn: TurnOutcomes, part: TurnOutcomes) -> None:
    """Copy the outcomes of ``part`` (the first calls of ``turn``) into ``turn``."""
    if part is not turn:
        size = len(part.blocks)
        turn.outcomes[:size] = part.outcomes
        turn.durations[:size] = part.durations


@dataclass(slots=True)
class _RunState:
    context: CallContext
    tools: RunTools
    history: list[Message]
    limits: UsageLimits
    usage: Usage = field(default_factory=Usage)
    texts: list[str] = field(default_factory=list)
    iterations: int = 0
    limit: Limit | None = None
    last_prompt: int = 0  # prompt tokens of the last request
    sent: int = 0  # messages of the history the last request carried
    claim: Claim | None = None  # the run's hold on its thread
    stored: ThreadState = field(default_factory=ThreadState)  # the thread's state, as last seen
    pending: list[PendingCall] = field(default_factory=list)  # calls waiting for a person
    window: ThreadWindow | None = None  # what requests show of the thread (agentrt.context)


async def _run_approved(call: ToolCall) -> ToolOutcome | None:
    return None  # a person approved it: it runs


class ThreadManager:
    def __init__(
        self,
        *,
        store: ThreadStore,
        model: Model,
        builder: RequestBuilder,
        processor: ResponseProcessor,
        tools: ToolProvider,
        max_iterations: int,
        stream: bool = True,
        limits: UsageLimits | None = None,
        claims: ThreadClaims | None = None,
        claim_unowned_threads: bool = False,
        approval_policy: ApprovalPolicy | None = None,
        approval_timeout: float = 7 * 24 * 3600,
        telemetry: Telemetry | None = None,
        eager_tools: bool = True,
        background: Callable[[], TaskGroup | None] | None = None,
        context: ContextPolicy | None = None,
    ) -> None:
        """``claims``: share the runtime's, so that runs of all its agents on one thread
        queue together (one is made for this manager otherwise). ``approval_policy``
        settles calls that require approval before a person is asked; a call left to a
        person expires after ``approval_timeout`` seconds. ``telemetry``: the runtime's
        spans and metrics (None: OpenTelemetry off, nothing of it is touched).
        ``eager_tools``: when streaming, start read-only calls as their blocks complete
        (``agentrt._eager``); ``background``: the runtime's task group while it is
        entered, where they run. ``context``: keeps each request under a token budget
        (``agentrt.context``; None sends whole threads)."""
        self.approvals = ApprovalGate(approval_policy, approval_timeout)
        self.store = store
        self.claims = claims if claims is not None else ThreadClaims(store)
        self.claim_unowned_threads = claim_unowned_threads
        self.model = model
        self.builder = builder
        self.processor = processor
        self.tools = tools
        self.max_iterations = max_iterations
        self.stream = stream
        self.eager_tools = eager_tools
        self.background = background
        self.limits = limits or UsageLimits()
        self.telemetry = telemetry
        self.context = context

    def _current(self, span: Span | None) -> AbstractContextManager[None]:
        """The run's span current around a step with no ``yield`` inside (its tool calls'
        and JIT activations' spans are its children)."""
        return _NO_SPAN if span is None or self.telemetry is None else self.telemetry.current(span)

    async def run(
        self,
        user_input: str | list[ContentBlock] | None,
        *,
        thread_id: str | None = None,
        agent: str = "agent",
        identity: Mapping[str, str] | None = None,
        deps: Mapping[str, Any] | None = None,
        limits: UsageLimits | None = None,
        approve: Sequence[str] = (),
        deny: Mapping[str, str] | None = None,
        output: OutputCheck[Any] | None = None,
    ) -> AsyncGenerator[RunEvent, None]:
        """Events of one run; the last is always ``RunFinished`` unless an error is raised.

        Steps, each persisting what the next depends on: open the thread (replay what a
        stored thread teaches the pipeline and the tools, answer calls a crash left
        dangling, store the user's message); then per turn ask the model, store its
        reply, run its tool calls and store their results, and decide whether to go on.

        ``user_input`` None resumes a paused thread: ``approve`` and ``deny`` decide its
        pending calls (see :mod:`agentrt._approvals`); with a message, pending calls
        left undecided are denied ("the user moved on").

        ``output``: a typed run (:mod:`agentrt._output`): its requests ask for the JSON
        answer, and the final one is validated (the model told what failed and asked
        again while retries last).
        """
        if user_input is None and (
                thread_id is None or await self.store.get_thread(thread_id) is None):
            raise ThreadNotFoundError(thread_id or "")
        # the owner first: a foreign identity must not even hold the thread up (nor decide)
        info = await open_thread(self.store, thread_id, identity=identity,
                                 claim_unowned=self.claim_unowned_threads)
        run = RunContext(thread_id=info.id, run_id=f"run_{os.urandom(8).hex()}", agent=agent,
                         identity=dict(identity or {}), deps=dict(deps or {}))
        telemetry = self.telemetry
        span = None if telemetry is None else telemetry.start_run(agent, run.thread_id,
                                                                   run.run_id)
        try:
            # One run per thread, for the whole run (a second one waits, or is refused with
            # ThreadBusyError); every append checks the thread is still as this run read it.
            async with self.claims.hold(run.thread_id, run.run_id) as claim:
                with self._current(span):
                    state, settled = await self._open(run, claim, user_input,
                                                      limits or self.limits, approve, deny or {},
                                                      new=thread_id is None)
                log = state.context.log
                for block, outcome, duration in zip(settled.blocks, settled.outcomes,
                                                    settled.durations, strict=True):
                    assert outcome is not None
                    yield ToolCallFinished(str(block.get("id")), str(block.get("name")),
                                           outcome.is_error, outcome.source, outcome.content,
                                           duration)
                stop_reason = "max_iterations"
                while state.iterations < self.max_iterations:
                    request = await self._request(state)
                    if request is None:
                        stop_reason = "usage_limit"
                        break
                    state.iterations += 1
                    if output is not None:
                        output.apply(request)
                        output.start_turn()
                    async with self._eager_turn(state, span) as eager:
                        reply: ModelReply | None = None
                        items = (self.model.turn(request, stream=self.stream, logger=log)
                                 if telemetry is None else
                                 self._traced_turn(telemetry, request, log, span))
                        try:
                            async for item in items if eager is None else eager.relay(items):
                                if isinstance(item, ModelReply):
                                    reply = item
                                elif not isinstance(item, ToolUseComplete):
                                    yield item  # text; with eager tools, the early calls' events
                                    if output is not None and isinstance(item, TextDelta) and (
                                            partial := output.partial(item.text)) is not None:
                                        yield partial
                        except ModelError as exc:
                            if state.window is not None and state.window.overflowed(exc):
                                state.iterations -= 1  # too long: re-fitted and sent again
                                continue
                            explained = self._explained(exc, request)
                            if explained is exc:
                                raise
                            raise explained from exc
                        if output is not None and (last := output.flush()) is not None:
                            yield last  # a parse the deltas skipped: the whole answer
                        assert reply is not None
                        await self._store_reply(state, reply)
                        if state.window is not None:
                            await state.window.observe(reply)

                        calls = _tool_uses(reply.content)
                        if calls:
                            for block in calls:
                                if eager is None or str(block.get("id")) not in eager.started:
                                    yield ToolCallStarted(str(block.get("id")),
                                                          str(block.get("name")),
                                                          dict(block.get("input") or {}))
                            with self._current(span):
                                turn = await self._run_tools(calls, state, cut=(
                                    # max_tokens ending on a tool_use: that call's input may be
                                    # truncated (a streamed partial JSON still parses): not run.
                                    reply.stop_reason == "max_tokens"
                                    and reply.content[-1].get("type") == "tool_use"))
                            for block, outcome, duration in zip(
                                    turn.blocks, turn.outcomes, turn.durations, strict=True):
                                assert outcome is not None
                                if outcome is PENDING:
                                    continue
                                if eager is None or str(block.get("id")) not in eager.reported:
                                    yield ToolCallFinished(str(block.get("id")),
                                                           str(block.get("name")),
                                                           outcome.is_error, outcome.source,
                                                           outcome.content, duration)
                        elif reply.stop_reason == "max_tokens":
                            await self._persist(state, Message(role="user",
                                                               content=_CONTINUE_AFTER_MAX_TOKENS))
                    yield TurnFinished(state.iterations, reply.stop_reason, reply.usage)
                    if state.pending:
                        stop_reason = "approval_required"
                        log.info("run.approval_required", calls=[p.id for p in state.pending],
                                 functions=[p.name for p in state.pending])
                        yield ApprovalRequired(tuple(state.pending))
                        break
                    if state.limit is not None:
                        stop_reason = "usage_limit"
                        break
                    if not calls and reply.stop_reason in _FINAL:
                        retry = None if output is None else output.check(
                            reply, _text_of(reply.content).strip(), run.thread_id)
                        if retry is not None:  # the model is told what failed; asked again
                            await self._persist(state, retry)
                            state.texts.clear()
                            continue
                        stop_reason = reply.stop_reason
                        break
                    # tool_use, pause_turn (resend unchanged) and max_tokens go round again

                result = RunResult(text="".join(state.texts).strip(),
                                   thread_id=run.thread_id, run_id=run.run_id,
                                   stop_reason=stop_reason, usage=state.usage,
                                   stats=state.context.stats.snapshot(),
                                   iterations=state.iterations, limit=state.limit,
                                   pending=tuple(state.pending),
                                   output=None if output is None else output.value)
                if stop_reason in ("max_iterations", "usage_limit"):
                    log.warning("run.stopped", stop_reason=stop_reason, limit=state.limit,
                                iterations=state.iterations, max_iterations=self.max_iterations,
                                **state.usage.to_json())
                log.info("run.finished", stop_reason=stop_reason, iterations=state.iterations,
                         **result.stats.to_json())
        except BaseException as exc:
            if telemetry is not None:
                telemetry.end_run(span, None, exc)
            raise
        if telemetry is not None:
            telemetry.end_run(span, result)
        # released first: a run started on this event finds the thread free
        yield RunFinished(result)

    async def _traced_turn(self, telemetry: Telemetry, request: dict[str, Any], log: Any,
                           run_span: Span | None
                           ) -> AsyncGenerator[TextDelta | ToolUseComplete | ModelReply, None]:
        """``model.turn`` in its ``chat`` span, current while the model's code runs (so an
        SDK or HTTP span nests under it, or under the run's when the SDK makes the model
        span), never across a ``yield``; the request's duration and tokens measured."""
        chat = telemetry.start_chat(request, self.stream, run_span)
        inside = chat or run_span
        started = time.monotonic()
        first: float | None = None
        reply: ModelReply | None = None
        items = self.model.turn(request, stream=self.stream, logger=log)
        try:
            while True:
                with telemetry.current(inside):
                    try:
                        item = await anext(items)
                    except StopAsyncIteration:
                        break
                if isinstance(item, TextDelta):
                    if first is None:
                        first = time.monotonic() - started
                elif isinstance(item, ModelReply):
                    reply = item
                yield item
        except BaseException as exc:
            telemetry.fail_chat(chat, request, exc, time.monotonic() - started)
            raise
        finally:
            aclose = getattr(items, "aclose", None)  # a generator: its finally blocks now
            if aclose is not None:
                await aclose()
        assert reply is not None
        telemetry.end_chat(chat, request, reply, time.monotonic() - started,
                           first if self.stream else None)

    async def _open(self, run: RunContext, claim: Claim,
                    user_input: str | list[ContentBlock] | None, limits: UsageLimits,
                    approve: Sequence[str], deny: Mapping[str, str], *, new: bool = False,
                    ) -> tuple[_RunState, TurnOutcomes]:
        """The run's state, its thread brought up to date (a paused turn settled with the
        caller's decisions) and the user's message stored; and the calls settled. ``new``:
        the thread was created for this run just now, so nothing is stored in it to read."""
        if new:
            history: list[Message] = []
            stored = ThreadState()
        else:
            history = await self.store.messages(run.thread_id)
            stored = await self.store.get_state(run.thread_id)
        paused = paused_turn(stored, history)
        if paused is None and (user_input is None or approve or deny):
            raise already_decided(stored, approve, deny, run.thread_id)
        tools = await self.tools.open_run(run, history)
        bound = log.bind(thread_id=run.thread_id, run_id=run.run_id, agent=run.agent)
        state = _RunState(CallContext(run, log=bound, telemetry=self.telemetry), tools, history,
                          limits, claim=claim, stored=stored)
        await self.processor.replay(history, state.context, tools)
        settled = TurnOutcomes(())
        if paused is None:
            await self._answer_dangling(state)
        else:
            settled = await self._settle(state, paused, approve, deny,
                                         moved_on=user_input is not None)
        if self.context is not None:
            state.window = await self._open_window(state, new=new)
        bound.info("run.started", messages=len(history))
        if user_input is not None:
            await self._persist(state, Message(role="user", content=user_input))
            for message in await tools.opening(user_input):  # deferred tools: searched first
                await self._persist(state, message)
        return state, settled

    async def _set_state(self, state: _RunState, data: dict[str, Any]) -> None:
        state.stored = await self.store.set_state(state.context.run.thread_id, data,
                                                  expected_version=state.stored.version)

    async def _settle(self, state: _RunState, paused: PausedTurn, approve: Sequence[str],
                      deny: Mapping[str, str], *, moved_on: bool) -> TurnOutcomes:
        """Finish a paused turn: the decisions are stored before any approved call runs
        (so a crash during one leaves it marked, and the next run says its outcome is
        unknown instead of running it again); approved calls run through the pipeline,
        denied ones are answered with the reason; then the turn's results are stored
        whole and the record cleared. Returns the calls settled here."""
        ctx = state.context
        started, stale = paused.decide(approve, deny, thread_id=ctx.run.thread_id,
                                       moved_on=moved_on)
        await self._set_state(state, with_record(state.stored.data, paused))
        calls = _tool_uses(state.history[-1].blocks())
        by_id = {str(c.get("id")): c for c in calls}
        outcomes: dict[str, ToolOutcome] = {}
        for call in paused.calls:
            if call.get("status") == "denied":
                outcomes[str(call["id"])] = ToolOutcome(
                    f"A person denied this call; it was not run. Reason: {call.get('note')}",
                    is_error=True, source="denied")
        for call_id in stale:
            outcomes[call_id] = _INTERRUPTED
        for outcome in outcomes.values():
            ctx.stats.record(outcome)
        ctx.log.info("run.approvals_decided", approved=started, stale=stale,
                     denied=sorted(set(outcomes) - set(stale)))
        if stale:
            await self.processor.forget_effects([by_id[i] for i in stale if i in by_id], ctx,
                                                state.tools)
        approved = TurnOutcomes([by_id[i] for i in started if i in by_id])

        def content() -> list[ContentBlock]:
            outcomes.update({str(b.get("id")): o for b, o in zip(
                approved.blocks, approved.outcomes, strict=True) if o is not None})
            return [paused.results.get(i) or result_block(i, outcomes.get(i, _CANCELLED))
                    for i in by_id]

        try:
            await self.processor.process(approved, ctx, state.tools, screen=_run_approved)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._persist(state, Message(role="user", content=content()))
            raise
        await self._persist(state, Message(role="user", content=content()))
        await self._set_state(state, with_record(state.stored.data, None,
                                                 decided=paused.decisions()))
        if paused.results:  # what the calls that ran at the pause taught the tools (JIT)
            state.tools = await self.tools.open_run(ctx.run, state.history)
        await self.processor.replay(state.history[-2:], ctx, state.tools)
        settled = TurnOutcomes([by_id[i] for i in outcomes if i in by_id])
        settled.outcomes = [outcomes[str(b.get("id"))] for b in settled.blocks]
        return settled

    def _explained(self, error: ModelError, request: dict[str, Any]) -> ModelError:
        """A 404 ``not_found_error`` names the model and what chose it: the likely cause
        is a misspelled or retired model name."""
        if error.status_code != 404 or error.error_type != "not_found_error":
            return error
        chosen_by = self.builder.model_origin
        origin = f", set by {chosen_by()}" if chosen_by is not None else ""
        return ModelError(f"{error} (the model {request['model']!r}{origin}: is the name "
                          "right, and available to this API key?)", status_code=404,
                          error_type=error.error_type, request_id=error.request_id)

    def _eager_turn(self, state: _RunState, span: Span | None
                    ) -> AbstractAsyncContextManager[EagerTurn | None]:
        """The turn's eager execution (None when off: not streaming, or turned off)."""
        if not (self.stream and self.eager_tools):
            return nullcontext()
        return EagerTurn(self.processor, state.context, state.tools,
                         tool_calls=state.limits.tool_calls,
                         group=self.background() if self.background is not None else None,
                         context=lambda: self._current(span))

    async def _open_window(self, state: _RunState, *, new: bool = False) -> ThreadWindow:
        assert self.context is not None

        async def forget(blocks: list[ContentBlock]) -> None:
            await self.processor.forget_results(blocks, state.context, state.tools)

        def add_usage(usage: Usage) -> None:  # a summary request's, counted in the run's
            state.usage += usage

        return await open_window(self.context, model=self.model, model_name=self.builder.model,
                                 max_tokens=self.builder.max_tokens, store=self.store,
                                 thread_id=state.context.run.thread_id, history=state.history,
                                 forget=forget, add_usage=add_usage, log=state.context.log,
                                 new_thread=new)

    async def _request(self, state: _RunState) -> dict[str, Any] | None:
        """The next request, or None when sending it would go past a usage limit."""
        definitions = state.tools.definitions()
        if state.window is None:
            request = self.builder.build(definitions, state.history)
        else:  # kept under the context budget (agentrt.context)
            request = await state.window.request(
                state.history, lambda messages: self.builder.build(definitions, messages))
        limits = state.limits
        if not limits.bounded:
            return request
        if limits.output_tokens is not None:
            left = limits.output_tokens - state.usage.output_tokens
            if left <= 0:
                state.limit = "output_tokens"
                return None
            request["max_tokens"] = min(request["max_tokens"], left)
        if limits.input_tokens is not None:
            added = [m.to_param() for m in state.history[state.sent:]]
            prompt = (state.last_prompt + estimate_tokens(added) if state.last_prompt
                      else estimate_tokens(request))
            if state.usage.prompt_tokens + prompt > limits.input_tokens:
                state.limit = "input_tokens"
                return None
        state.sent = len(state.history)
        return request

    async def _store_reply(self, state: _RunState, reply: ModelReply) -> None:
        state.usage += reply.usage
        state.last_prompt = reply.usage.prompt_tokens
        if reply.content:  # the API refuses an empty assistant message back
            await self._persist(state, Message(
                role="assistant", content=reply.content, id=reply.id,
                metadata={"stop_reason": reply.stop_reason, "model": reply.model,
                          "usage": reply.usage.to_json(),
                          # what the API's context editing cleared, as it reported it
                          **({"context_management": reply.context} if reply.context else {})}))
        state.texts.append(_text_of(reply.content))

    async def _persist(self, state: _RunState, message: Message) -> None:
        # expected_count: a run that lost its claim (stalled past its lease) fails with
        # ThreadChangedError instead of interleaving with the run that took over
        await self.store.append(state.context.run.thread_id, [message],
                                expected_count=len(state.history))
        state.history.append(message)
        if state.claim is not None:
            await state.claim.refresh()

    async def _run_tools(self, calls: list[ContentBlock], state: _RunState, *,
                         cut: bool = False) -> TurnOutcomes:
        """Runs the calls and stores their results; on cancellation, stores what finished
        before re-raising. Calls that do not run are answered with why: the last one when
        ``cut``, and those past the run's ``tool_calls`` limit."""
        runnable = len(calls) - cut
        bound = state.limits.tool_calls
        if bound is not None and state.context.stats.tool_calls + runnable > bound:
            runnable = max(0, bound - state.context.stats.tool_calls)
            state.limit = "tool_calls"
        turn = TurnOutcomes(calls)
        ran = TurnOutcomes(calls[:runnable]) if runnable < len(calls) else turn
        for index in range(runnable, len(calls)):
            skipped = _CUT_OFF if cut and index == len(calls) - 1 else _LIMITED
            turn.outcomes[index] = skipped
            state.context.stats.record(skipped)
        try:
            await self.processor.process(ran, state.context, state.tools,
                                         screen=self.approvals.screen(
                                             state.context.run, state.context.log,
                                             state.pending))
        except anyio.get_cancelled_exc_class():
            _merge(turn, ran)
            state.pending.clear()  # answered as cancelled below: nothing waits
            with anyio.CancelScope(shield=True):
                await self._persist(state, Message(role="user",
                                                   content=turn.result_blocks(_CANCELLED)))
            raise
        _merge(turn, ran)
        if state.pending:
            await self._set_state(state, with_record(state.stored.data, paused_record(
                state.history[-1].id, turn, state.pending)))
            return turn
        await self._persist(state, Message(role="user", content=turn.result_blocks(_CANCELLED)))
        state.texts.clear()
        return turn

    async def _answer_dangling(self, state: _RunState) -> None:
        """A thread whose last message asks for tools was cut off before their results
        were stored. Read-only calls are safe to run again; a side-effecting one may
        already have happened, so the model is told its outcome is unknown."""
        history = state.history
        if not history or history[-1].role != "assistant":
            return
        calls = _tool_uses(history[-1].blocks())
        if not calls:
            return
        safe: list[ContentBlock] = []
        unknown: list[ContentBlock] = []
        for call in calls:
            bound = await state.tools.resolve(str(call.get("name")))
            options = None if isinstance(bound, str) else self.processor.options_for(bound.spec)
            rerun = options is not None and options.read_only and not options.requires_approval
            (safe if rerun else unknown).append(call)
        # first, so that the reads run again below are not answered from before them
        await self.processor.forget_effects(unknown, state.context, state.tools)
        turn = TurnOutcomes(safe)
        await self.processor.process(turn, state.context, state.tools)
        done = {str(b.get("id")): o for b, o in zip(turn.blocks, turn.outcomes, strict=True)}
        blocks = TurnOutcomes(calls)
        blocks.outcomes = [done.get(str(c.get("id"))) for c in calls]
        state.context.log.warning("run.resumed_dangling_calls", rerun=len(safe),
                                  unknown=len(unknown))
        await self._persist(state, Message(role="user",
                                           content=blocks.result_blocks(_INTERRUPTED)))
        # the memo was fed before these answers existed: give it the reads just run
        await self.processor.replay(history[-2:], state.context, state.tools)
