"""ResponseProcessor: the tool_use blocks of one assistant message -> tool_result blocks.

Lookup and validation happen here, before any stage sees a call, because what
the model got wrong (an unknown function, input the schema rejects) is answered
with an error result it can act on, and is never keyed, cached or executed.
"""

from __future__ import annotations

import itertools
import reprlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
from pydantic import ValidationError

from ..tools._tool import injected_values
from ._early import EARLY, EarlyCall
from ._pipeline import Pipeline
from ._types import CallContext, Replayed, ToolCall, ToolHandler, ToolOutcome
from .keys import key_head, key_of, scope_identity

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..thread._messages import Message
    from ..tools import FunctionOptions, FunctionSpec, Tool
    from ..tools._provider import RunTools

__all__ = ["PENDING", "ResponseProcessor", "Screen", "TurnOutcomes", "result_block"]


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


_QUOTED = reprlib.Repr()
_QUOTED.maxstring = _QUOTED.maxother = 200
_QUOTED.maxlist = _QUOTED.maxdict = 5
_MAX_PROBLEMS = 10


def _validation_message(name: str, exc: ValidationError) -> str:
    """What was wrong with the input, bounded: a 10 MB argument is quoted by its start."""
    problems = []
    errors = exc.errors(include_url=False)
    for error in errors[:_MAX_PROBLEMS]:
        where = ".".join(str(p) for p in error["loc"])[:200] or "input"
        got = f" (got {_QUOTED.repr(error['input'])})" if error["type"] != "missing" else ""
        problems.append(f"{where}: {error['msg'][:300]}{got}")
    if len(errors) > _MAX_PROBLEMS:
        problems.append(f"and {len(errors) - _MAX_PROBLEMS} more problems")
    return f"Invalid input for {name}: " + "; ".join(problems)


@dataclass(frozen=True, slots=True)
class _Plan:
    options: FunctionOptions
    head: bytes | None  # a public function's key head: the same for every caller


Screen: TypeAlias = Callable[[ToolCall], Awaitable[ToolOutcome | None]]
"""Decides a call that requires approval: None runs it, an outcome answers it."""

PENDING = ToolOutcome("This call is waiting for a person's approval; it has not run.",
                      is_error=True, source="pending")
"""What a screen returns for a call left to a person: it gets no result yet."""

_UNSCREENED = ToolOutcome("This call requires a person's approval and was not run.",
                          is_error=True, source="rejected")


class TurnOutcomes:
    """Outcomes of one message's calls, filled as they finish (partial if cancelled)."""

    def __init__(self, blocks: Sequence[dict[str, Any]]) -> None:
        self.blocks = list(blocks)
        self.outcomes: list[ToolOutcome | None] = [None] * len(self.blocks)
        self.durations: list[float] = [0.0] * len(self.blocks)

    def result_blocks(self, missing: ToolOutcome) -> list[dict[str, Any]]:
        """The ``tool_result`` blocks in the order of the calls; ``missing`` answers a call
        that has no outcome (or one still pending approval)."""
        return [result_block(str(b.get("id")), missing if o is None or o is PENDING else o)
                for b, o in zip(self.blocks, self.outcomes, strict=True)]


class ResponseProcessor:
    """Prepares calls (resolve, validate, key) and runs them through the pipeline.

    Read-only calls of one message run concurrently; a side-effecting call is a
    barrier: it runs alone, after the calls the model listed before it and before
    those after it, so effects happen in the order the model asked.
    """

    def __init__(self, pipeline: Pipeline | ToolHandler, *, parallel: bool = True,
                 overrides: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """``pipeline``: the stages, or one handler alone (a pipeline of no stages).
        ``overrides``: function name -> FunctionOptions fields the agent changes."""
        if not isinstance(pipeline, Pipeline):
            pipeline = Pipeline([], pipeline)
        self.pipeline = pipeline
        self.handler = pipeline.handler
        self.parallel = parallel
        self.overrides = {name: dict(fields) for name, fields in (overrides or {}).items()}
        self._plans: dict[tuple[type[Tool], str], _Plan] = {}

    def options_for(self, spec: FunctionSpec) -> FunctionOptions:
        """The function's options, with the agent's ``function_options`` override applied."""
        override = self.overrides.get(spec.name)
        return replace(spec.options, **override) if override else spec.options

    def _plan(self, tool: Tool, spec: FunctionSpec) -> _Plan:
        """What is the same for every call of a function through this processor."""
        options = self.options_for(spec)
        head = None
        if options.read_only and options.public and options.scope != "thread":
            head = key_head(spec.tool_name, spec.name, type(tool).version, {})
        found = self._plans[type(tool), spec.name] = _Plan(options, head)
        return found

    @staticmethod
    def _head(tool: Tool, spec: FunctionSpec, options: FunctionOptions,
              ctx: CallContext) -> bytes:
        """The start of a non-public call's key: the caller's, made once per run."""
        head = ctx.key_heads.get((tool, spec.name))
        if head is None:
            identity = scope_identity(public=options.public, scope=options.scope,
                                      identity=ctx.run.identity, thread_id=ctx.run.thread_id,
                                      injected=injected_values(tool))
            head = ctx.key_heads[tool, spec.name] = key_head(
                spec.tool_name, spec.name, type(tool).version, identity)
        return head

    async def prepare(self, block: dict[str, Any], tools: RunTools,
                      ctx: CallContext) -> ToolCall | ToolOutcome:
        """A ``tool_use`` block resolved, validated and keyed into a call, or the error
        outcome the model gets (unknown function, input that fails the schema)."""
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
        tool = bound.tool
        plan = self._plans.get((type(tool), spec.name)) or self._plan(tool, spec)
        options = plan.options
        key = None
        # a call that needs approval is never keyed: no stage may cache, merge or dedupe it
        if options.read_only and not options.requires_approval:
            key = key_of(plan.head or self._head(tool, spec, options, ctx),
                         arguments.model_dump(mode="json"))
        # positional: a frozen dataclass built by keyword costs twice as much (hot path)
        return ToolCall(str(block.get("id")), tool, spec, arguments, options, key)

    async def process(self, turn: TurnOutcomes, ctx: CallContext, tools: RunTools, *,
                      screen: Screen | None = None) -> None:
        """Run every call; results land in ``turn`` in the order of the tool_use blocks.

        A call the loop started while the message streamed (``_early.EARLY``, the turn
        then began with the stream) is taken back, not run again: its outcome lands in
        ``turn`` when it is done.

        A call whose function requires approval reaches no stage unless ``screen`` lets
        it (returns None); an outcome it returns answers the call instead (a denial, or
        :data:`PENDING`: left without a result, the run pauses for a person). Without a
        screen such a call is refused."""
        early = ctx.existing(EARLY)
        if early is None:
            ctx.new_turn()
        prepared: list[ToolCall | ToolOutcome | EarlyCall] = []
        for index, block in enumerate(turn.blocks):
            started = early.take(block) if early is not None else None
            if started is not None:
                started.bind(turn, index, ctx.stats)
                prepared.append(started)
            else:
                prepared.append(await self.prepare(block, tools, ctx))
        for index, item in enumerate(prepared):
            if isinstance(item, ToolCall) and item.options.requires_approval:
                held = _UNSCREENED if screen is None else await screen(item)
                if held is PENDING:
                    turn.outcomes[index] = PENDING
                    prepared[index] = PENDING
                elif held is not None:
                    prepared[index] = held
        group: list[int] = []
        for index, item in enumerate(prepared):
            if item is PENDING:
                continue
            # unkeyed: a side effect, or a call that required approval: alone, in order
            if isinstance(item, ToolCall) and item.key is None:
                await self._run_group(group, prepared, turn, ctx)
                group = []
                await self._one(index, item, turn, ctx)
            else:
                group.append(index)
        await self._run_group(group, prepared, turn, ctx)

    async def replay(self, history: Sequence[Message], ctx: CallContext,
                     tools: RunTools) -> None:
        """The stages that relearn from a stored thread (the memo) are given its answered
        calls, so a resumed thread (in this or another process) is answered as if it had
        never stopped."""
        if not self.pipeline.replays:
            return
        found: list[Replayed] = []
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
                if isinstance(call, ToolOutcome):
                    continue
                outcome = None if result.get("is_error") else _stored_outcome(
                    result.get("content"))
                found.append(Replayed(call, outcome, answered.created_at))
        if found:
            await self.pipeline.replay(found, ctx)

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
        await self.pipeline.forget(list(tags), ctx)

    async def forget_results(self, blocks: Sequence[dict[str, Any]], ctx: CallContext,
                             tools: RunTools) -> None:
        """Calls whose results the model no longer sees (cleared or summarized out of a
        long thread's context): no stage may answer them again from what the model was
        shown, so asking again runs them through the pipeline."""
        if not self.pipeline.unsees:
            return  # no stage keeps what the model saw: nothing to look up
        keys: list[str] = []
        for block in blocks:
            call = await self.prepare(block, tools, ctx)
            if isinstance(call, ToolCall) and call.key is not None:
                keys.append(call.key)
        await self.pipeline.forget_calls(keys, ctx)

    async def _run_group(self, indexes: list[int],
                         prepared: list[ToolCall | ToolOutcome | EarlyCall],
                         turn: TurnOutcomes, ctx: CallContext) -> None:
        duplicates: list[int] = []
        if self.parallel and len(indexes) > 1 and self.pipeline.merges_turn_duplicates:
            # A call keyed as an earlier one of the group is answered from it once it is
            # done: run it afterwards here, instead of in a task that would only wait.
            keys: set[str] = set()
            distinct: list[int] = []
            for index in indexes:
                item = prepared[index]
                key = item.key if isinstance(item, ToolCall) else None
                if key is not None and key in keys:
                    duplicates.append(index)
                    continue
                distinct.append(index)
                if key is not None:
                    keys.add(key)
            indexes = distinct
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
        for index in duplicates:
            await self._one(index, prepared[index], turn, ctx)

    async def _one(self, index: int, item: ToolCall | ToolOutcome | EarlyCall,
                   turn: TurnOutcomes, ctx: CallContext) -> None:
        if isinstance(item, EarlyCall):  # its outcome is delivered into turn by the call
            await item.wait()
            return
        started = time.monotonic()
        if ctx.telemetry is None:
            outcome = item if isinstance(item, ToolOutcome) else await self.handler(item, ctx)
        else:
            outcome = await ctx.telemetry.tool_call(turn.blocks[index], item, self.handler, ctx)
        turn.durations[index] = time.monotonic() - started
        turn.outcomes[index] = outcome
        ctx.stats.record(outcome)
