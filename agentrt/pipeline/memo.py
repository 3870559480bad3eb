"""Conversation memo: a read-only call made earlier in this thread is answered again.

The memo is rebuilt from the thread's stored history at the start of every run (its
``replay`` hook), so it survives a restart or a resume in another process without a
store of its own. Its clock is wall time because stored messages carry wall-clock
timestamps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._stage import Stage
from ._types import RunState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from ._types import CallContext, Replayed, ToolCall, ToolHandler, ToolOutcome

__all__ = ["Memo"]


@dataclass(frozen=True, slots=True)
class _Entry:
    outcome: ToolOutcome
    expires: float | None
    tags: tuple[str, ...]


class Memo(Stage):
    """A read-only call made earlier in this thread is answered again."""

    name = "memo"

    def __init__(self, next_handler: ToolHandler, *,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(next_handler)
        self.clock = clock
        self.slot: RunState[dict[str, _Entry]] = RunState(self.name, dict)

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        if call.key is None:
            return await self.pass_side_effect(call, ctx)
        entries = ctx.state(self.slot)
        entry = entries.get(call.key)
        if entry is not None:
            if entry.expires is None or self.clock() < entry.expires:
                return self.answer(call, ctx, entry.outcome)
            del entries[call.key]
        outcome = await self.next(call, ctx)
        self._remember(entries, call, outcome, self.clock())
        return outcome

    async def replay(self, history: Sequence[Replayed], ctx: CallContext) -> None:
        entries = ctx.state(self.slot)
        for item in history:
            if item.call.key is None:
                # A side effect whose outcome is unknown (an earlier run stopped while it
                # ran) or that failed part-way may still have happened: what it
                # invalidates is forgotten either way.
                self._drop(entries, item.call.options.invalidates)
            elif item.outcome is not None:
                self._remember(entries, item.call, item.outcome, item.at)

    def _remember(self, entries: dict[str, _Entry], call: ToolCall, outcome: ToolOutcome,
                  at: float) -> None:
        """Record a result (from this run, or from history) if it may be reused."""
        if call.key is None or call.options.scope == "turn" or not outcome.cacheable(
                call.options):
            return
        ttl = outcome.ttl(call.options)
        # kept as it came (attributed when served): most remembered results are never
        # asked for again in their thread, so a copy per miss would mostly be waste
        entries[call.key] = _Entry(outcome, None if ttl is None else at + ttl,
                                   call.options.cache_tags)

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        self._drop(ctx.state(self.slot), tags)

    async def forget_calls(self, keys: Sequence[str], ctx: CallContext) -> None:
        # results cleared from the model's context: asked again, they run again
        entries = ctx.state(self.slot)
        for key in keys:
            entries.pop(key, None)

    @staticmethod
    def _drop(entries: dict[str, _Entry], tags: Iterable[str]) -> None:
        wanted = set(tags)
        if wanted:
            for key in [k for k, e in entries.items() if wanted.intersection(e.tags)]:
                del entries[key]
