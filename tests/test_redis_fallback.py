"""Redis failing under a running agent: the run finishes on the in-process layers,
one warning, and the shared stages come back by themselves when Redis does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from agentrt import Agent, MemoryThreadStore, Runtime, Tool, function, load_settings
from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply, ToolUse, capture_events

if TYPE_CHECKING:
    from redis_support import RedisServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


class Forecasts(Tool):
    def __init__(self) -> None:
        self.calls: list[str] = []

    @function(read_only=True, ttl=60)
    async def forecast(self, city: str) -> dict[str, Any]:
        """Tomorrow's forecast."""
        self.calls.append(city)
        return {"city": city, "sky": "clear"}


class ForecastAgent(Agent):
    system = "Forecasts."
    max_iterations = 10


def _call(city: str) -> Reply:
    return Reply(tool_calls=[ToolUse("forecast", {"city": city})])


async def _run(server_proc: RedisServerProcess, steps: Any, tool: Forecasts, *,
               retry_after: float = 0.3) -> tuple[Any, Any]:
    ForecastAgent.tools = (tool,)
    settings = load_settings(redis_url=server_proc.url, thread_store="memory",
                             redis_timeout=0.2, redis_retry_after=retry_after)
    async with FakeAnthropicServer(steps) as fake, fake.client() as client, Runtime(
            settings, client=client, store=MemoryThreadStore()) as runtime:
        with capture_events() as logs:
            result = await ForecastAgent(runtime).run("forecasts please")
        assert runtime.redis is not None
        if server_proc.paused:
            server_proc.resume()
        stored = [k async for k in runtime.redis.client.scan_iter(match="agentrt:v:*")]
        return result, (logs, fake.requests, stored)


def _results(request: RecordedRequest) -> list[dict[str, Any]]:
    return [b for b in request.body["messages"][-1]["content"] if b["type"] == "tool_result"]


async def test_redis_stopped_and_restarted_mid_run(
        redis_server_process: RedisServerProcess) -> None:
    script = [_call("Paris"), _call("Oslo"), _call("Rome"), _call("Lima"), Reply(text="done")]

    async def responder(request: RecordedRequest) -> Reply:
        index = sum(1 for m in request.body["messages"] if m["role"] == "assistant")
        if index == 1:
            redis_server_process.stop()  # Redis goes down between two turns
        if index == 3:
            redis_server_process.start()  # ... and comes back
            await anyio.sleep(0.4)  # past redis_retry_after
        return script[index]

    tool = Forecasts()
    result, (logs, requests, stored) = await _run(redis_server_process, responder, tool)
    assert result.text == "done" and result.stop_reason == "end_turn"
    assert tool.calls == ["Paris", "Oslo", "Rome", "Lima"]
    contents = [json.loads(_results(r)[0]["content"])["city"] for r in requests[1:]]
    assert contents == ["Paris", "Oslo", "Rome", "Lima"]  # right results throughout
    events = [e["event"] for e in logs]
    assert events.count("redis.unavailable") == 1
    assert events.count("redis.recovered") == 1
    assert len(stored) >= 1  # the shared stages write again after the restart


async def test_a_stalled_redis_costs_a_timeout_not_a_hang(
        redis_server_process: RedisServerProcess) -> None:
    async def responder(request: RecordedRequest) -> Reply:
        index = sum(1 for m in request.body["messages"] if m["role"] == "assistant")
        if index == 0:
            redis_server_process.pause()  # SIGSTOP: the port is open, nothing answers
        return [_call("Paris"), _call("Paris"), Reply(text="done")][index]

    tool = Forecasts()
    try:
        with anyio.fail_after(40):  # the 0.2 s timeouts, however busy the machine: no hang
            result, (logs, _, _) = await _run(redis_server_process, responder, tool,
                                              retry_after=30)
    finally:
        if redis_server_process.paused:
            redis_server_process.resume()
    assert result.text == "done" and tool.calls == ["Paris"]  # the memo answered the repeat
    assert [e["event"] for e in logs].count("redis.unavailable") == 1
