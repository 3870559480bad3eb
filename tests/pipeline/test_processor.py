from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from agentrt import RunContext, Tool, ToolError, function
from agentrt.pipeline import (
    CallContext,
    Execute,
    ResponseProcessor,
    StatsRecorder,
    TurnOutcomes,
    build_pipeline,
)
from agentrt.tools import ToolRegistry

pytestmark = pytest.mark.anyio


class Faulty(Tool):
    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = anyio.Event()

    @function(read_only=True)
    async def slow_first(self, tag: str) -> str:
        """Waits for the gate, so a later call finishes first."""
        await self.gate.wait()
        self.order.append(tag)
        return tag

    @function(read_only=True)
    async def opens_gate(self, tag: str) -> str:
        """Opens the gate."""
        self.order.append(tag)
        self.gate.set()
        return tag

    @function
    async def boom(self) -> str:
        """Raises."""
        raise RuntimeError("disk on fire")

    @function
    async def refuse(self) -> str:
        """Raises ToolError."""
        raise ToolError("quota exceeded; try tomorrow")

    @function(timeout=0.05)
    async def hang(self) -> str:
        """Never returns."""
        await anyio.sleep_forever()
        return ""

    @function(read_only=True)
    async def unserializable(self) -> Any:
        """Returns a set."""
        return {1, 2}

    @function(read_only=True)
    async def huge(self) -> str:
        """Returns a lot."""
        return "x" * 5000

    @function(read_only=True)
    async def whoami(self, ctx: RunContext) -> dict[str, Any]:
        """Echoes the run context."""
        return {"thread": ctx.thread_id, "identity": dict(ctx.identity)}


def _processor(parallel: bool = True) -> tuple[ResponseProcessor, Faulty]:
    tool = Faulty()
    handler = build_pipeline([], None, Execute(timeout=5, max_result_chars=1000))
    return ResponseProcessor(handler, parallel=parallel), tool


def _ctx() -> CallContext:
    run = RunContext(thread_id="thr_1", run_id="run_1", agent="t", identity={"account": "a1"})
    return CallContext(run, StatsRecorder())


def _use(name: str, index: int, **kwargs: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": kwargs}


async def _process(blocks: list[dict[str, Any]], parallel: bool = True
                   ) -> tuple[list[dict[str, Any]], CallContext, Faulty]:
    processor, tool = _processor(parallel)
    ctx = _ctx()
    turn = TurnOutcomes(blocks)
    await processor.process(turn, ctx, ToolRegistry([tool]))
    return turn.result_blocks(missing=None), ctx, tool  # type: ignore[arg-type]


async def test_parallel_results_come_back_in_tool_use_order() -> None:
    blocks = [_use("slow_first", 0, tag="a"), _use("opens_gate", 1, tag="b")]
    results, ctx, tool = await _process(blocks)
    assert tool.order == ["b", "a"]  # finished out of order ...
    assert [r["tool_use_id"] for r in results] == ["toolu_0", "toolu_1"]  # ... answered in order
    assert [r["content"] for r in results] == ["a", "b"]
    assert ctx.stats.snapshot().executed == 2


async def test_sequential_runs_in_model_order() -> None:
    blocks = [_use("opens_gate", 0, tag="b"), _use("slow_first", 1, tag="a")]
    _, _, tool = await _process(blocks, parallel=False)
    assert tool.order == ["b", "a"]


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (_use("boom", 0), "boom failed: RuntimeError: disk on fire"),
        (_use("refuse", 0), "quota exceeded; try tomorrow"),
        (_use("hang", 0), "hang timed out after 0.05 s and was cancelled"),
        (_use("unserializable", 0), "not JSON (set)"),
        (_use("get_weather", 0), "Unknown function 'get_weather'."),
        (_use("boom", 0, extra=1), "Invalid input for boom: extra: Extra inputs are not permitted"),
        (_use("opens_gate", 0, tag=["x"]), "Invalid input for opens_gate: tag: Input should be"),
        (_use("opens_gate", 0), "tag: Field required"),
        ({"type": "tool_use", "id": "toolu_0", "name": "boom", "input": "{oops"},
         "expected a JSON object"),
    ],
)
async def test_failures_become_error_results(block: dict[str, Any], expected: str) -> None:
    results, ctx, _ = await _process([block])
    assert results[0]["is_error"] is True
    assert expected in results[0]["content"]
    assert ctx.stats.snapshot().errors == 1


async def test_unknown_function_suggests_a_close_name() -> None:
    results, _, _ = await _process([_use("bom", 0)])
    assert "Did you mean 'boom'?" in results[0]["content"]


async def test_long_results_are_truncated_with_a_notice() -> None:
    results, _, _ = await _process([_use("huge", 0)])
    assert results[0]["content"].startswith("x" * 1000)
    assert "truncated from 5,000 to 1,000 characters" in results[0]["content"]
    assert "is_error" not in results[0]


async def test_run_context_is_injected_not_part_of_schema() -> None:
    assert "ctx" not in Faulty.functions()["whoami"].input_schema["properties"]
    results, _, _ = await _process([_use("whoami", 0)])
    assert json.loads(results[0]["content"]) == {"thread": "thr_1",
                                                 "identity": {"account": "a1"}}
