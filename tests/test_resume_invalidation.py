"""A thread resumed after a crash: a side effect of unknown outcome invalidates like one
that ran, in the local cache and in the shared (Redis) one, before anything is re-run.

Regression: only the memo forgot what such a write invalidates, so a read cached before
the crash (here or in Redis) answered the resumed run with the value the write changed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from agentrt import Agent, MemoryThreadStore, Message, Runtime, Tool, function, load_settings
from agentrt.testing import FakeAnthropicServer, Reply, ToolUse

if TYPE_CHECKING:
    from redis_support import GateFactory

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio


class Stock(Tool):
    def __init__(self) -> None:
        self.level = 5
        self.reads = 0
        self.reserved = 0

    @function(read_only=True, ttl=300, cache_tags=("stock",))
    async def get_stock(self, sku: str) -> dict[str, Any]:
        """How many of an item are left."""
        self.reads += 1
        return {"sku": sku, "level": self.level}

    @function(invalidates=("stock",))
    async def reserve(self, sku: str) -> str:
        """Reserves one item."""
        self.reserved += 1
        self.level -= 1
        return "reserved"


class StockAgent(Agent):
    system = "You keep the stock."
    max_iterations = 5


def _read() -> list[Reply]:
    return [Reply(tool_calls=[ToolUse("get_stock", {"sku": "lamp"})]), Reply(text="noted")]


@pytest.mark.parametrize("resumed_by", ["the caching runtime", "a runtime on Redis alone"])
async def test_a_write_of_unknown_outcome_invalidates_every_cache_on_resume(
        resumed_by: str, redis_url: str, redis_prefix: str, redis_gate: GateFactory) -> None:
    tool = Stock()
    StockAgent.tools = (tool,)
    store = MemoryThreadStore()
    settings = load_settings(redis_url=redis_url, redis_prefix=redis_prefix,
                             thread_store="memory")
    redis_gate()  # deletes the test's keys afterwards
    async with FakeAnthropicServer(_read() + _read()) as server, server.client() as client, \
            Runtime(settings, client=client, store=store) as first, \
            Runtime(settings, client=client, store=store) as second:
        await StockAgent(first).run("how many lamps?")  # cached here and in Redis: 5
        # A process reserved a lamp, then died before storing the call's result.
        crashed = await store.create_thread()
        await store.append(crashed.id, [
            Message(role="user", content="reserve a lamp"),
            Message(role="assistant", content=[{"type": "tool_use", "id": "toolu_r",
                                                "name": "reserve", "input": {"sku": "lamp"}}]),
        ])
        tool.level, tool.reserved = 4, 1
        # the first runtime holds the read in its local cache; the second only in Redis
        runtime = first if resumed_by == "the caching runtime" else second
        result = await StockAgent(runtime).run("and now?", thread_id=crashed.id)
        sent = server.requests[-1].body["messages"]
    assert result.text == "noted" and tool.reserved == 1  # the write is not repeated
    answer = next(b for b in sent[-1]["content"] if b["type"] == "tool_result")
    assert json.loads(answer["content"]) == {"sku": "lamp", "level": 4}
    assert tool.reads == 2
