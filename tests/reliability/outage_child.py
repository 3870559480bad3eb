"""One process of the outage tests: the shared pipeline (local cache, single-flight,
shared cache, shared flight) over a stock file, with the runtime's invalidation
listener, driven line by line on stdin.

argv: redis_url prefix stock_file. Commands: ``read ITEM`` (a read-only, cached
look-up), ``ship ITEM`` (a write that takes one unit and invalidates ``stock``),
``pending`` (the invalidations Redis has not taken yet, and the Redis circuit's state, for
a failure's message). Each answers one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio

from agentrt import RunContext, Tool, function, load_settings
from agentrt.pipeline import (
    CallContext,
    Execute,
    PipelineResources,
    ResponseProcessor,
    TurnOutcomes,
    build_pipeline,
    default_stages,
)
from agentrt.pipeline.shared_cache import listen_for_invalidations
from agentrt.tools import ToolRegistry


class Stock(Tool):
    name = "stock"

    def __init__(self, path: Path) -> None:
        self.path = path

    @function(read_only=True, ttl=600, public=True, cache_tags=("stock",))
    async def count(self, item: str) -> dict[str, Any]:
        """Units in stock."""
        return {"item": item, "units": json.loads(self.path.read_text())[item]}

    @function(invalidates=("stock",))
    async def ship(self, item: str) -> str:
        """Ship one unit."""
        stock = json.loads(self.path.read_text())
        stock[item] -= 1
        self.path.write_text(json.dumps(stock))
        return f"shipped 1 {item}"


def _answer(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main() -> None:
    from agentrt._redis import RedisGate

    url, prefix, stock_file = sys.argv[1:4]
    settings = load_settings(thread_store="memory", redis_timeout=0.3, redis_retry_after=0.3)
    gate = RedisGate(url, prefix=prefix, timeout=0.3, retry_after=0.3)
    res = PipelineResources.from_settings(settings, redis=gate)
    processor = ResponseProcessor(build_pipeline(
        default_stages(shared=True), res, Execute(timeout=5, max_result_chars=10_000)))
    tools = ToolRegistry([Stock(Path(stock_file))])
    assert res.pending is not None
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: listen_for_invalidations(gate, res.local_cache, res.pending,
                                                       retry_after=0.3))
        stdin = anyio.wrap_file(sys.stdin)
        index = 0
        async for line in stdin:
            command, _, item = line.strip().partition(" ")
            if command == "pending":
                _answer({"pending": sorted(res.pending.tags), "circuit": {
                    "down": gate._down, "probing": gate._probing,
                    "failures": gate.failures, "available": gate.available}})
                continue
            index += 1
            name = "count" if command == "read" else "ship"
            turn = TurnOutcomes([{"type": "tool_use", "id": f"toolu_{index}", "name": name,
                                  "input": {"item": item}}])
            # every command is a new thread: only the process-wide and shared layers help
            ctx = CallContext(RunContext(thread_id=f"thr_{index}", run_id=f"run_{index}",
                                         agent="outage"))
            await processor.process(turn, ctx, tools)
            outcome = turn.outcomes[0]
            assert outcome is not None
            _answer({"content": outcome.content, "source": outcome.source})
        tg.cancel_scope.cancel()
    await gate.aclose()


if __name__ == "__main__":
    anyio.run(main)
