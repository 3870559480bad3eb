"""One OS process of the cross-process single-flight tests.

argv: redis_url prefix calls lease_ttl hold. Counts itself ready in Redis and waits
for the parent's go (so every process starts together), makes ``calls`` concurrent
identical calls of a read (each from its own thread), and prints one JSON line of
results.
The read counts executions in Redis (INCR) so the parent can count them across
processes. The first execution announces its PID and holds the flight open: with
``hold`` a number N, until N other processes wait on it (subscribed to its channel)
and this process's other callers have joined it, so who answers whom does not depend
on the scheduler; with ``hold`` "forever", until a test kills it. A child never waits
longer than ``GIVE_UP`` seconds for anything, so none can outlive a failed test for long.
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

GIVE_UP = 120.0


async def until(condition: Any) -> None:
    """Poll Redis (nothing else crosses the process boundary) until ``await condition()``."""
    with anyio.fail_after(GIVE_UP):
        while not await condition():
            await anyio.sleep(0.01)


class Slow(Tool):
    name = "slow"

    def __init__(self, gate: RedisGate, hold: str) -> None:
        self.gate = gate
        self.hold = hold

    async def _waiters(self) -> int:
        """Processes waiting on a flight of this test: subscribers of its done channels."""
        channels = await self.gate.client.pubsub_channels(self.gate.key("done", "*"))
        counts = await self.gate.client.pubsub_numsub(*channels) if channels else []
        return sum(count for _, count in counts)

    @function(read_only=True, ttl=60)
    async def report(self, day: str) -> dict[str, Any]:
        """A report whose first execution is held open."""
        count = await self.gate.client.incr(self.gate.key("executions"))
        if count == 1:
            await self.gate.client.set(self.gate.key("leader_pid"), os.getpid())
            if self.hold == "forever":
                await anyio.sleep(GIVE_UP)
            else:
                others = int(self.hold)
                await until(lambda: self._waiter_count_is(others))
                await anyio.wait_all_tasks_blocked()  # this process's callers joined too
        return {"day": day, "total": 42}

    async def _waiter_count_is(self, others: int) -> bool:
        return await self._waiters() >= others


async def main() -> None:
    configure_logging(level="warning", fmt="json", stream=sys.stderr)
    url, prefix, calls, lease_ttl, hold = sys.argv[1:6]
    settings = load_settings(thread_store="memory", lease_ttl=float(lease_ttl))
    gate = RedisGate(url, prefix=prefix, timeout=15.0)  # only a hang, not a busy box
    resources = PipelineResources.from_settings(settings, redis=gate)
    handler = build_pipeline(["local_cache", "single_flight", "shared_cache", "shared_flight"],
                             resources, Execute(timeout=60, max_result_chars=10_000))
    processor = ResponseProcessor(handler)
    tools = ToolRegistry([Slow(gate, hold)])
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
    await until(lambda: gate.client.exists(gate.key("go")))  # once all are ready
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
