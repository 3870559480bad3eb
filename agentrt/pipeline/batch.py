"""Batch fan-out: a read-only function's calls gathered into one upstream request.

A function opts in with ``@function(read_only=True, batch="method")``. The batch
method receives the unique inputs: a list of values when the function has one
parameter (``get_products([10, 20, 30])``), else a list of keyword dicts. It
returns a list of results in input order, or (one parameter) a mapping from
input value to result. Calls arriving within ``window`` seconds share a batch,
the calls of one turn and those of concurrent threads alike.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ._shared import SharedExecution
from ._stage import Stage
from ._types import ToolOutcome
from .execute import invoke, to_outcome

if TYPE_CHECKING:
    from ._types import CallContext, ToolCall, ToolHandler

__all__ = ["Batch", "Batcher"]

ABANDONED: dict[str, ToolOutcome] = {}
_LOST = ToolOutcome("The batch this call joined was cancelled; call it again.",
                    is_error=True, source="cancelled", transient=True)


@dataclass(slots=True)
class _Open:
    calls: dict[str, ToolCall] = field(default_factory=dict)
    full: anyio.Event = field(default_factory=anyio.Event)
    execution: SharedExecution[dict[str, ToolOutcome]] = field(
        default_factory=lambda: SharedExecution(ABANDONED))


class Batcher:
    """Open batches of this process, by (tool instance, batch method)."""

    def __init__(self, *, window: float, max_batch: int, timeout: float,
                 max_result_chars: int) -> None:
        self.window = window
        self.max_batch = max_batch
        self.timeout = timeout
        self.max_result_chars = max_result_chars
        self._open: dict[tuple[int, str], _Open] = {}

    async def submit(self, call: ToolCall, ctx: CallContext) -> tuple[ToolOutcome, bool]:
        """The call's outcome, and whether it went upstream with other inputs."""
        assert call.key is not None and call.options.batch is not None
        group = (id(call.tool), call.options.batch)
        batch = self._open.get(group)
        telemetry = ctx.telemetry
        if batch is not None:
            batch.calls.setdefault(call.key, call)
            if len(batch.calls) >= self.max_batch:
                batch.full.set()
            if telemetry is not None and batch.execution.context is not None:
                telemetry.link_current(batch.execution.context, "batch")  # the leader's span
            results = await batch.execution.join()
        else:
            batch = self._open[group] = _Open()
            if telemetry is not None:
                batch.execution.context = telemetry.current_span_context()
            batch.calls[call.key] = call
            results = await batch.execution.lead(lambda: self._flush(group, batch, ctx))
        return results.get(call.key, _LOST), len(results) > 1

    async def _flush(self, group: tuple[int, str], batch: _Open,
                     ctx: CallContext) -> dict[str, ToolOutcome]:
        with anyio.move_on_after(self.window):
            await batch.full.wait()
        if self._open.get(group) is batch:
            del self._open[group]
        return await self._run(list(batch.calls.values()), ctx)

    async def _run(self, calls: list[ToolCall], ctx: CallContext) -> dict[str, ToolOutcome]:
        first = calls[0]
        name, method_name = first.name, first.options.batch
        assert method_name is not None
        params = list(type(first.arguments).model_fields)
        single = len(params) == 1
        inputs: list[Any] = ([getattr(c.arguments, params[0]) for c in calls] if single
                             else [c.kwargs() for c in calls])
        fields = {"tool": first.spec.tool_name, "function": name, "batch": method_name,
                  "size": len(calls), "thread_id": ctx.run.thread_id}
        method = getattr(first.tool, method_name)
        started = time.monotonic()
        ctx.stats.executed += 1
        raw, failed = await invoke(lambda: method(inputs), name=name,
                                   timeout=first.options.timeout or self.timeout, fields=fields)
        if failed is not None:
            return {c.key: failed for c in calls if c.key is not None}
        ctx.log.info("tool.executed", duration_ms=round((time.monotonic() - started) * 1000, 1),
                 **fields)
        results: dict[str, ToolOutcome] = {}
        for index, (call, value) in enumerate(zip(calls, inputs, strict=True)):
            assert call.key is not None
            if single and isinstance(raw, Mapping):
                found = raw.get(value, _MISSING)
            elif isinstance(raw, Sequence) and not isinstance(raw, str) and len(raw) == len(
                    inputs):
                found = raw[index]
            else:
                found = _MISSING
            results[call.key] = (
                ToolOutcome(f"{name}'s batch form {method_name} returned no result for "
                            f"{value!r}", is_error=True)
                if found is _MISSING else to_outcome(name, found, self.max_result_chars, fields))
        return results


_MISSING = object()


class Batch(Stage):
    """One upstream request for a function's gathered inputs (its batch form)."""

    name = "batch"

    def __init__(self, next_handler: ToolHandler, batcher: Batcher) -> None:
        super().__init__(next_handler)
        self.batcher = batcher

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        if call.key is None or call.options.batch is None:
            return await self.next(call, ctx)
        outcome, shared = await self.batcher.submit(call, ctx)
        return self.answer(call, ctx, outcome) if shared else outcome
