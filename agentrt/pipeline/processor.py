"""ResponseProcessor: the tool_use blocks of one assistant message -> tool_result blocks.

Lookup and validation happen here, before any stage sees a call, because what
the model got wrong (an unknown function, input the schema rejects) is answered
with an error result it can act on, and is never keyed, cached or executed.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import anyio
from pydantic import ValidationError

from . import memo
from ._types import CallContext, ToolCall, ToolHandler, ToolOutcome
from .keys import call_key, scope_identity

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..thread._messages import Message
    from ..tools import FunctionOptions, FunctionSpec
    from ..tools._provider import RunTools
    from ._types import Forgetting

__all__ = ["ResponseProcessor", "TurnOutcomes", "result_block"]


def result_block(tool_use_id: str, outcome: ToolOutcome) -> dict[str, Any]:
    """The ``tool_result`` block: the outcome's content blocks when it has them (text
    and ``tool_reference`` blocks, say), else its text."""
    content: str | list[dict[str, Any]] = (
        outcome.content if outcome.blocks is None else [dict(b) for b in outcome.blocks])
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id,
                             "content": content}
    if outcome.is_error:
        block["is_error"] = True
    return block


def _stored_outcome(content: Any) -> ToolOutcome | None:
    """A stored tool_result's content as the outcome that produced it (None if malformed)."""
    if isinstance(content, str):
        return ToolOutcome(content)
    if isinstance(content, list) and all(isinstance(b, dict) and isinstance(b.get("type"), str)
                                         for b in content):
        blocks = tuple(dict(b) for b in content)
        text = "\n".join(str(b.get("text", "")) for b in blocks if b["type"] == "text")
        return ToolOutcome(text, blocks=blocks)
    return None


def _stages_keeping_results(handler: ToolHandler) -> list[Forgetting]:
    """The stages of the chain that starts at ``handler`` that keep results, in order."""
    found: list[Forgetting] = []
    current: object = handler
    while current is not None:
        if callable(getattr(current, "forget", None)):
            found.append(cast("Forgetting", current))
        current = getattr(current, "next", None)
    return found


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
    """Prepares calls (resolve, validate, key) and runs them through the pipeline.

    Read-only calls of one message run concurrently; a side-effecting call is a
    barrier: it runs alone, after the calls the model listed before it and before
    those after it, so effects happen in the order the model asked.
    """

    def __init__(self, handler: ToolHandler, *, parallel: bool = True,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 remember_history: bool = False) -> None:
        """``overrides``: function name -> FunctionOptions fields the agent changes.
        ``remember_history``: replay the thread's earlier results into the memo."""
        self.handler = handler
        self.parallel = parallel
        self.overrides = {name: dict(fields) for name, fields in (overrides or {}).items()}
        self.remember_history = remember_history
        self._options: dict[int, FunctionOptions] = {}

    def options_for(self, spec: FunctionSpec) -> FunctionOptions:
        found = self._options.get(id(spec))
        if found is None:
            override = self.overrides.get(spec.name)
            found = replace(spec.options, **override) if override else spec.options
            self._options[id(spec)] = found
        return found

    async def prepare(self, block: dict[str, Any], tools: RunTools,
                      ctx: CallContext) -> ToolCall | ToolOutcome:
        name = str(block.get("name", ""))
        bound = await tools.resolve(name)
        if isinstance(bound, str):
            return ToolOutcome(bound, is_error=True, source="rejected")
        raw = block.get("input")
        if not isinstance(raw, dict):
            return ToolOutcome(f"Invalid input for {name}: expected a JSON object",
                               is_error=True, source="rejected")
        spec = bound.spec
        try:
            arguments = spec.validate(raw)
        except ValidationError as exc:
            return ToolOutcome(_validation_message(name, exc), is_error=True, source="rejected")
        options = self.options_for(spec)
        key = None
        if options.read_only:
            identity = scope_identity(public=options.public, scope=options.scope,
                                      identity=ctx.run.identity, thread_id=ctx.run.thread_id)
            key = call_key(spec.tool_name, spec.name, arguments.model_dump(mode="json"),
                           type(bound.tool).version, identity)
        return ToolCall(id=str(block.get("id")), tool=bound.tool, spec=spec,
                        arguments=arguments, options=options, key=key)

    async def process(self, turn: TurnOutcomes, ctx: CallContext, tools: RunTools) -> None:
        """Run every call; results land in ``turn`` in the order of the tool_use blocks."""
        ctx.turn = {}
        prepared = [await self.prepare(block, tools, ctx) for block in turn.blocks]
        group: list[int] = []
        for index, item in enumerate(prepared):
            if isinstance(item, ToolCall) and not item.options.read_only:
                await self._run_group(group, prepared, turn, ctx)
                group = []
                await self._one(index, item, turn, ctx)
            else:
                group.append(index)
        await self._run_group(group, prepared, turn, ctx)

    async def replay(self, history: Sequence[Message], ctx: CallContext,
                     tools: RunTools) -> None:
        """Feed the memo the thread's earlier results, so a resumed thread (in this or
        another process) is answered as if it had never stopped."""
        if not self.remember_history:
            return
        for asked, answered in itertools.pairwise(history):
            if asked.role != "assistant" or answered.role != "user":
                continue
            results = {str(b.get("tool_use_id")): b for b in answered.blocks()
                       if b.get("type") == "tool_result"}
            for block in asked.blocks():
                result = results.get(str(block.get("id")))
                if block.get("type") != "tool_use" or result is None:
                    continue
                call = await self.prepare(block, tools, ctx)
                outcome = _stored_outcome(result.get("content"))
                if isinstance(call, ToolOutcome):
                    continue
                if call.key is None:
                    # A side effect whose outcome is unknown (an earlier run stopped while
                    # it ran) or that failed part-way may still have happened: what it
                    # invalidates is forgotten either way.
                    if call.options.invalidates:
                        memo.forget(ctx, call.options.invalidates)
                elif not result.get("is_error") and outcome is not None:
                    memo.remember(ctx, call, outcome, answered.created_at)

    async def forget_effects(self, blocks: Sequence[dict[str, Any]], ctx: CallContext,
                             tools: RunTools) -> None:
        """Side effects that are not run but may have happened (a resumed thread's calls
        of unknown outcome): every stage drops the results they invalidate, as it
        would have had they run through it."""
        tags: dict[str, None] = {}
        for block in blocks:
            call = await self.prepare(block, tools, ctx)
            if isinstance(call, ToolCall) and call.key is None:
                tags.update(dict.fromkeys(call.options.invalidates))
        if tags:  # rare (a resume after a crash): the chain is walked only then
            for stage in _stages_keeping_results(self.handler):
                await stage.forget(list(tags), ctx)

    async def _run_group(self, indexes: list[int], prepared: list[ToolCall | ToolOutcome],
                         turn: TurnOutcomes, ctx: CallContext) -> None:
        if self.parallel and len(indexes) > 1:
            first, *others = indexes
            async with anyio.create_task_group() as tg:
                for index in others:
                    tg.start_soon(self._one, index, prepared[index], turn, ctx)
                # In this task: one task fewer, and it still starts first.
                await self._one(first, prepared[first], turn, ctx)
        else:
            for index in indexes:
                await self._one(index, prepared[index], turn, ctx)

    async def _one(self, index: int, item: ToolCall | ToolOutcome, turn: TurnOutcomes,
                   ctx: CallContext) -> None:
        started = time.monotonic()
        outcome = item if isinstance(item, ToolOutcome) else await self.handler(item, ctx)
        turn.durations[index] = time.monotonic() - started
        turn.outcomes[index] = outcome
        ctx.stats.record(outcome)
