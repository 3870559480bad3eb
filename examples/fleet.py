"""Fleet: four agent processes sharing one Redis.

Each worker is its own OS process running the same conversation (two forecasts,
then a climate report; each upstream call takes half a second):

- process 1 runs it alone: every call goes upstream, and the results land in the
  shared cache (Redis);
- process 2 starts afterwards with nothing in memory: the ``shared_cache`` stage
  answers every call with process 1's results;
- processes 3 and 4 start together, for another account (tenants never share
  results): each call runs once between them; the other process joins it while it
  is in flight (``shared_flight``: a Redis lease, the outcome published to waiters).

Run it (offline on the fake Messages API server unless ANTHROPIC_API_KEY is set)::

    python examples/fleet.py          # Redis at AGENTRT_REDIS_URL, else redis://127.0.0.1:6379

The keys live under a fresh prefix per run and are deleted at the end. With
AGENTRT_REDIS_CLUSTER=true the same runs on a Redis Cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import redis.asyncio as aioredis
from anyio.streams.buffered import BufferedByteReceiveStream
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from agentrt import Agent, Tool, configure_logging, function, load_settings
from agentrt.testing import runtime_or_replay, show_run

if TYPE_CHECKING:
    from anyio.abc import Process

TASK = "Give me the forecast for Paris and Oslo, and this month's Nordic climate report."
DEFAULT_REDIS = "redis://127.0.0.1:6379"
UPSTREAM_SECONDS = 0.5


class Climate(Tool):
    """A slow weather service (half a second a call), simulated."""

    name = "climate"

    @function(read_only=True, ttl=300)
    async def forecast(self, city: str) -> dict[str, Any]:
        """Tomorrow's forecast for a city.

        Args:
            city: City name.
        """
        await anyio.sleep(UPSTREAM_SECONDS)
        return {"city": city, "sky": "clear" if city == "Oslo" else "showers", "high_c": 12}

    @function(read_only=True, ttl=300)
    async def climate_report(self, region: str) -> dict[str, Any]:
        """This month's climate report for a region.

        Args:
            region: Region name, like "Nordics".
        """
        await anyio.sleep(UPSTREAM_SECONDS)
        return {"region": region, "anomaly_c": 1.4, "precipitation_pct": 112}


class FleetAgent(Agent):
    system = "You report weather and climate. Be brief."
    tools = (Climate,)
    max_iterations = 5


# -- a worker process ------------------------------------------------------------------


async def worker(account: str) -> None:
    """Set up, say ready, wait for the parent's go (so processes start together), run."""
    async with runtime_or_replay(REPLIES) as runtime:  # AGENTRT_REDIS_URL/_PREFIX from the parent
        agent = FleetAgent(runtime, identity={"account": account})
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.readline)
        started = time.monotonic()
        result = await show_run(agent, TASK, quiet=True)
        sys.stdout.write(json.dumps({"pid": os.getpid(), "account": account,
                                     "seconds": time.monotonic() - started,
                                     **result.stats.to_json()}) + "\n")


# -- the parent --------------------------------------------------------------------------


class Worker:
    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdout is not None
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def line(self) -> str:
        return (await self.lines.receive_until(b"\n", 65536)).decode()

    async def go(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(b"go\n")


async def _start(account: str, env: dict[str, str]) -> Worker:
    process = await anyio.open_process(
        [sys.executable, __file__, "--worker", account], env=env, stderr=None)
    worker = Worker(process)
    ready = await worker.line()
    if ready.strip() != "ready":
        raise SystemExit(f"fleet: a worker failed to start: {ready!r}")
    return worker


async def _run_together(workers: list[Worker]) -> list[dict[str, Any]]:
    for w in workers:
        await w.go()
    results = [json.loads(await w.line()) for w in workers]
    for w in workers:
        await w.process.wait()
    return results


def _row(number: int, r: dict[str, Any], note: str) -> str:
    hits = ", ".join(f"{k} {v}" for k, v in sorted(r["hits"].items())) or "none"
    return (f"  process {number}  pid {r['pid']:<7} account {r['account']:<7} "
            f"{r['tool_calls']} tool calls, {r['executed']} upstream, answered by: "
            f"{hits:<18} {r['seconds']:.2f} s{note}")


def _redis_client(url: str, cluster: bool) -> Any:
    if cluster:
        return RedisCluster.from_url(url, socket_connect_timeout=2)
    return aioredis.Redis.from_url(url, socket_connect_timeout=2)


async def fleet() -> int:
    configure_logging(level="error", stream=sys.stderr)
    url = os.environ.get("AGENTRT_REDIS_URL") or DEFAULT_REDIS
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 6379}"  # no password in the output
    cluster = load_settings(redis_url=url).redis_cluster
    redis = _redis_client(url, cluster)
    try:
        await redis.ping()
    except (RedisError, RedisClusterException, OSError) as exc:
        sys.stderr.write(f"fleet: this example needs Redis, and none answers at {where} "
                         f"({type(exc).__name__}: {exc}). Start one (redis-server) or set "
                         "AGENTRT_REDIS_URL.\n")
        await redis.aclose()
        return 2
    prefix = f"agentrt-fleet-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AGENTRT_REDIS_URL": url, "AGENTRT_REDIS_PREFIX": prefix}
    print(f"fleet: 4 agent processes sharing Redis at {where} (keys under {prefix}:)")
    try:
        workers: dict[int, Worker] = {}
        accounts = {1: "acme", 2: "acme", 3: "globex", 4: "globex"}

        async def start(number: int) -> None:
            workers[number] = await _start(accounts[number], env)

        async with anyio.create_task_group() as tg:  # start-up (imports) overlaps
            for number in accounts:
                tg.start_soon(start, number)
        first = await _run_together([workers[1]])
        second = await _run_together([workers[2]])
        together = await _run_together([workers[3], workers[4]])
    finally:
        async for key in redis.scan_iter(match=f"{prefix}:*"):
            await redis.delete(key)
        await redis.aclose()
    print(_row(1, first[0], "  alone: runs every call"))
    print(_row(2, second[0], "  afterwards: process 1's results, from Redis"))
    print(_row(3, together[0], "  } started together: each call runs once,"))
    print(_row(4, together[1], "  } the other process joins it in flight"))
    results = [*first, *second, *together]
    calls = sum(r["tool_calls"] for r in results)
    upstream = sum(r["executed"] for r in results)
    print(f"total: {calls} tool calls, {upstream} upstream calls ({calls} with the pipeline off)")
    return 0


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"tool_calls": [{"name": "forecast", "input": {"city": "Paris"}},
                    {"name": "forecast", "input": {"city": "Oslo"}}]},
    {"tool_calls": [{"name": "climate_report", "input": {"region": "Nordics"}}]},
    {"text": "Paris: showers, 12 °C. Oslo: clear, 12 °C. The Nordics ran 1.4 °C warmer than "
             "normal this month, with 112% of the usual rain."},
]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", metavar="ACCOUNT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        anyio.run(worker, args.worker)
    else:
        raise SystemExit(anyio.run(fleet))
