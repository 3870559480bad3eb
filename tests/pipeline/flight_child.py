"""One OS process of the cross-process single-flight tests.

argv: redis_url prefix calls lease_ttl first_call_seconds. Counts itself ready in
Redis and waits for the parent's go (so every process starts together), makes
``calls`` concurrent identical calls of a slow read (each from its own thread),
and prints one JSON line of results.
The read counts executions in Redis (INCR) so the parent can count them across
processes; the first execution announces its PID and stalls, so a test can kill it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import anyio

from agentrt import Tool, function, load_settings
from agentrt._redis import RedisGate
from agentrt.log import configure_logging
from agentrt.pipeline import (
    Execute,
    PipelineResources,
    ResponseProcessor,
    TurnOutcomes,
    build_pipeline,
)
from agentrt.tools import ToolRegistry

from .support import context


class Slow(Tool):
    name = "slow"

    def __init__(self, gate: RedisGate, first_call_seconds: float) -> None:
        self.gate = gate
        self.first_call_seconds = first_call_seconds

    @function(read_only=True, ttl=60)
    async def report(self, day: str) -> dict[str, Any]:
        """A slow report."""
        count = await self.gate.client.incr(self.gate.key("executions"))
        if count == 1:
            await self.gate.client.set(self.gate.key("leader_pid"), os.getpid())
            await anyio.sleep(self.first_call_seconds)
        else:
            await anyio.sleep(0.2)
        return {"day": day, "total": 42}


async def main() -> None:
    configure_logging(level="warning", fmt="json", stream=sys.stderr)
    url, prefix, calls, lease_ttl, first = sys.argv[1:6]
    settings = load_settings(thread_store="memory", lease_ttl=float(lease_ttl))
    gate = RedisGate(url, prefix=prefix, timeout=2.0)
    resources = PipelineResources.from_settings(settings, redis=gate)
    handler = build_pipeline(["local_cache", "single_flight", "shared_cache", "shared_flight"],
                             resources, Execute(timeout=60, max_result_chars=10_000))
    processor = ResponseProcessor(handler)
    tools = ToolRegistry([Slow(gate, float(first))])
    results: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        block = {"type": "tool_use", "id": f"toolu_{i}", "name": "report",
                 "input": {"day": "2026-11-27"}}
        turn = TurnOutcomes([block])
        await processor.process(turn, context(f"thr_{os.getpid()}_{i}"), tools)
        outcome = turn.outcomes[0]
        assert outcome is not None
        results.append({"content": outcome.content, "source": outcome.source,
                        "is_error": outcome.is_error})

    await gate.client.incr(gate.key("ready"))
    while not await gate.client.exists(gate.key("go")):  # the parent says go once all are ready
        await anyio.sleep(0.005)
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(int(calls)):
            tg.start_soon(one, i)
    sys.stdout.write(json.dumps({"pid": os.getpid(), "elapsed": time.monotonic() - started,
                                 "finished_at": time.time(),
                                 "results": results}) + "\n")
    await gate.aclose()


if __name__ == "__main__":
    anyio.run(main)
