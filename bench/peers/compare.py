"""agentrt beside what users would pick instead, on the same fake Messages API, in one run.

Contenders: a hand-written loop on ``anthropic.AsyncAnthropic`` (the floor), agentrt (pipeline
on and off), pydantic-ai, the anthropic SDK's ``beta.messages.tool_runner`` and LangGraph's
prebuilt ReAct agent on langchain-anthropic. The fake server (``server.py``) runs in its own
process, so its CPU does not count against anyone; each measurement runs in a fresh
contender process (``child.py``). Every table prints ratios to the floor.

    python bench/peers/compare.py                  # all four workloads, the issue's sizes
    python bench/peers/compare.py --workloads 1,4  # some of them
    python bench/peers/compare.py --quick          # scaled down (a smoke run)

1. overhead per model turn: 200 runs x 5 tool turns x 2 calls + the answer, zero latency
2. duplicate-heavy runs: 50 concurrent, 5-20 repeated reads each, 20 ms upstream
3. concurrency: 1, 10, 100, 1,000 concurrent runs, 50 ms model latency
4. many tools: 100 (and 10) available, the task needs 3: time to first request, its size
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


@dataclass(frozen=True)
class Row:
    label: str
    module: str
    flags: tuple[str, ...] = ()


FLOOR = Row("hand-written loop (floor)", "handwritten")
AGENTRT_ON = Row("agentrt, pipeline on", "agentrt_agent")
AGENTRT_OFF = Row("agentrt, pipeline off", "agentrt_agent", ("--variant", "off"))
PEERS = [Row("pydantic-ai", "pydanticai_agent"),
         Row("anthropic SDK tool_runner", "sdk_tool_runner"),
         Row("LangGraph prebuilt ReAct", "langgraph_agent")]
TURN_ROWS = [FLOOR, AGENTRT_ON, AGENTRT_OFF, *PEERS]
INFO_ROWS = [Row("hand-written loop, streaming", "handwritten", ("--variant", "stream")),
             Row("agentrt, pipeline on, streaming (its default)", "agentrt_agent",
                 ("--variant", "stream"))]
CACHE_ROWS = [
    Row("hand-written, no cache (floor)", "handwritten"),
    Row("hand-written + async-lru alru_cache", "handwritten", ("--cache",)),
    Row("agentrt, pipeline on", "agentrt_agent"),
    Row("agentrt, pipeline off (no cache)", "agentrt_agent", ("--variant", "off")),
    Row("pydantic-ai + cashews @cache", "pydanticai_agent", ("--cache",)),
    Row("SDK tool_runner + cashews @cache", "sdk_tool_runner", ("--cache",)),
    Row("LangGraph ReAct + cashews @cache", "langgraph_agent", ("--cache",)),
]
MANY_ROWS = [
    Row("hand-written, all tools (floor)", "handwritten"),
    Row("hand-written + API tool search", "handwritten", ("--search",)),
    Row("agentrt JIT (deferred, the default)", "agentrt_agent", ("--variant", "jit")),
    Row("agentrt JIT, server_search", "agentrt_agent", ("--variant", "jit-server_search")),
    Row("agentrt JIT, append", "agentrt_agent", ("--variant", "jit-append")),
    Row("agentrt eager", "agentrt_agent"),
    Row("pydantic-ai, all tools", "pydanticai_agent"),
    Row("pydantic-ai + ToolSearch (defer_loading)", "pydanticai_agent", ("--search",)),
    Row("SDK tool_runner, all tools", "sdk_tool_runner"),
    Row("SDK tool_runner + API tool search", "sdk_tool_runner", ("--search",)),
    Row("LangGraph ReAct, all tools", "langgraph_agent"),
]


class Server:
    """server.py in its own process, for the whole run."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, str(HERE / "server.py")],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("AGENTRT_FAKE_BASE_URL="):
            self.process.kill()
            raise SystemExit(f"the fake server did not start: {line!r}")
        self.url = line.split("=", 1)[1]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def measure(server: Server, mode: str, row: Row, *options: object) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "child.py"), mode, "--contender", row.module,
               "--base-url", server.url, *row.flags, *map(str, options)]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "AGENTRT_LOG_LEVEL": "warning"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 600 s"}
    results = [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not results:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail[:300]}"}
    result: dict[str, Any] = json.loads(results[-1])
    return result


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}x" if value / base >= 0.1 else f"{value / base:.3f}x"


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def status(result: dict[str, Any]) -> str:
    error = result.get("error")
    return "ok" if not error else f"FAILED: {error}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


# -- workload 1 --------------------------------------------------------------------------

def best(results: list[dict[str, Any]], key: Callable[[dict[str, Any]], float | None]
         ) -> float | None:
    """The lowest of the repeated figures: load on the machine only ever adds time."""
    values = [v for v in map(key, results) if v is not None]
    return min(values) if values else None


def median(results: list[dict[str, Any]], key: Callable[[dict[str, Any]], float | None]
           ) -> float | None:
    """The median of the repeated figures: with the contenders' blocks interleaved, a
    burst of load falls on all of them alike, and the median is robust to one."""
    values = [v for v in map(key, results) if v is not None]
    return statistics.median(values) if values else None


def errors(results: list[dict[str, Any]]) -> str:
    failed = [r["error"] for r in results if r.get("error")]
    return "ok" if not failed else f"FAILED: {failed[0]}"


def workload_1(server: Server, args: argparse.Namespace) -> None:
    blocks = args.w1_blocks
    runs = args.w1_runs // blocks
    results: dict[Row, list[dict[str, Any]]] = {row: [] for row in [*TURN_ROWS, *INFO_ROWS]}
    for block in range(blocks):  # round-robin, so a burst of load hits every contender alike
        for row in results:
            progress(f"workload 1: {row.label}, block {block + 1} of {blocks}")
            results[row].append(measure(server, "turns", row, "--workload", "w1",
                                        "--runs", runs))
    turns = runs * blocks * 6
    print(f"\n### 1. Framework overhead per model turn\n\n{runs * blocks} runs x (5 turns of 2 "
          f"tool calls + the final answer) = {turns:,} model turns per contender, one run at a "
          f"time, zero model latency, no repeated call, in {blocks} blocks of {runs} runs (a "
          "fresh process each, the contenders taking turns). CPU: the contender process's "
          "`time.process_time()`, the median of the blocks; *spread*: worst block over best. "
          "The fake server's own CPU is shown apart.\n")

    def per_turn(key: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda r: r[key] / r["turns"] * 1000 if key in r and r.get("turns") else None

    cpu = {row: median(rs, per_turn("cpu")) for row, rs in results.items()}
    wall = {row: median(rs, per_turn("wall")) for row, rs in results.items()}
    rows = []
    for row, rs in results.items():
        blocks = [v for v in map(per_turn("cpu"), rs) if v is not None]
        spread = max(blocks) / min(blocks) if blocks and min(blocks) else None
        rows.append([row.label, fmt(cpu[row], ".3f"), ratio(cpu[row], cpu[FLOOR]),
                     fmt(spread, ".2f"), fmt(wall[row], ".3f"), ratio(wall[row], wall[FLOOR]),
                     fmt(best(rs, per_turn("server_cpu")), ".3f"), errors(rs)])
    table(["contender", "CPU ms/turn", "vs floor", "spread", "wall ms/turn", "vs floor",
           "server CPU ms/turn", "status"], rows)
    ours, base = cpu[AGENTRT_ON], cpu[FLOOR]
    if ours and base:
        print(f"\nTarget: agentrt (pipeline on) at most 1.10x the floor's CPU per turn: "
              f"{ours / base:.2f}x, {verdict(ours / base <= 1.10)}; ahead of every framework: "
              f"{verdict(all(ours < (cpu[p] or float('inf')) for p in PEERS))}.")


# -- workload 2 --------------------------------------------------------------------------

def workload_2(server: Server, args: argparse.Namespace) -> None:
    from workload import distinct_keys, duplicate_runs

    runs = args.w2_runs
    results: dict[Row, list[dict[str, Any]]] = {row: [] for row in CACHE_ROWS}
    for round_ in range(args.w2_rounds):
        for row in CACHE_ROWS:
            progress(f"workload 2: {row.label}, round {round_ + 1} of {args.w2_rounds}")
            results[row].append(measure(server, "duplicates", row, "--runs", runs,
                                        "--concurrency", runs,
                                        "--upstream-latency", args.w2_upstream))
    script = duplicate_runs(runs, 7)
    calls = sum(len(t) for run in script for t in run)
    keys = distinct_keys(script)
    print(f"\n### 2. Duplicate-heavy runs\n\n{runs} concurrent runs, {calls} tool calls "
          f"(5-20 per run, repeating two products and one user), {keys} distinct keys, "
          f"{args.w2_upstream * 1000:.0f} ms upstream per executed call, zero model latency. "
          f"Each contender with its own best cache; best of {args.w2_rounds} rounds (fresh "
          "processes, the contenders taking turns). Upstream calls: the most seen in any "
          "round.\n")

    def get(key: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda r: r.get(key)

    wall = {row: best(rs, get("wall")) for row, rs in results.items()}
    upstream = {row: max((r["upstream_calls"] for r in rs if "upstream_calls" in r), default=None)
                for row, rs in results.items()}
    floor = CACHE_ROWS[0]
    rows = []
    for row, rs in results.items():
        rows.append([row.label, fmt(upstream[row], "d"), ratio(upstream[row], keys),
                     fmt(wall[row], ".3f"), ratio(wall[row], wall[floor]),
                     fmt(best(rs, get("cpu")), ".3f"), errors(rs)])
    table(["contender", "upstream calls", "vs distinct keys", "wall s", "vs floor", "CPU s",
           "status"], rows)
    ours = CACHE_ROWS[2]
    measured = {row: w for row, w in wall.items() if w is not None}
    fastest = min(measured, key=lambda r: measured[r]) if measured else None
    if wall[ours] is not None and fastest is not None:
        print(f"\nTarget: agentrt's upstream calls = the {keys} distinct keys: "
              f"{upstream[ours]}, {verdict(upstream[ours] == keys)}; its wall "
              f"time the lowest: fastest is {fastest.label} ({measured[fastest]:.3f} s), "
              f"{verdict(fastest == ours)}.")


# -- workload 3 --------------------------------------------------------------------------

def workload_3(server: Server, args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.w3_levels.split(",")]
    results: dict[Row, dict[int, dict[str, Any]]] = {row: {} for row in TURN_ROWS}
    idle: dict[Row, dict[str, Any]] = {}
    for level in levels:
        for row in TURN_ROWS:
            progress(f"workload 3: {row.label}, {level} concurrent")
            runs = max(level, args.w3_min_runs)
            results[row][level] = measure(
                server, "turns", row, "--workload", "w3", "--runs", runs, "--concurrency", level,
                "--turns", args.w3_turns, "--latency", args.w3_latency,
                "--warmup", min(level, 5))
    for row in TURN_ROWS:
        progress(f"workload 3: {row.label}, idle conversations")
        idle[row] = measure(server, "idle", row, "--runs", 50)
    top = levels[-1]
    shape = f"{args.w3_turns} turn{'s' if args.w3_turns > 1 else ''}"
    print(f"\n### 3. Concurrency scaling\n\nRuns of {shape} of 2 tool calls + the "
          f"answer ({args.w3_turns + 1} model turns), {args.w3_latency * 1000:.0f} ms model "
          f"latency, N runs started together (at least {args.w3_min_runs} runs per level, "
          "N at a time). Throughput: model turns per second of wall time. Peak RSS: the "
          f"contender process at {top:,} concurrent runs; per run: its growth over the RSS "
          f"before the timed pass, divided by {top:,}. Idle conversation: memory still "
          "held per finished run of workload 1's shape (50 runs, tracemalloc): what the "
          "application keeps to continue it (agentrt: its in-memory thread store, plus the "
          "pipeline's cached results when on).\n")
    floor = results[FLOOR][top]

    def tps(r: dict[str, Any]) -> float | None:
        return r["turns"] / r["wall"] if r.get("wall") else None

    rows = []
    for row, by_level in results.items():
        r = by_level[top]
        peak = r.get("maxrss_kb")
        grown = (peak - r["rss_before_kb"]) / top if peak else None
        per_idle = idle[row].get("bytes_per_conversation")
        errors = [e for e in (by_level[n].get("error") for n in levels) if e]
        errors += [f"idle: {idle[row]['error']}"] if idle[row].get("error") else []
        rows.append([row.label, *(fmt(tps(by_level[n]), ",.0f") for n in levels),
                     ratio(tps(r), tps(floor)), fmt(peak and peak / 1024, ".0f"),
                     fmt(grown, ".1f"), fmt(per_idle and per_idle / 1024, ".1f"),
                     "ok" if not errors else f"FAILED: {errors[0]}"])
    table(["contender", *(f"turns/s @{n:,}" for n in levels), f"vs floor @{top:,}",
           f"peak RSS MB @{top:,}", "KB per run", "KB per idle conversation", "status"], rows)
    ours, base = tps(results[AGENTRT_ON][top]), tps(floor)
    if ours and base:
        print(f"\nTarget: agentrt's throughput within 10% of the floor at {top:,} runs: "
              f"{ours / base:.2f}x, {verdict(ours / base >= 0.9)}.")


# -- workload 4 --------------------------------------------------------------------------

def workload_4(server: Server, args: argparse.Namespace) -> None:
    from catalog import generate

    sizes = [int(x) for x in args.w4_sizes.split(",")]
    big = sizes[-1]
    results: dict[Row, dict[int, list[dict[str, Any]]]] = {row: {} for row in MANY_ROWS}
    run_id = 0
    with tempfile.TemporaryDirectory(prefix="agentrt-peers-") as tmp:
        for size in sizes:
            progress(f"workload 4: generating {size} tool modules and the JIT manifest")
            catalog = generate(Path(tmp), size)
            for repeat in range(args.w4_repeat):
                for row in MANY_ROWS:
                    progress(f"workload 4: {row.label}, {size} tools, {repeat + 1} of "
                             f"{args.w4_repeat}")
                    run_id += 1
                    results[row].setdefault(size, []).append(measure(
                        server, "startup", row, "--catalog-root", catalog.root, "--tools", size,
                        "--run-id", run_id))
    print(f"\n### 4. Start-up and prompt size with many tools\n\n{big} tools available (one "
          "generated module each, with the import cost of a real client module), the task "
          "needs 3. Time to first request: from building the agent (tool modules imported, "
          "tools registered) to the request's arrival at the fake server, on the shared "
          "monotonic clock; the framework's own import is apart. Best of "
          f"{args.w4_repeat} fresh processes (the contenders taking turns). Tokens by "
          "`count_tokens` on the fake (the same estimate for everyone); the fake counts "
          "deferred definitions, the API keeps them out of the context, so *in context* "
          "leaves them out. *Whole run*: input tokens of "
          "every request of the run, in context (tools found by tool search count once "
          "referenced). The fake server does not implement tool search; server.py emulates it "
          "(`server_tool_use` and `tool_search_tool_result` blocks before the calls).\n")

    def low(row: Row, size: int, key: str) -> float | None:
        return best(results[row][size], lambda r: r.get(key))

    floor = MANY_ROWS[0]
    rows = []
    for row in MANY_ROWS:
        first = [r for r in results[row][big] if not r.get("error")] or results[row][big]
        one = first[0]
        startup = [low(row, n, "first_request_ms") for n in sizes]
        growth = (startup[-1] / startup[0]) if startup[0] and startup[-1] else None
        errors = [r["error"] for n in sizes for r in results[row][n] if r.get("error")]
        rows.append([row.label, fmt(one.get("tools_shown"), "d"), fmt(one.get("tokens"), ",d"),
                     fmt(one.get("context_tokens"), ",d"),
                     ratio(one.get("context_tokens"), results[floor][big][0].get("context_tokens")),
                     fmt(one.get("run_tokens"), ",d"), fmt(one.get("turns"), "d"),
                     *(fmt(s, ",.1f") for s in startup),
                     fmt(growth, ".2f") + ("x" if growth else ""),
                     fmt(low(row, big, "import_ms"), ",.0f"),
                     "ok" if not errors else f"FAILED: {errors[0]}"])
    table(["contender", "tools shown", "1st request tokens", "in context", "vs floor",
           "whole run", "turns", *(f"ms to 1st request @{n}" for n in sizes),
           f"{sizes[-1]} vs {sizes[0]}", "framework import ms", "status"], rows)
    jit = next(r for r in MANY_ROWS if r.label.startswith("agentrt JIT"))
    jit_tokens = results[jit][big][0].get("context_tokens")
    def tokens(row: Row) -> int:
        found: int = results[row][big][0].get("context_tokens") or 10**12
        return found

    # agentrt's JIT modes against every other contender; a tie is not beaten
    theirs = min((tokens(r), r.label) for r in MANY_ROWS if not r.label.startswith("agentrt"))
    ours = min((tokens(r), r.label) for r in MANY_ROWS if r.label.startswith("agentrt JIT"))
    startup = [low(jit, n, "first_request_ms") for n in sizes]
    if jit_tokens and startup[0] and startup[-1]:
        tie = " (a tie: the same one tool)" if ours[0] == theirs[0] else ""
        print(f"\nTarget: agentrt JIT's first request the smallest: {ours[1]}, {ours[0]:,} "
              f"tokens in context; the smallest of the others is {theirs[1]} "
              f"({theirs[0]:,}), {verdict(ours[0] <= theirs[0])}{tie}; the default mode "
              f"({jit.label}) sends {jit_tokens:,}. Start-up "
              f"flat in the number of tools: {startup[-1] / startup[0]:.2f}x from {sizes[0]} "
              f"to {sizes[-1]} tools, {verdict(startup[-1] / startup[0] <= 1.5)} "
              "(bench/jit.py measures 10, 100 and 1,000 tools without the HTTP request).")


WORKLOADS = {"1": workload_1, "2": workload_2, "3": workload_3, "4": workload_4}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="1,2,3,4")
    parser.add_argument("--quick", action="store_true",
                        help="scaled down: 60 runs in 2 blocks, levels up to 100, 1 process "
                        "per figure")
    parser.add_argument("--w1-runs", type=int, default=200)
    parser.add_argument("--w1-blocks", type=int, default=4, help="fresh processes per row")
    parser.add_argument("--w2-runs", type=int, default=50)
    parser.add_argument("--w2-upstream", type=float, default=0.02)
    parser.add_argument("--w2-rounds", type=int, default=2)
    parser.add_argument("--w3-levels", default="1,10,100,1000")
    parser.add_argument("--w3-turns", type=int, default=1, help="tool turns per run")
    parser.add_argument("--w3-latency", type=float, default=0.05)
    parser.add_argument("--w3-min-runs", type=int, default=10)
    parser.add_argument("--w4-sizes", default="10,100")
    parser.add_argument("--w4-repeat", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.w1_runs, args.w1_blocks, args.w2_rounds = 60, 2, 1
        args.w3_levels, args.w4_repeat = "1,10,100", 1
    started = time.perf_counter()
    server = Server()
    try:
        for key in args.workloads.split(","):
            began = time.perf_counter()
            WORKLOADS[key.strip()](server, args)
            print(f"\n(workload {key.strip()}: {time.perf_counter() - began:.0f} s)")
            sys.stdout.flush()
    finally:
        server.close()
    print(f"\n(peer workloads took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
