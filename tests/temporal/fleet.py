"""The agent the Temporal tests run on worker processes (``agentrt worker
tests/temporal/fleet.py:FleetAgent ...``) and in process.

Its tools record every execution in Redis (``FLEET_PREFIX``), so that the test sees
what ran on which worker, even on a worker it killed: each record is pushed to
``<prefix>:log`` (all of them) and ``<prefix>:signal`` (the test waits on it with
BLPOP). ``FLEET_HANG`` names a function whose first call in the fleet hangs after
recording its start (its worker is killed there): ``ship`` hangs before its effect,
``slow_check`` mid-read.
"""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
import redis.asyncio as aioredis

from agentrt import Agent, Tool, function

REDIS_URL = "redis://127.0.0.1:6379/0"


async def record(function_name: str, phase: str, **fields: Any) -> None:
    prefix = os.environ["FLEET_PREFIX"]
    entry = json.dumps({"fn": function_name, "phase": phase, "pid": os.getpid(), **fields})
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.rpush(f"{prefix}:log", entry)
        await client.rpush(f"{prefix}:signal", entry)
    finally:
        await client.aclose()


async def hangs(function_name: str) -> bool:
    """Whether this call is the first of ``FLEET_HANG`` in the whole fleet (whichever
    worker runs it): decided before its start is recorded, so the worker the test kills
    on seeing that record is the one that hangs."""
    if os.environ.get("FLEET_HANG") != function_name:
        return False
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return bool(await client.set(f"{os.environ['FLEET_PREFIX']}:hung", "1", nx=True))
    finally:
        await client.aclose()


async def records(prefix: str) -> list[dict[str, Any]]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return [json.loads(item) for item in await client.lrange(f"{prefix}:log", 0, -1)]
    finally:
        await client.aclose()


class Warehouse(Tool):
    @function(read_only=True, ttl=300, public=True)
    async def stock(self, item: str) -> dict[str, Any]:
        """Units in stock.

        Args:
            item: The item's name.
        """
        await record("stock", "effect", item=item)
        return {"item": item, "units": 3}

    @function(read_only=True, ttl=300, public=True)
    async def slow_check(self, item: str) -> str:
        """A slow read-only check of an item.

        Args:
            item: The item's name.
        """
        hang = await hangs("slow_check")
        await record("slow_check", "start", item=item)
        if hang:
            await anyio.sleep_forever()
        await anyio.sleep(float(os.environ.get("FLEET_SLOW", "0")))
        await record("slow_check", "effect", item=item)
        return f"{item} checked"

    @function(read_only=True)
    async def order_status(self, item: str) -> str:
        """Whether an item has shipped.

        Args:
            item: The item's name.
        """
        shipped = any(r["fn"] == "ship" and r["phase"] == "effect" and r["item"] == item
                      for r in await records(os.environ["FLEET_PREFIX"]))
        return "shipped" if shipped else "not shipped"

    @function
    async def ship(self, item: str) -> str:
        """Ship an item: a side effect.

        Args:
            item: The item's name.
        """
        hang = await hangs("ship")
        await record("ship", "start", item=item)
        if hang:
            await anyio.sleep_forever()
        await record("ship", "effect", item=item)
        return f"shipped {item}"

    @function(requires_approval=True, approval_reason="money leaves the shop")
    async def refund(self, item: str) -> str:
        """Refund an item: needs a person's approval.

        Args:
            item: The item's name.
        """
        await record("refund", "effect", item=item)
        return f"refunded {item}"


class FleetAgent(Agent):
    model = "claude-test"
    system = "Ship what you are asked to, once each."
    tools = (Warehouse,)
    max_iterations = 12
