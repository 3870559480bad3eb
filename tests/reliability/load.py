"""Load and soak: many concurrent runs in one runtime process against the fake Messages
API in another (load_server.py), with peak memory, event-loop lag and open sockets
measured.

    python tests/reliability/load.py load [--runs 500] [--turns 5] [--calls 3]
    python tests/reliability/load.py soak [--minutes 10] [--rate 20]

``make load`` and ``make soak`` run these; tests/reliability/test_load.py runs a
scaled-down load in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
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

HERE = Path(__file__).resolve().parent


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


async def load(runs: int = 500, turns: int = 5, calls: int = 3,
               latency: float = 0.02) -> dict[str, Any]:
    """``runs`` concurrent runs; returns the measurements (raises if a run is wrong)."""
    import anthropic

    tool = Ledger()
    settings = load_settings(thread_store="memory", llm_max_retries=0)
    async with fake_server(turns, calls, latency) as base_url, anthropic.AsyncAnthropic(
            base_url=base_url, api_key="test-key", max_retries=0) as client, Runtime(
            settings, client=client, store=MemoryThreadStore()) as runtime:
        agent = type("LoadAgent", (LoadAgent,), {"tools": (tool,)})(runtime)
        monitor = Monitor()
        baseline = rss_bytes()
        failures: list[str] = []

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
            "loop_lag_ms": monitor.lag_ms()}


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
    two = sub.add_parser("soak")
    two.add_argument("--minutes", type=float, default=10.0)
    two.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args(argv)
    configure_logging("warning", "json", sys.stderr)
    if args.what == "load":
        report = anyio.run(load, args.runs, args.turns, args.calls, args.latency)
        sys.stdout.write(json.dumps(report) + "\n")
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
