"""Redis hiccups under runs that keep their threads in Redis (issue 15, point 3).

Failed before: the thread store shared the caches' circuit breaker, so a cache read
timing out while Redis was stalled made the next thread write fail with "circuit
open" after Redis was answering again, after the tool had already run. Now the store
has its own breaker and retries through a hiccup; a write that still fails says so
with a StoreError, and what the run stored before it stays stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from agentrt import (
    Agent,
    RunFinished,
    Runtime,
    StoreError,
    Tool,
    ToolCallStarted,
    function,
    load_settings,
)
from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply, ToolCall, capture_events

from .support import check_thread

if TYPE_CHECKING:
    from redis_support import RedisServerProcess

    from agentrt import RunResult

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


class Inventory(Tool):
    def __init__(self) -> None:
        self.reads = 0

    @function(read_only=True, ttl=60)
    async def stock(self, item: str) -> dict[str, Any]:
        """Units in stock (slow: an upstream call)."""
        self.reads += 1
        await anyio.sleep(0.3)
        return {"item": item, "units": 5}


class InventoryAgent(Agent):
    model = "claude-test"
    system = "Inventory."
    max_iterations = 4


def model(request: RecordedRequest) -> Reply:
    last = request.body["messages"][-1]["content"]
    if isinstance(last, list) and any(b["type"] == "tool_result" for b in last):
        return Reply(text="5 lamps")
    return Reply(tool_calls=[ToolCall("stock", {"item": "lamp"})])


async def stalled_run(agent: Agent, server: RedisServerProcess, *,
                      stall: float | None) -> RunResult:
    """A run during which Redis is stopped (SIGSTOP) as its tool call starts, and resumed
    (SIGCONT) ``stall`` seconds later (None: left stopped; the caller resumes it)."""
    result: RunResult | None = None
    error: Exception | None = None

    async def resume_later(seconds: float) -> None:
        await anyio.sleep(seconds)
        server.resume()

    async with anyio.create_task_group() as tg:
        try:
            async for event in agent.stream("how many lamps?", thread_id="t1"):
                if isinstance(event, ToolCallStarted):
                    server.pause()
                    if stall is not None:
                        tg.start_soon(resume_later, stall)
                elif isinstance(event, RunFinished):
                    result = event.result
        except Exception as exc:  # raised below, not as a task group's exception group
            error = exc
    if error is not None:
        raise error
    assert result is not None
    return result


async def test_a_stalled_redis_fails_neither_the_run_nor_its_thread(
        redis_server_process: RedisServerProcess) -> None:
    tool = Inventory()
    settings = load_settings(redis_url=redis_server_process.url, thread_store="redis",
                             llm_max_retries=0)  # the defaults: 0.5 s timeout, 1 s retry_after
    try:
        async with FakeAnthropicServer(model) as fake, fake.client() as client, Runtime(
                settings, client=client) as runtime:
            agent = type("Agent", (InventoryAgent,), {"tools": (tool,)})(runtime)
            with capture_events() as logs, anyio.fail_after(30):
                result = await stalled_run(agent, redis_server_process, stall=0.6)
            messages = await runtime.store.messages("t1")
    finally:
        if redis_server_process.paused:
            redis_server_process.resume()
    assert result.text == "5 lamps" and result.stop_reason == "end_turn"
    check_thread(messages)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert tool.reads == 1
    events = [e["event"] for e in logs]
    assert "redis.unavailable" in events  # the caches gave up on Redis, the run did not


async def test_a_store_write_that_still_fails_is_a_store_error_and_loses_nothing(
        redis_server_process: RedisServerProcess) -> None:
    tool = Inventory()
    # eager_tools off: the call starts once the reply is stored, so that the pause at
    # ToolCallStarted falls between the two writes. Eager execution starts it while the
    # reply still streams, and whether the reply's write comes before the pause or after
    # it depends on how the stream's last events arrive (a loaded machine split them).
    settings = load_settings(redis_url=redis_server_process.url, thread_store="redis",
                             llm_max_retries=0, redis_store_retry_for=1.0, thread_lease=1.0,
                             eager_tools=False)
    try:
        async with FakeAnthropicServer(model) as fake, fake.client() as client, Runtime(
                settings, client=client) as runtime:
            agent = type("Agent", (InventoryAgent,), {"tools": (tool,)})(runtime)
            with capture_events(), anyio.fail_after(30), pytest.raises(StoreError) as caught:
                await stalled_run(agent, redis_server_process, stall=None)
            assert "append of thread 't1' failed" in str(caught.value)
            redis_server_process.resume()
            # what the run stored before the failure is there: its user message and the
            # model's tool call (the call's result is what could not be stored)
            stored = await runtime.store.messages("t1")
            assert [m.role for m in stored] == ["user", "assistant"]
            # the thread is usable: the next run answers the dangling call and goes on
            with anyio.fail_after(30):
                again = await agent.run("and now?", thread_id="t1")
            assert again.text == "5 lamps"
            check_thread(await runtime.store.messages("t1"))
    finally:
        if redis_server_process.paused:
            redis_server_process.resume()
