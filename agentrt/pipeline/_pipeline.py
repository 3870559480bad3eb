"""The Pipeline: the stages a tool call goes through, kept as a list, with one contract.

Calls enter at the first stage (``handler``); the pipeline itself is what the
processor and the loop talk to for everything else a stage may do (relearn a
resumed thread, forget what a side effect changed, report its counters), so nobody
walks the chain of handlers to find the stages again.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ._stage import overrides

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._types import CallContext, Replayed, ToolHandler

__all__ = ["Pipeline", "summary"]


def summary(obj: object) -> str:
    """The first line of an object's docstring (its class's, for an instance)."""
    doc = inspect.getdoc(obj if isinstance(obj, type) else type(obj)) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Pipeline:
    """``stages`` in the order a call meets them, then ``terminal`` (execute)."""

    def __init__(self, stages: Sequence[ToolHandler], terminal: ToolHandler) -> None:
        self.stages = tuple(stages)
        self.terminal = terminal
        self.handler: ToolHandler = self.stages[0] if self.stages else terminal
        self.names = tuple(str(getattr(s, "name", type(s).__name__)) for s in self.stages)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"two stages share a name: {self.names}")
        self._replaying = [s for s in self.stages if overrides(s, "replay")]
        self._forgetting = [s for s in self.stages if overrides(s, "forget")]
        self._unseeing = [s for s in self.stages if overrides(s, "forget_calls")]
        # only the first stage: a stage before it could wait for the duplicates to arrive
        self.merges_turn_duplicates = bool(
            self.stages and getattr(self.stages[0], "merges_turn_duplicates", False))

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(self.names) or 'no stages'} -> execute)"

    async def __call__(self, call: Any, ctx: CallContext) -> Any:
        return await self.handler(call, ctx)

    def stage(self, name: str) -> ToolHandler:
        """The stage called ``name``; KeyError if there is none."""
        for stage, stage_name in zip(self.stages, self.names, strict=True):
            if stage_name == name:
                return stage
        raise KeyError(name)

    @property
    def replays(self) -> bool:
        """Whether any stage relearns from a stored thread (so history must be read)."""
        return bool(self._replaying)

    async def replay(self, history: Sequence[Replayed], ctx: CallContext) -> None:
        for stage in self._replaying:
            await stage.replay(history, ctx)  # type: ignore[attr-defined]

    async def forget(self, tags: Sequence[str], ctx: CallContext) -> None:
        """Every stage that keeps results drops those under ``tags``."""
        if tags:
            for stage in self._forgetting:
                await stage.forget(tags, ctx)  # type: ignore[attr-defined]

    @property
    def unsees(self) -> bool:
        """Whether any stage answers from what the model saw (so must forget calls)."""
        return bool(self._unseeing)

    async def forget_calls(self, keys: Sequence[str], ctx: CallContext) -> None:
        """Every stage that answers from what the model saw drops the calls ``keys``."""
        if keys:
            for stage in self._unseeing:
                await stage.forget_calls(keys, ctx)  # type: ignore[attr-defined]

    def statistics(self) -> dict[str, Any]:
        """Each stage's counters by its name (stages without ``statistics`` left out)."""
        found: dict[str, Any] = {}
        for stage, name in zip(self.stages, self.names, strict=True):
            report = getattr(stage, "statistics", None)
            if callable(report):
                found[name] = report()
        return found

    def describe(self) -> list[tuple[str, str]]:
        """(name, what it does) for each stage in order, then execute."""
        return [(n, summary(s)) for n, s in zip(self.names, self.stages, strict=True)] + [
            ("execute", summary(self.terminal))]
