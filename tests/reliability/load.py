"""Load and soak: many concurrent runs in one runtime process against the fake Messages
API in another (load_server.py), with peak memory, event-loop lag and open sockets
measured.

    python tests/reliability/load.py load [--runs 500] [--turns 5] [--calls 3]
                                          [--store memory|sqlite|redis] [--no-claims]
    python tests/reliability/load.py soak [--minutes 10] [--rate 20]
    python tests/reliability/load.py claims [--runs 500] [--rounds 3] [--redis-url URL]

``make load`` and ``make soak`` run these; tests/reliability/test_load.py runs a
scaled-down load in CI. ``claims`` measures what holding each run's thread costs
(``ThreadClaims``: the in-process queue, the store's claim, its renewal): CPU
seconds of this process per model turn, on the SQLite and Redis stores, with the
claims and with a no-op in their place, in alternating rounds (the median of each).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

if __name__ == "__main__":  # run as a script: make `reliability` and `processes` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import processes

from agentrt import (
    Agent,
    MemoryThreadStore,
    Runtime,
    Tool,
    configure_logging,
    function,
    load_settings,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from agentrt.thread._store import ThreadStore

HERE = Path(__file__).resolve().parent
# The Redis variant leaves the shared cache stages out: the figure is the store's.
IN_PROCESS_STAGES = ["turn_dedup", "memo", "local_cache", "single_flight", "batch"]


class _Unclaimed:
    """A no-op in place of ``ThreadClaims``: the baseline of ``claims``."""

    class _Claim:
        async def refresh(self) -> None:
            return None

    @asynccontextmanager
    async def hold(self, thread_id: str, holder: str) -> AsyncIterator[Any]:
        yield self._Claim()


class Ledger(Tool):
    """A read-only lookup and a side effect; both counted."""

    def __init__(self) -> None:
        self.lookups = 0
        self.records = 0

    @function(read_only=True, ttl=60)
    async def lookup(self, run: str, turn: int, index: int) -> dict[str, Any]:
        """Look a value up."""
        self.lookups += 1
        await anyio.sleep(0.001)
        return {"run": run, "turn": turn, "index": index, "value": turn * 10 + index}

    @function
    async def record(self, run: str, turn: int) -> str:
        """Record a turn (a side effect)."""
        self.records += 1
        await anyio.sleep(0.001)
        return f"recorded {run}/{turn}"


class LoadAgent(Agent):
    model = "claude-test"
    system = "Look things up and record them."
    max_iterations = 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


@dataclass
class Monitor:
    """Event-loop lag (how late a 10 ms sleep wakes) and peak RSS, sampled together."""

    interval: float = 0.01
    lags: list[float] = field(default_factory=list)
    peak_rss: int = 0

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await anyio.sleep(self.interval)
            self.lags.append(time.perf_counter() - started - self.interval)
            self.peak_rss = max(self.peak_rss, rss_bytes())

    def lag_ms(self) -> dict[str, float]:
        ordered = sorted(self.lags) or [0.0]
        return {"max": round(ordered[-1] * 1000, 1),
                "p99": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 1)}


@asynccontextmanager
async def fake_server(turns: int, calls: int, latency: float) -> AsyncIterator[str]:
    process = processes.popen(
        [sys.executable, str(HERE / "load_server.py"), str(turns), str(calls), str(latency)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = await anyio.to_thread.run_sync(process.stdout.readline)
        assert line.startswith("AGENTRT_FAKE_BASE_URL="), line
        yield line.strip().split("=", 1)[1]
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def check(result: Any, run: str, turns: int) -> None:
    assert result.text == f"done {run}", result.text
    assert result.iterations == turns + 1 and result.stop_reason == "end_turn"


@asynccontextmanager
async def store_settings(store: str, redis_url: str | None) -> AsyncIterator[dict[str, Any]]:
    """Settings for a fresh, empty store of kind ``store``, removed afterwards."""
    if store == "memory":
        yield {"thread_store": "memory"}
    elif store == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield {"thread_store": "sqlite", "sqlite_path": Path(directory) / "threads.db"}
    else:
        import redis.asyncio as aioredis

        prefix = f"agentrt-load-{uuid.uuid4().hex[:12]}"
        try:
            yield {"thread_store": "redis", "redis_url": redis_url, "redis_prefix": prefix,
                   "pipeline": IN_PROCESS_STAGES}
        finally:
            client = aioredis.Redis.from_url(redis_url or "")
            try:
                keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
                for start in range(0, len(keys), 500):
                    await client.delete(*keys[start:start + 500])
            finally:
                await client.aclose()


async def load(runs: int = 500, turns: int = 5, calls: int = 3, latency: float = 0.02, *,
               store: str = "memory", claims: bool = True,
               redis_url: str | None = None) -> dict[str, Any]:
    """``runs`` concurrent runs; returns the measurements (raises if a run is wrong)."""
    import anthropic

    tool = Ledger()
    async with store_settings(store, redis_url) as options, fake_server(
            turns, calls, latency) as base_url, anthropic.AsyncAnthropic(
            base_url=base_url, api_key="test-key", max_retries=0) as client, Runtime(
            load_settings(llm_max_retries=0, **options), client=client,
            store=MemoryThreadStore() if store == "memory" else None) as runtime:
        if not claims:
            runtime.claims = _Unclaimed()  # type: ignore[assignment]
        agent = type("LoadAgent", (LoadAgent,), {"tools": (tool,)})(runtime)
        monitor = Monitor()
        baseline = rss_bytes()
        failures: list[str] = []
        await _warm_up(runtime.store)
        cpu_started = time.process_time()

        async def one(index: int) -> None:
            run = f"r{index}"
            try:
                check(await agent.run(f"Please work on {run}"), run, turns)
            except Exception as exc:
                failures.append(f"{run}: {exc!r}")

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(monitor.run)
            async with anyio.create_task_group() as runs_group:
                for index in range(runs):
                    runs_group.start_soon(one, index)
            tg.cancel_scope.cancel()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        threads = await runtime.store.list_threads(limit=runs + 1)
    assert not failures, failures[:5]
    assert len(threads) == runs
    assert tool.records == runs * turns  # every side effect ran, once
    assert tool.lookups == runs * turns * (calls - 1)  # distinct keys: each ran once
    return {"runs": runs, "turns": turns, "calls_per_turn": calls, "latency_ms": latency * 1000,
            "seconds": round(elapsed, 1), "model_requests": runs * (turns + 1),
            "tool_calls": runs * turns * calls,
            "peak_rss_mb": round(monitor.peak_rss / 2**20, 1),
            "rss_growth_mb": round((monitor.peak_rss - baseline) / 2**20, 1),
            "loop_lag_ms": monitor.lag_ms(), "store": store, "claims": claims,
            "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_turn": round(cpu * 1000 / (runs * (turns + 1)), 3)}


async def _warm_up(store: ThreadStore) -> None:
    """Open the store (a file, a connection) before the clock starts."""
    await store.get_thread("warm-up")


def claims_cost(runs: int, rounds: int, redis_url: str) -> dict[str, Any]:
    """CPU per turn with and without claims, on SQLite and Redis; each load in a fresh
    process (so one's garbage and warm caches do not bill the next), alternating.

    End to end, two identical loads differ by up to 15% of CPU on a shared 2-CPU box
    (how many ready tasks one loop iteration gets depends on what else runs), so the
    claim is also costed directly: ``ThreadClaims.hold`` (queue, claim, release) per
    run and one batched renewal per claim per ``lease / 3`` of the load's duration,
    measured in this process on the same store, against the CPU of a run without
    claims (``accounted_overhead_pct``)."""
    samples: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    for _ in range(rounds):
        for store in ("sqlite", "redis"):
            for claims in (True, False):
                command = [sys.executable, __file__, "load", "--runs", str(runs),
                           "--store", store, "--redis-url", redis_url]
                if not claims:
                    command.append("--no-claims")
                out = subprocess.run(command, check=True, capture_output=True, text=True)
                report = json.loads(out.stdout.strip().splitlines()[-1])
                key = f"{store}/{'claims' if claims else 'none'}"
                samples.setdefault(key, []).append(report["cpu_ms_per_turn"])
                seconds.setdefault(key, []).append(report["seconds"])
    result: dict[str, Any] = {"runs": runs, "rounds": rounds, "samples_ms": samples}
    lease = load_settings().thread_lease
    for store in ("sqlite", "redis"):
        with_claims = statistics.median(samples[f"{store}/claims"])
        without = statistics.median(samples[f"{store}/none"])
        hold_ms, renew_ms = anyio.run(_claim_cost, store, redis_url, runs)
        sweeps = statistics.median(seconds[f"{store}/claims"]) / (lease / 3)
        per_run = hold_ms + sweeps * renew_ms
        result[store] = {"cpu_ms_per_turn_with": with_claims,
                         "cpu_ms_per_turn_without": without,
                         "overhead_pct": round((with_claims / without - 1) * 100, 1),
                         "claim_cpu_ms_per_run": round(per_run, 3),
                         "accounted_overhead_pct": round(per_run / (without * 6) * 100, 2)}
    return result


async def _claim_cost(store: str, redis_url: str, runs: int) -> tuple[float, float]:
    """CPU ms of one uncontended ``hold`` (median of 5 x ``runs``), and of renewing one
    claim in a batch of ``runs``."""
    from agentrt.thread._claims import ThreadClaims

    holds: list[float] = []
    renewals: list[float] = []
    async with store_settings(store, redis_url) as options, anthropic_free_runtime(
            options) as runtime:
        await _warm_up(runtime.store)
        claims = ThreadClaims(runtime.store, lease=runtime.settings.thread_lease)
        for round_ in range(5):
            started = time.process_time()
            for n in range(runs):
                async with claims.hold(f"h{round_}-{n}", f"run{n}"):
                    pass
            holds.append((time.process_time() - started) * 1000 / runs)
            held = [(f"r{round_}-{n}", f"run{n}") for n in range(runs)]
            for thread_id, holder in held:
                await runtime.store.claim(thread_id, holder, lease=60)
            started = time.process_time()
            await runtime.store.renew_claims(held, lease=60)
            renewals.append((time.process_time() - started) * 1000 / runs)
    return statistics.median(holds), statistics.median(renewals)


@asynccontextmanager
async def anthropic_free_runtime(options: dict[str, Any]) -> AsyncIterator[Runtime]:
    import anthropic

    async with anthropic.AsyncAnthropic(base_url="http://127.0.0.1:1", api_key="unused",
                                        max_retries=0) as client, Runtime(
            load_settings(**options), client=client) as runtime:
        yield runtime


async def soak(minutes: float = 10.0, rate: float = 20.0, turns: int = 2,
               calls: int = 3) -> dict[str, Any]:
    """Runs started at a steady ``rate`` per second for ``minutes``; RSS and open sockets
    sampled every few seconds. Growth is judged from the first quarter (warmed up) to
    the last quarter of the soak."""
    import anthropic

    tool = Ledger()
    settings = load_settings(thread_store="memory", llm_max_retries=0)
    samples: list[tuple[float, int, int]] = []
    failures: list[str] = []
    done = 0
    async with fake_server(turns, calls, 0.02) as base_url, anthropic.AsyncAnthropic(
            base_url=base_url, api_key="test-key", max_retries=0) as client, Runtime(
            settings, client=client, store=MemoryThreadStore()) as runtime:
        agent = type("LoadAgent", (LoadAgent,), {"tools": (tool,)})(runtime)
        monitor = Monitor()
        deadline = time.perf_counter() + minutes * 60

        async def one(index: int) -> None:
            nonlocal done
            run = f"s{index}"
            try:
                result = await agent.run(f"Please work on {run}")
                check(result, run, turns)
                await runtime.store.delete_thread(result.thread_id)  # keep the store flat
                done += 1
            except Exception as exc:
                failures.append(f"{run}: {exc!r}")

        async def sample() -> None:
            while True:
                samples.append((time.perf_counter(), rss_bytes(), open_sockets()))
                await anyio.sleep(max(1.0, minutes * 60 / 40))

        async with anyio.create_task_group() as tg:
            tg.start_soon(monitor.run)
            tg.start_soon(sample)
            async with anyio.create_task_group() as runs_group:
                index = 0
                while time.perf_counter() < deadline:
                    runs_group.start_soon(one, index)
                    index += 1
                    await anyio.sleep(1 / rate)
            tg.cancel_scope.cancel()
    quarter = max(1, len(samples) // 4)
    early, late = samples[quarter: 2 * quarter], samples[-quarter:]
    rss = (max(s[1] for s in early), max(s[1] for s in late))
    sockets = (max(s[2] for s in early), max(s[2] for s in late))
    return {"minutes": minutes, "runs": done, "failures": len(failures),
            "rss_mb_early_late": [round(r / 2**20, 1) for r in rss],
            "sockets_early_late": list(sockets), "loop_lag_ms": monitor.lag_ms(),
            "first_failures": failures[:3]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="load.py")
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("load")
    one.add_argument("--runs", type=int, default=500)
    one.add_argument("--turns", type=int, default=5)
    one.add_argument("--calls", type=int, default=3)
    one.add_argument("--latency", type=float, default=0.02)
    one.add_argument("--store", choices=["memory", "sqlite", "redis"], default="memory")
    one.add_argument("--no-claims", action="store_true")
    one.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    three = sub.add_parser("claims")
    three.add_argument("--runs", type=int, default=500)
    three.add_argument("--rounds", type=int, default=3)
    three.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    two = sub.add_parser("soak")
    two.add_argument("--minutes", type=float, default=10.0)
    two.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args(argv)
    configure_logging("warning", "json", sys.stderr)
    if args.what == "load":
        report = anyio.run(lambda: load(args.runs, args.turns, args.calls, args.latency,
                                        store=args.store, claims=not args.no_claims,
                                        redis_url=args.redis_url))
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    if args.what == "claims":
        sys.stdout.write(json.dumps(claims_cost(args.runs, args.rounds, args.redis_url)) + "\n")
        return 0
    report = anyio.run(soak, args.minutes, args.rate)
    sys.stdout.write(json.dumps(report) + "\n")
    rss_early, rss_late = report["rss_mb_early_late"]
    sockets_early, sockets_late = report["sockets_early_late"]
    grew = rss_late > rss_early * 1.2 + 20 or sockets_late > sockets_early + 20
    ok = not report["failures"] and not grew
    sys.stdout.write(("soak: OK" if ok else "soak: FAILED (growth or failures)") + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
