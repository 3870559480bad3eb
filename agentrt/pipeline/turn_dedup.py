"""Turn dedup: identical read-only calls in one assistant message run once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._events import log_hit
from ._types import ToolOutcome, pass_side_effect

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._types import CallContext, ToolCall, ToolHandler

__all__ = ["TurnDedup"]


_SLOT = "turn_dedup"
ABANDONED = ToolOutcome("The identical call this one shared was cancelled; call it again.",
                        is_error=True, source="cancelled", transient=True)


@dataclass(slots=True)
class _Pending:
    tags: tuple[str, ...]
    outcome: ToolOutcome = ABANDONED
    finished: bool = False
    done: anyio.Event | None = None  # made by the first duplicate that has to wait

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


class TurnDedup:
    """Every tool_use id gets the result; the tool runs once per distinct key.

    The first call runs inline: the calls of one message share one task group, so
    they are cancelled together and a plain event is enough (no shielding, unlike
    single-flight across threads). State lives in ``ctx.turn``, reset per message.
    """

    name = "turn"

    def __init__(self, next_handler: ToolHandler) -> None:
        self.next = next_handler

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        entries: dict[str, _Pending] = ctx.turn.setdefault(_SLOT, {})
        if call.key is None:
            return await pass_side_effect(self, call, ctx)
        pending = entries.get(call.key)
        if pending is not None:
            outcome = await pending.wait()
            log_hit(ctx, self.name, call)
            return outcome.answered_by(self.name)
        pending = entries[call.key] = _Pending(call.options.cache_tags)
        try:
            pending.outcome = await self.next(call, ctx)
        finally:
            pending.finish()
        return pending.outcome

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        entries: dict[str, _Pending] = ctx.turn.get(_SLOT, {})
        wanted = set(tags)
        for key in [k for k, p in entries.items() if wanted.intersection(p.tags)]:
            del entries[key]
