"""Turn dedup: identical read-only calls in one assistant message run once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from ._events import log_hit
from ._types import ToolOutcome

if TYPE_CHECKING:
    from ._types import CallContext, ToolCall, ToolHandler

__all__ = ["TurnDedup"]


_SLOT = "turn_dedup"
ABANDONED = ToolOutcome("The identical call this one shared was cancelled; call it again.",
                        is_error=True, source="cancelled", transient=True)


@dataclass(slots=True)
class _Pending:
    tags: tuple[str, ...]
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: ToolOutcome = ABANDONED


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
            outcome = await self.next(call, ctx)
            if call.options.invalidates and not outcome.is_error:
                tags = set(call.options.invalidates)
                for key in [k for k, p in entries.items() if tags.intersection(p.tags)]:
                    del entries[key]
            return outcome
        pending = entries.get(call.key)
        if pending is not None:
            await pending.done.wait()
            log_hit(self.name, call)
            return pending.outcome.answered_by(self.name)
        pending = entries[call.key] = _Pending(call.options.cache_tags)
        try:
            pending.outcome = await self.next(call, ctx)
        finally:
            pending.done.set()
        return pending.outcome
