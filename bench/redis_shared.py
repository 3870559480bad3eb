"""Redis stages: shared-cache hit latency next to a bare GET, and the duplicate-heavy
workload spread over 8 OS processes sharing one Redis.

    python bench/redis_shared.py [--url redis://127.0.0.1:6379/15] [--samples 3000]

(Not bench/redis.py: a script of that name would shadow the redis package.)

Part 1 times, in one process and one run, a plain ``GET`` round trip and a hit of
the shared_cache stage (the same GET plus decoding and checks), then the whole
pipeline path (lookup, validation, call key, stage) for a hit.
Part 2 runs 8 processes at once, each replaying its share of the pipeline
benchmark's workload (20 ms upstream) with the shared stages on, and counts the
upstream executions across all of them (an INCR in Redis) against distinct keys.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import ShopTools, Upstream, _blocks, _context, distinct_keys, workload

from agentrt import load_settings
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

STAGES = ["turn_dedup", "memo", "local_cache", "single_flight", "shared_cache",
          "shared_flight", "batch"]


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def latency(url: str, samples: int) -> list[tuple[str, float, float]]:
    gate = RedisGate(url, prefix=f"bench-{uuid.uuid4().hex[:8]}", timeout=2.0)
    settings = load_settings(thread_store="memory")
    res = PipelineResources.from_settings(settings, redis=gate)
    terminal = Execute(timeout=30, max_result_chars=100_000)
    stage_only = build_pipeline(["shared_cache"], res, terminal)
    processor = ResponseProcessor(stage_only)
    tools = ToolRegistry([ShopTools(Upstream(0.0))])
    ctx = _context("bench")
    block = _blocks([("get_product", {"product_id": 42})], "warm")[0]
    await processor.process(TurnOutcomes([block]), ctx, tools)  # stores it in Redis
    call = await processor.prepare(block, tools, ctx)
    raw_key = gate.key("plain")
    await gate.client.set(raw_key, "x" * 80)
    bare, stage, full = [], [], []
    for _ in range(samples):
        t = time.perf_counter_ns()
        await gate.client.get(raw_key)
        bare.append((time.perf_counter_ns() - t) / 1000)
        t = time.perf_counter_ns()
        outcome = await stage_only(call, ctx)  # type: ignore[arg-type]
        stage.append((time.perf_counter_ns() - t) / 1000)
        assert outcome.source == "shared_cache"
        t = time.perf_counter_ns()
        await processor.process(TurnOutcomes([block]), ctx, tools)
        full.append((time.perf_counter_ns() - t) / 1000)
    keys = [k async for k in gate.client.scan_iter(match=f"{gate.prefix}*")]
    await gate.client.delete(*keys)
    await gate.aclose()
    return [(name, _pct(v, 50), _pct(v, 99)) for name, v in
            (("bare GET round trip", bare), ("shared_cache stage hit", stage),
             ("pipeline hit via shared_cache", full))]


async def child(url: str, prefix: str, index: int, processes: int) -> None:
    configure_logging(level="error", stream=sys.stderr)
    gate = RedisGate(url, prefix=prefix, timeout=2.0)

    class Counted(Upstream):
        async def __call__(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
            await gate.client.incr(gate.key("executions"))
            return await super().__call__(name, args)

    res = PipelineResources.from_settings(load_settings(thread_store="memory"), redis=gate)
    processor = ResponseProcessor(build_pipeline(STAGES, res, Execute(
        timeout=30, max_result_chars=100_000)))
    tools = ToolRegistry([ShopTools(Counted(0.02))])
    runs = workload(100, 7)[index::processes]

    async def one(i: int, run: list[Any]) -> None:
        ctx = _context(f"thr_{index}_{i}")
        for t, turn in enumerate(run):
            await processor.process(TurnOutcomes(_blocks(turn, f"{i}_{t}")), ctx, tools)

    await gate.client.incr(gate.key("ready"))
    while not await gate.client.exists(gate.key("go")):  # start together, imports done
        await anyio.sleep(0.005)
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i, run in enumerate(runs):
            tg.start_soon(one, i, run)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    await gate.client.rpush(gate.key("elapsed_ms"), elapsed_ms)
    await gate.aclose()


async def fleet(url: str, processes: int) -> tuple[int, int, int, float]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    gate = RedisGate(url, prefix=prefix, timeout=2.0)
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(i), "--processes",
                               str(processes), "--url", url, "--prefix", prefix])
             for i in range(processes)]
    while int(await gate.client.get(gate.key("ready")) or 0) < processes:
        await anyio.sleep(0.01)
    await gate.client.set(gate.key("go"), 1)
    for p in procs:
        p.wait(timeout=120)
    wall = max(int(v) for v in await gate.client.lrange(gate.key("elapsed_ms"), 0, -1)) / 1000
    executions = int(await gate.client.get(gate.key("executions")) or 0)
    keys = [k async for k in gate.client.scan_iter(match=f"{prefix}*")]
    if keys:
        await gate.client.delete(*keys)
    await gate.aclose()
    work = workload(100, 7)
    calls = sum(len(t) for run in work for t in run)
    return calls, distinct_keys(work), executions, wall


async def main(args: argparse.Namespace) -> None:
    configure_logging(level="error", stream=sys.stderr)
    rows = await latency(args.url, args.samples)
    base = rows[0][1]
    print(f"shared-cache hit latency, {args.samples} samples, {args.url}")
    print(f"| {'path':<30} | {'p50 us':>7} | {'p99 us':>7} | {'p50 vs GET':>10} |")
    print(f"|{'-' * 32}|{'-' * 9}|{'-' * 9}|{'-' * 12}|")
    for name, p50, p99 in rows:
        print(f"| {name:<30} | {p50:>7.1f} | {p99:>7.1f} | {p50 / base:>10.2f} |")
    calls, distinct, executions, wall = await fleet(args.url, args.processes)
    print(f"\n{args.processes} processes, one Redis, the pipeline workload split between them")
    print(f"| {'tool calls':>10} | {'distinct keys':>13} | {'upstream calls':>14} | "
          f"{'wall s':>6} |  (wall: slowest process, from a common start)")
    print(f"|{'-' * 12}|{'-' * 15}|{'-' * 16}|{'-' * 8}|")
    print(f"| {calls:>10} | {distinct:>13} | {executions:>14} | {wall:>6.2f} |")
    print(json.dumps({"distinct_keys": distinct, "upstream_calls": executions}),
          file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--child", type=int)
    parser.add_argument("--prefix")
    args = parser.parse_args()
    if args.child is not None:
        anyio.run(child, args.url, args.prefix, args.child, args.processes)
    else:
        anyio.run(main, args)
