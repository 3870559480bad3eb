"""The base of every pipeline stage: one job in ``__call__``, optional hooks, one name.

A stage is given the next handler when it is built and either answers a call itself
or passes it on. Its ``name`` is used everywhere a stage is named: in the pipeline
setting, in ``RunStats.hits``, as the ``source`` of the outcomes it answers, in logs,
traces and docs. A custom stage needs nothing more than a subclass (no registry):

    class Audit(Stage):
        name = "audit"

        async def __call__(self, call, ctx):
            ...
            return await self.next(call, ctx)

The hooks default to doing nothing, and the pipeline calls a hook only on the stages
that override it:

- ``replay(history, ctx)``: a run starts on a stored thread; what must the stage
  relearn from the calls already answered in it (the memo)?
- ``forget(tags, ctx)``: a side effect that may have changed what results tagged with
  ``tags`` say (it ran, failed part-way, or its outcome is unknown after a crash):
  drop them.
- ``forget_calls(keys, ctx)``: the results of the calls keyed ``keys`` left the
  model's context (cleared or summarized to keep a long thread under the window):
  a stage that answers from what the model saw (the memo) drops them, so asking
  again runs the call.
- ``statistics()``: a frozen snapshot of the stage's counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._types import CallContext, Replayed, ToolCall, ToolHandler, ToolOutcome

__all__ = ["Stage", "StageStatistics"]


@dataclass(frozen=True, slots=True)
class StageStatistics:
    """Calls this stage answered itself since it was built."""

    answered: int = 0


class Stage:
    """Base of a pipeline stage: answer a call in ``__call__`` or pass it to ``self.next``.

    Subclass it and set ``name``; override the ``replay``, ``forget`` and
    ``statistics`` hooks only where the stage keeps something (see the module's
    documentation above).
    """

    name: ClassVar[str] = "stage"
    # True for a stage that answers a call keyed as an earlier call of the same turn,
    # once that one is done, without running it (turn dedup). When it is the first stage,
    # the processor runs such duplicates after the turn's other calls, in its own task,
    # instead of giving each a task that would only wait.
    merges_turn_duplicates: ClassVar[bool] = False

    def __init__(self, next_handler: ToolHandler) -> None:
        self.next = next_handler
        self.answered = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            raise TypeError(f"{cls.__name__}: a stage needs a `name` of its own (a class "
                            "attribute): it names the stage in settings, stats and logs")

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        return await self.next(call, ctx)

    async def replay(self, history: Sequence[Replayed], ctx: CallContext) -> None:
        """Relearn per-run state from the calls a stored thread already answered."""

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        """Drop what this stage keeps under any of ``tags``."""

    async def forget_calls(self, keys: Sequence[str], ctx: CallContext) -> None:
        """Drop what this stage keeps for the calls keyed ``keys``."""

    def statistics(self) -> Any:
        """A frozen dataclass of the stage's counters."""
        return StageStatistics(self.answered)

    def answer(self, call: ToolCall, ctx: CallContext, outcome: ToolOutcome,
               **fields: Any) -> ToolOutcome:
        """``outcome`` as this stage's answer to ``call``: counted, logged, attributed."""
        return self.answered_from_store(call, ctx, outcome.answered_by(self.name), **fields)

    def attributed(self, outcome: ToolOutcome) -> ToolOutcome:
        """``outcome`` as this stage will answer it: a stage that keeps results stores
        them attributed, so that a hit hands the stored object back as it is."""
        return outcome if outcome.source == self.name else outcome.answered_by(self.name)

    def answered_from_store(self, call: ToolCall, ctx: CallContext, outcome: ToolOutcome,
                            **fields: Any) -> ToolOutcome:
        """An outcome already :meth:`attributed` to this stage, as its answer to ``call``."""
        self.answered += 1
        if ctx.log.info_enabled():
            ctx.log.info("tool.hit", stage=self.name, tool=call.spec.tool_name,
                         function=call.spec.name, call_id=call.id, key=(call.key or "")[:12],
                         **fields)
        return outcome

    async def pass_side_effect(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        """A side-effecting call through a stage that keeps results: it runs, then the
        stage forgets what it invalidates, whether it succeeded, failed or was cancelled
        (a write that failed part-way or timed out may have happened all the same)."""
        try:
            return await self.next(call, ctx)
        finally:
            if call.options.invalidates:
                await self.forget(call.options.invalidates, ctx)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} stage {self.name!r}>"


def overrides(stage: object, hook: str) -> bool:
    """Whether ``stage`` (a Stage or any handler) implements ``hook`` itself."""
    mine = getattr(type(stage), hook, None)
    return mine is not None and mine is not getattr(Stage, hook)
