"""ThreadManager: the message loop, as typed steps over one thread.

Each step persists before the next depends on it: the user message before the
model is asked, the assistant message before any tool runs, the tool results
before the model is asked again. So at every ``yield`` the stored thread is a
valid conversation, and a run cancelled or crashed anywhere resumes from it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from .._context import RunContext
from .._events import (
    RunEvent,
    RunFinished,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
)
from .._result import RunResult
from ..llm._usage import Usage
from ..log import get_logger
from ..pipeline._types import CallContext, StatsRecorder, ToolOutcome
from ..pipeline.processor import ResponseProcessor, TurnOutcomes
from ._messages import ContentBlock, Message

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping, Sequence

    from ..llm._model import Model, ModelReply
    from ..llm._request import RequestBuilder
    from ..tools._provider import RunTools, ToolProvider
    from ._store import ThreadStore

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
    usage: Usage
    texts: list[str]
    iterations: int = 0


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
    ) -> None:
        self.store = store
        self.model = model
        self.builder = builder
        self.processor = processor
        self.tools = tools
        self.max_iterations = max_iterations
        self.stream = stream

    async def run(
        self,
        user_input: str | list[ContentBlock],
        *,
        thread_id: str | None = None,
        agent: str = "agent",
        identity: Mapping[str, str] | None = None,
        deps: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[RunEvent, None]:
        """Events of one run; the last is always ``RunFinished`` unless an error is raised."""
        info = await self.store.create_thread(thread_id, exist_ok=True)
        run = RunContext(thread_id=info.id, run_id=f"run_{uuid.uuid4().hex[:16]}", agent=agent,
                         identity=dict(identity or {}), deps=dict(deps or {}))
        history = await self.store.messages(run.thread_id)
        tools = await self.tools.open_run(run, history)
        bound = log.bind(thread_id=run.thread_id, run_id=run.run_id, agent=agent)
        state = _RunState(CallContext(run, StatsRecorder(), log=bound), tools, Usage(), [])
        await self.processor.replay(history, state.context, tools)
        await self._answer_dangling(history, state)
        await self._persist(state, history, Message(role="user", content=user_input))
        bound.info("run.started", messages=len(history))

        stop_reason = "max_iterations"
        while state.iterations < self.max_iterations:
            state.iterations += 1
            reply: ModelReply | None = None
            request = self.builder.build(tools.definitions(), history)
            async for item in self.model.turn(request, stream=self.stream, logger=bound):
                if isinstance(item, TextDelta):
                    yield item
                else:
                    reply = item
            assert reply is not None
            state.usage += reply.usage
            if reply.content:
                await self._persist(state, history, Message(
                    role="assistant", content=reply.content, id=reply.id,
                    metadata={"stop_reason": reply.stop_reason, "model": reply.model,
                              "usage": reply.usage.to_json()}))
            state.texts.append(_text_of(reply.content))

            calls = _tool_uses(reply.content)
            if calls:
                for block in calls:
                    yield ToolCallStarted(str(block.get("id")), str(block.get("name")),
                                          dict(block.get("input") or {}))
                # max_tokens ending on a tool_use: that call's input may be truncated
                # (a streamed partial JSON still parses), so it must not run.
                cut = (reply.stop_reason == "max_tokens"
                       and reply.content[-1].get("type") == "tool_use")
                turn = await self._run_tools(calls, history, state, cut=cut)
                for block, outcome, duration in zip(
                        turn.blocks, turn.outcomes, turn.durations, strict=True):
                    assert outcome is not None
                    yield ToolCallFinished(str(block.get("id")), str(block.get("name")),
                                           outcome.is_error, outcome.source, outcome.content,
                                           duration)
            elif reply.stop_reason == "max_tokens":
                await self._persist(state, history, Message(role="user",
                                                     content=_CONTINUE_AFTER_MAX_TOKENS))
            yield TurnFinished(state.iterations, reply.stop_reason, reply.usage)
            if not calls and reply.stop_reason in _FINAL:
                stop_reason = reply.stop_reason
                break
            # tool_use, pause_turn (resend unchanged) and max_tokens go round again

        result = RunResult(text="".join(state.texts).strip(), thread_id=run.thread_id,
                           run_id=run.run_id, stop_reason=stop_reason, usage=state.usage,
                           stats=state.context.stats.snapshot(), iterations=state.iterations)
        bound.info("run.finished", stop_reason=stop_reason, iterations=state.iterations,
                   **result.stats.to_json())
        yield RunFinished(result)

    async def _persist(self, state: _RunState, history: list[Message], message: Message) -> None:
        await self.store.append(state.context.run.thread_id, [message])
        history.append(message)

    async def _run_tools(self, calls: list[ContentBlock], history: list[Message],
                         state: _RunState, *, cut: bool = False) -> TurnOutcomes:
        """Runs the calls (all but the last when ``cut``: it is answered with an error);
        on cancellation, stores what finished before re-raising."""
        turn = TurnOutcomes(calls)
        runnable = TurnOutcomes(calls[:-1]) if cut else turn
        if cut:
            turn.outcomes[-1] = _CUT_OFF
            state.context.stats.record(_CUT_OFF)
        try:
            await self.processor.process(runnable, state.context, state.tools)
        except anyio.get_cancelled_exc_class():
            _merge(turn, runnable)
            with anyio.CancelScope(shield=True):
                await self._persist(state, history, Message(role="user",
                                                     content=turn.result_blocks(_CANCELLED)))
            raise
        _merge(turn, runnable)
        await self._persist(state, history,
                            Message(role="user", content=turn.result_blocks(_CANCELLED)))
        state.texts.clear()
        return turn

    async def _answer_dangling(self, history: list[Message], state: _RunState) -> None:
        """A thread whose last message asks for tools was cut off before their results
        were stored. Read-only calls are safe to run again; a side-effecting one may
        already have happened, so the model is told its outcome is unknown."""
        if not history or history[-1].role != "assistant":
            return
        calls = _tool_uses(history[-1].blocks())
        if not calls:
            return
        safe: list[ContentBlock] = []
        unknown: list[ContentBlock] = []
        for call in calls:
            bound = await state.tools.resolve(str(call.get("name")))
            (safe if not isinstance(bound, str) and bound.spec.read_only else unknown).append(call)
        # first, so that the reads run again below are not answered from before them
        await self.processor.forget_effects(unknown, state.context, state.tools)
        turn = TurnOutcomes(safe)
        await self.processor.process(turn, state.context, state.tools)
        done = {str(b.get("id")): o for b, o in zip(turn.blocks, turn.outcomes, strict=True)}
        blocks = TurnOutcomes(calls)
        blocks.outcomes = [done.get(str(c.get("id"))) for c in calls]
        log.warning("run.resumed_dangling_calls", thread_id=state.context.run.thread_id,
                    rerun=len(safe), unknown=len(unknown))
        await self._persist(state, history, Message(role="user",
                                             content=blocks.result_blocks(_INTERRUPTED)))
        # the memo was fed before these answers existed: give it the reads just run
        await self.processor.replay(history[-2:], state.context, state.tools)
