"""Calls of one assistant message started before the message ended (eager execution).

The loop starts a read-only call as soon as its tool_use block is complete in the
stream (``agentrt._eager``); when the message has ended and is stored,
:meth:`ResponseProcessor.process` takes each started call back by its block instead
of running it again. A call's outcome goes into the message's results only then,
once the assistant message holding its tool_use block is stored: a result is never
stored without its call.

The registry is per-turn state (``EARLY``): it lives in the ``CallContext`` from the
moment the stream starts to the end of the message's processing, next to the turn
dedup's calls in flight, so an identical block later in the same message joins the
early call there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from ..log import get_logger
from ._types import RunState, ToolOutcome

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ._types import CallContext, StatsRecorder, ToolCall, ToolHandler

__all__ = ["EARLY", "EarlyCall", "EarlyCalls", "may_start_early"]

log = get_logger("agentrt.pipeline")

_FAILED = ToolOutcome("The call failed inside the runtime; call it again.", is_error=True,
                      source="executed", transient=True)


class _Outcomes(Protocol):
    """Where a message's outcomes land (``processor.TurnOutcomes``, which imports this)."""

    outcomes: list[ToolOutcome | None]
    durations: list[float]


def may_start_early(call: ToolCall) -> bool:
    """Whether ``call`` may run while its message still streams. Read-only calls only:
    a side effect waits until the assistant message is stored (and for the calls the
    model listed before it), and so does a call needing a person's approval."""
    return call.options.read_only and not call.options.requires_approval


class EarlyCall:
    """One call started early: its outcome, once done, and where it goes."""

    __slots__ = ("_done", "_sink", "block", "call", "duration", "finished", "outcome",
                 "scope")

    def __init__(self, block: Mapping[str, Any], call: ToolCall) -> None:
        self.block = block
        self.call = call
        self.outcome: ToolOutcome | None = None  # None: cancelled, or still running
        self.duration = 0.0
        self.finished = False
        self.scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._sink: tuple[_Outcomes, int, StatsRecorder] | None = None

    async def run(self, handler: ToolHandler, ctx: CallContext,
                  on_finished: Callable[[EarlyCall], object] | None = None) -> None:
        """Runs the call through the pipeline in its own cancel scope. Never raises
        (but for a cancellation of the whole group): an exception here would cancel
        the loop's task while it waits on the stream."""
        started = time.monotonic()
        try:
            with self.scope:
                try:
                    self.outcome = (await handler(self.call, ctx) if ctx.telemetry is None else
                                    await ctx.telemetry.tool_call(self.block, self.call,
                                                                  handler, ctx))
                except Exception:  # handlers answer with outcomes; this is a bug
                    log.exception("tool.early_failed", call_id=self.call.id,
                                  function=self.call.name)
                    self.outcome = _FAILED
                self.duration = time.monotonic() - started
        finally:
            self.finished = True
            self._deliver()
            self._done.set()
        if on_finished is not None and self.outcome is not None:
            on_finished(self)

    def bind(self, turn: _Outcomes, index: int, stats: StatsRecorder) -> None:
        """Its outcome goes into ``turn`` at ``index`` (and is counted), now or when done."""
        self._sink = (turn, index, stats)
        if self.finished:
            self._deliver()

    def _deliver(self) -> None:
        sink, self._sink = self._sink, None
        if sink is None or self.outcome is None:
            return
        turn, index, stats = sink
        turn.outcomes[index] = self.outcome
        turn.durations[index] = self.duration
        stats.record(self.outcome)

    async def wait(self) -> None:
        await self._done.wait()


class EarlyCalls:
    """The calls of one message started early, by tool_use id."""

    def __init__(self) -> None:
        self.calls: dict[str, EarlyCall] = {}
        self.taken: set[str] = set()

    def add(self, call: EarlyCall) -> None:
        self.calls[str(call.block.get("id"))] = call

    def take(self, block: Mapping[str, Any]) -> EarlyCall | None:
        """The call started early for ``block`` of the final message, if any (the
        same id, name and input: the streamed block is what the message holds)."""
        found = self.calls.get(str(block.get("id")))
        if found is None or found.block.get("name") != block.get("name") or (
                found.block.get("input") != block.get("input")):
            return None
        self.taken.add(found.call.id)
        return found

    def running(self, *, untaken_only: bool) -> Sequence[EarlyCall]:
        return [c for i, c in self.calls.items()
                if not c.finished and not (untaken_only and i in self.taken)]


EARLY: RunState[EarlyCalls] = RunState("early", EarlyCalls, per="turn")
