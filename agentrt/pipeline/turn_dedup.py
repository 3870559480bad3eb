"""Turn dedup: identical read-only calls in one assistant message run once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ._stage import Stage
from ._types import RunState, ToolOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._types import CallContext, ToolCall, ToolHandler

__all__ = ["TurnDedup"]


ABANDONED = ToolOutcome("The identical call this one shared was cancelled; call it again.",
                        is_error=True, source="cancelled", transient=True)


@dataclass(slots=True)
class _Pending:
    tags: tuple[str, ...]
    outcome: ToolOutcome = ABANDONED
    finished: bool = False
    done: anyio.Event | None = None  # made by the first duplicate that has to wait
    context: Any = None  # the first call's span (OpenTelemetry), for duplicates to link to

    async def wait(self) -> ToolOutcome:
        if not self.finished:
            if self.done is None:
                self.done = anyio.Event()
            await self.done.wait()
        return self.outcome

    def finish(self) -> None:
        self.finished = True
        if self.done is not None:
            self.done.set()


class TurnDedup(Stage):
    """Identical read-only calls in one assistant message run once.

    Every tool_use id gets the result; the tool runs once per distinct key. The first
    call runs inline: the calls of one message share one task group, so they are
    cancelled together and a plain event is enough (no shielding, unlike single-flight
    across threads). Its state is per turn: it starts afresh with each message.
    """

    name = "turn_dedup"
    merges_turn_duplicates = True

    def __init__(self, next_handler: ToolHandler) -> None:
        super().__init__(next_handler)
        self.slot: RunState[dict[str, _Pending]] = RunState(self.name, dict, per="turn")

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        if call.key is None:
            return await self.pass_side_effect(call, ctx)
        entries = ctx.state(self.slot)
        pending = entries.get(call.key)
        telemetry = ctx.telemetry
        if pending is not None:
            if telemetry is not None and pending.context is not None:
                telemetry.link_current(pending.context, self.name)
            return self.answer(call, ctx, await pending.wait())
        pending = entries[call.key] = _Pending(call.options.cache_tags)
        if telemetry is not None:
            pending.context = telemetry.current_span_context()
        try:
            pending.outcome = await self.next(call, ctx)
        finally:
            pending.finish()
        return pending.outcome

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        entries = ctx.state(self.slot)
        wanted = set(tags)
        for key in [k for k, p in entries.items() if wanted.intersection(p.tags)]:
            del entries[key]
