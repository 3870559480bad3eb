"""One OS process of the cross-process tracing test: a whole agent run whose one tool
call goes through the shared flight, traced by the real SDK in memory.

argv: redis_url prefix. Counts itself ready in Redis, waits for the parent's go, runs,
and prints one JSON line: its spans. The first execution (across both processes) holds
its flight open until another process waits on it, so one leads and one follows
whatever the scheduler does. Nothing waits longer than ``GIVE_UP`` seconds.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

from agentrt import Agent, Runtime, Tool, function, load_settings
from agentrt._redis import RedisGate
from agentrt.log import configure_logging

from .support import Recorder, call_once, span_json

GIVE_UP = 60.0


async def until(condition: Any) -> None:
    with anyio.fail_after(GIVE_UP):
        while not await condition():
            await anyio.sleep(0.01)


class Reports(Tool):
    name = "reports"

    def __init__(self, gate: RedisGate) -> None:
        self.gate = gate

    async def _waiting(self) -> bool:
        channels = await self.gate.client.pubsub_channels(self.gate.key("done", "*"))
        counts = await self.gate.client.pubsub_numsub(*channels) if channels else []
        return sum(count for _, count in counts) >= 1

    @function(read_only=True, public=True, ttl=60)
    async def report(self, day: str) -> dict[str, Any]:
        """A report the first caller computes while the other process waits."""
        if await self.gate.client.incr(self.gate.key("executions")) == 1:
            await until(self._waiting)
        return {"day": day, "total": 42}


async def main() -> None:
    configure_logging(level="warning", fmt="json", stream=sys.stderr)
    url, prefix = sys.argv[1:3]
    gate = RedisGate(url, prefix=prefix, timeout=15.0)
    recorder = Recorder()
    settings = load_settings(thread_store="memory", redis_url=url, redis_prefix=prefix)

    class Reporter(Agent):
        tools = (Reports(gate),)

    async with Runtime(settings, model=call_once("report", {"day": "2026-12-04"}),
                       tracer_provider=recorder.tracer_provider) as runtime:
        agent = Reporter(runtime)
        await gate.client.incr(gate.key("ready"))
        await until(lambda: gate.client.exists(gate.key("go")))
        await agent.run("the report")
    sys.stdout.write(json.dumps({"spans": [span_json(s) for s in recorder.finished()]}) + "\n")
    recorder.shutdown()
    await gate.aclose()


if __name__ == "__main__":
    anyio.run(main)
