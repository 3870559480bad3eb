"""Eager execution: read-only tool calls start while the model still streams its reply.

A model turn streams for hundreds of milliseconds to seconds, and a tool_use block
is complete long before the message ends. :class:`EagerTurn` wraps one streamed
turn: at each block's ``content_block_stop`` (``ToolUseComplete``) it prepares the
call (resolve, validate, key) and, if it may start early, runs it through the full
pipeline in a task of its own, so its latency hides behind the rest of the stream.

What may start early (``pipeline._early.may_start_early``): a read-only call whose
input parsed and validated, with no call before it in the message that must wait
(a side-effecting call, a call whose input did not parse): a read after a write
must see the write, so it waits too. A call past the run's ``tool_calls`` limit
never starts early. Everything else runs as before, when the message has ended and
is stored, in reply order (``ResponseProcessor.process`` takes the started calls
back instead of running them again).

The thread's rule, "the assistant message is stored before any tool result is
stored, and before any side effect runs", holds: early calls are read-only, and
their results go into the thread only with the rest, after the message. If the
message never completes (the stream breaks, the reply is malformed, the run is
cancelled), the calls still running are cancelled (every pipeline stage leaves
under cancellation without an in-flight entry or a waiter behind) and nothing of
them is stored; their results may stay in the caches. A call started early and not
in the final message's runnable calls (one cut off at ``max_tokens``) is cancelled
and its outcome dropped.

Events, in the order the loop yields them: ``ToolCallStarted`` for a call started
early right after its block completes (after the text before it);
``ToolCallFinished`` for it with the first stream event after it finishes (before
that event), or with the reply at the end of the stream; the calls not started
early, and early calls still running at the end, are reported as before: every
``ToolCallStarted`` once the message is stored, then every ``ToolCallFinished``
once they are all done, in reply order. Each call is reported once.

The stream is read in the loop's own task, as without eager execution. The early
calls run in the runtime's task group while it is entered (``Runtime.task_group``),
so a consumer that drops ``Agent.stream`` without closing it (``break`` and let the
garbage collector close it, from another task) is safe: the calls are cancelled and
awaited from whichever task closes the stream. Without an entered runtime they run
in a task group the loop's generator holds across its yields: then close the run's
event stream in the task that reads it (``Agent.run`` does; ``Agent.stream`` under
``contextlib.aclosing``, or read to the end), as anyio requires.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._events import TextDelta, ToolCallFinished, ToolCallStarted
from .llm._model import ModelReply, ToolUseComplete
from .pipeline._early import EARLY, EarlyCall, may_start_early
from .pipeline._types import ToolCall

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping
    from contextlib import AbstractContextManager
    from types import TracebackType

    from .pipeline._types import CallContext
    from .pipeline.processor import ResponseProcessor
    from .tools._provider import RunTools

__all__ = ["EagerTurn"]


def _finished(call: EarlyCall) -> ToolCallFinished:
    outcome = call.outcome
    assert outcome is not None
    return ToolCallFinished(call.call.id, call.call.name, outcome.is_error, outcome.source,
                            outcome.content, call.duration)


class EagerTurn:
    """One streamed model turn whose read-only calls start as their blocks complete.

    ``async with EagerTurn(...) as turn``: around the stream and the processing of
    the message's calls (the early calls live in its task group); ``turn.relay(items)``
    yields the model's items plus the early calls' events.
    """

    def __init__(self, processor: ResponseProcessor, ctx: CallContext, tools: RunTools, *,
                 tool_calls: int | None = None, group: anyio.abc.TaskGroup | None = None,
                 context: Callable[[], AbstractContextManager[object]] = nullcontext,
                 ) -> None:
        """``tool_calls``: the run's limit on tool calls (None: no limit); ``group``: a
        task group that outlives the run (the entered runtime's), else one of its own;
        ``context``: entered around each early call's start, so the task inherits it (the
        run's span, with tracing on: its ``execute_tool`` span nests under the run's)."""
        self.processor = processor
        self.ctx = ctx
        self.tools = tools
        self.budget = None if tool_calls is None else tool_calls - ctx.stats.tool_calls
        self.started: set[str] = set()  # ids reported by ToolCallStarted
        self.reported: set[str] = set()  # ids reported by ToolCallFinished
        self._position = 0  # tool_use blocks seen
        self._blocked = False  # a call that must wait was seen: the rest wait too
        self._done: list[EarlyCall] = []  # finished, not yet reported
        self._group = group
        self._own: anyio.abc.TaskGroup | None = None  # entered here, when not given one
        self._context = context

    async def __aenter__(self) -> EagerTurn:
        self.ctx.new_turn()  # the turn begins with the stream: early calls share its state
        self.early = self.ctx.state(EARLY)
        if self._group is None:
            own = anyio.create_task_group()
            await own.__aenter__()
            self._group = self._own = own
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        # Failed or cancelled: every early call still running goes; otherwise only those
        # the message's processing did not take (cut off at max_tokens).
        for call in self.early.running(untaken_only=exc is None):
            call.scope.cancel()
        group, self._own = self._own, None
        if group is None:  # the runtime's group: wait for them here, whatever the task
            with anyio.CancelScope(shield=True):
                for call in self.early.running(untaken_only=False):
                    await call.wait()
            return None
        if isinstance(exc, Exception):
            # The loop's own error (a broken stream, a store failure) goes on as it is, not
            # wrapped in an ExceptionGroup: the calls are cancelled, and leave without one.
            await group.__aexit__(None, None, None)
            return None
        return await group.__aexit__(exc_type, exc, tb)

    async def relay(self, items: AsyncIterator[TextDelta | ToolUseComplete | ModelReply]
                    ) -> AsyncIterator[TextDelta | ToolCallStarted | ToolCallFinished
                                       | ModelReply]:
        async for item in items:
            if self._done:
                for call in self._done:
                    self.reported.add(call.call.id)
                    yield _finished(call)
                self._done.clear()
            if isinstance(item, ToolUseComplete):
                early = await self._start(item.block)
                if early is not None:
                    yield ToolCallStarted(early.call.id, early.call.name,
                                          dict(item.block.get("input") or {}))
            else:
                yield item

    async def _start(self, block: Mapping[str, Any]) -> EarlyCall | None:
        """Starts the call of ``block`` if it may start early."""
        position, self._position = self._position, self._position + 1
        if self._blocked or (self.budget is not None and position >= self.budget):
            return None
        if block.get("input") is None:  # not an object: the final reply decides
            self._blocked = True
            return None
        with self._context():  # an activation it causes is the run's too
            prepared = await self.processor.prepare(dict(block), self.tools, self.ctx)
        if not isinstance(prepared, ToolCall):
            return None  # rejected: answered with the rest, and no reason to wait
        if not may_start_early(prepared):
            self._blocked = True
            return None
        call = EarlyCall(block, prepared)
        self.early.add(call)
        self.started.add(prepared.id)
        assert self._group is not None
        with self._context():  # the task copies the current context when it starts
            self._group.start_soon(call.run, self.processor.handler, self.ctx,
                                   self._done.append)
        self.ctx.log.debug("tool.started_early", call_id=prepared.id, function=prepared.name)
        return call
