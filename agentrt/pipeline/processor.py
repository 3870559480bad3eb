"""ResponseProcessor: the tool_use blocks of one assistant message -> tool_result blocks.

Lookup and validation happen here, before any stage sees a call, because what
the model got wrong (an unknown function, input the schema rejects) is answered
with an error result it can act on, and is never keyed, cached or executed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import ValidationError

from ._types import CallContext, ToolCall, ToolHandler, ToolOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..tools._provider import RunTools

__all__ = ["ResponseProcessor", "TurnOutcomes", "result_block"]


def result_block(tool_use_id: str, outcome: ToolOutcome) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id,
                             "content": outcome.content}
    if outcome.is_error:
        block["is_error"] = True
    return block


def _validation_message(name: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "input"
        got = f" (got {error['input']!r})" if error["type"] != "missing" else ""
        problems.append(f"{where}: {error['msg']}{got}")
    return f"Invalid input for {name}: " + "; ".join(problems)


class TurnOutcomes:
    """Outcomes of one message's calls, filled as they finish (partial if cancelled)."""

    def __init__(self, blocks: Sequence[dict[str, Any]]) -> None:
        self.blocks = list(blocks)
        self.outcomes: list[ToolOutcome | None] = [None] * len(self.blocks)
        self.durations: list[float] = [0.0] * len(self.blocks)

    def result_blocks(self, missing: ToolOutcome) -> list[dict[str, Any]]:
        return [result_block(str(b.get("id")), o or missing)
                for b, o in zip(self.blocks, self.outcomes, strict=True)]


class ResponseProcessor:
    def __init__(self, handler: ToolHandler, *, parallel: bool = True) -> None:
        self.handler = handler
        self.parallel = parallel

    async def prepare(self, block: dict[str, Any], tools: RunTools) -> ToolCall | ToolOutcome:
        name = str(block.get("name", ""))
        bound = await tools.resolve(name)
        if isinstance(bound, str):
            return ToolOutcome(bound, is_error=True, source="rejected")
        raw = block.get("input")
        if not isinstance(raw, dict):
            return ToolOutcome(f"Invalid input for {name}: expected a JSON object",
                               is_error=True, source="rejected")
        try:
            arguments = bound.spec.validate(raw)
        except ValidationError as exc:
            return ToolOutcome(_validation_message(name, exc), is_error=True, source="rejected")
        return ToolCall(id=str(block.get("id")), tool=bound.tool, spec=bound.spec,
                        arguments=arguments)

    async def process(self, turn: TurnOutcomes, ctx: CallContext, tools: RunTools) -> None:
        """Run every call; results land in ``turn`` in the order of the tool_use blocks."""
        ctx.turn = {}
        prepared = [await self.prepare(block, tools) for block in turn.blocks]
        if self.parallel and len(prepared) > 1:
            async with anyio.create_task_group() as tg:
                for index, item in enumerate(prepared):
                    tg.start_soon(self._one, index, item, turn, ctx)
        else:
            for index, item in enumerate(prepared):
                await self._one(index, item, turn, ctx)

    async def _one(self, index: int, item: ToolCall | ToolOutcome, turn: TurnOutcomes,
                   ctx: CallContext) -> None:
        started = time.monotonic()
        outcome = item if isinstance(item, ToolOutcome) else await self.handler(item, ctx)
        turn.durations[index] = time.monotonic() - started
        turn.outcomes[index] = outcome
        ctx.stats.record(outcome)


