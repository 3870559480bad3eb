"""Conversation memo: a read-only call made earlier in this thread is answered again.

The memo is rebuilt from the thread's stored history at the start of every run
(:func:`remember` is fed by the processor), so it survives a restart or a resume
in another process without a store of its own. Its clock is wall time because
stored messages carry wall-clock timestamps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._events import log_hit
from ._types import pass_side_effect

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ._types import CallContext, ToolCall, ToolHandler, ToolOutcome

__all__ = ["Memo", "forget", "remember"]


_SLOT = "memo"


@dataclass(frozen=True, slots=True)
class _Entry:
    outcome: ToolOutcome
    expires: float | None
    tags: tuple[str, ...]


def _entries(ctx: CallContext) -> dict[str, _Entry]:
    found: dict[str, _Entry] = ctx.thread.setdefault(_SLOT, {})
    return found


def remember(ctx: CallContext, call: ToolCall, outcome: ToolOutcome, at: float) -> None:
    """Record a result (from this run, or replayed from history) if it may be reused."""
    if call.key is None or call.options.scope == "turn" or not outcome.cacheable(call.options):
        return
    ttl = outcome.ttl(call.options)
    _entries(ctx)[call.key] = _Entry(outcome, None if ttl is None else at + ttl,
                                     call.options.cache_tags)


def forget(ctx: CallContext, tags: Iterable[str]) -> None:
    """A side effect ran (or may have): results tagged with what it changes are stale."""
    wanted = set(tags)
    entries = _entries(ctx)
    for key in [k for k, e in entries.items() if wanted.intersection(e.tags)]:
        del entries[key]


class Memo:
    name = "memo"

    def __init__(self, next_handler: ToolHandler, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.next = next_handler
        self.clock = clock

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        if call.key is None:
            return await pass_side_effect(self, call, ctx)
        entry = _entries(ctx).get(call.key)
        if entry is not None:
            if entry.expires is None or self.clock() < entry.expires:
                log_hit(ctx, self.name, call)
                return entry.outcome.answered_by(self.name)
            del _entries(ctx)[call.key]
        outcome = await self.next(call, ctx)
        remember(ctx, call, outcome, self.clock())
        return outcome

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        forget(ctx, tags)
