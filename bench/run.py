"""Run every benchmark and write bench/RESULTS.md (``make bench``).

Runs, one after the other, each as its own process: bench/pipeline.py, bench/redis_shared.py
(skipped, with the reason, when no Redis answers), bench/jit.py (when present), bench/cli.py,
bench/search_quality.py, bench/mcp_bench.py (with the mcp extra installed), bench/eager.py,
bench/context.py and bench/peers/compare.py. Each script's output is echoed as it comes and
kept; RESULTS.md gets the machine, the Python and package versions, the date, and every
script's tables.

    python bench/run.py            # the sizes the issues ask for (6-8 minutes here)
    python bench/run.py --quick    # scaled down (a few minutes)
    python bench/run.py --only peers,jit
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PACKAGES = ("agentrt", "anthropic", "httpx2", "httpcore2", "anyio", "pydantic", "redis",
            "pydantic-ai-slim", "langgraph", "langgraph-prebuilt", "langchain-core",
            "langchain-anthropic", "cashews", "async-lru")


def machine() -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- machine: {cores} cores (nproc), {cpu}, {memory} memory, "
            f"Linux {platform.release()}; load average at the start {load} (other work on "
            "the machine shows up in every figure: compare ratios within one run)",
            f"- Python {platform.python_version()} ({sys.executable})",
            "- packages: " + ", ".join(f"{name} {_version(name)}" for name in PACKAGES)]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def scripts(quick: bool) -> list[tuple[str, str, list[str], bool]]:
    """(key, title, command, markdown output?)"""
    found = [("pipeline", "Pipeline (bench/pipeline.py)",
              ["pipeline.py", *(["--runs", "50", "--samples", "2000"] if quick else [])], True),
             ("redis", "Redis shared stages (bench/redis_shared.py)",
              ["redis_shared.py", *(["--samples", "1000"] if quick else [])], True)]
    found.append(("otel", "OpenTelemetry cost (bench/otel.py)",
                  ["otel.py", *(["--runs", "60", "--repeat", "5"] if quick else [])], True))
    if (BENCH / "jit.py").exists():
        found.append(("jit", "JIT (bench/jit.py)",
                      ["jit.py", *(["--sizes", "10,100", "--repeat", "3"] if quick else [])],
                      False))
    found.append(("cli", "CLI start-up (bench/cli.py)",
                  ["cli.py", *(["--repeat", "5"] if quick else [])], True))
    found.append(("search", "Tool search (bench/search_quality.py)",
                  ["search_quality.py"], False))
    try:
        import mcp  # noqa: F401  (the agentrt[mcp] extra)
    except ImportError:
        pass
    else:
        found.append(("mcp", "MCP servers (bench/mcp_bench.py)",
                      ["mcp_bench.py", *(["--samples", "50", "--conversations", "5"]
                                         if quick else [])], True))
    found.append(("eager", "Eager execution (bench/eager.py)",
                  ["eager.py", *(["--quick", "--repeat", "1", "--cpu-turns", "30"] if quick
                                 else [])], True))
    found.append(("context", "Long threads (bench/context.py)",
                  ["context.py", *(["--turns", "100", "--repeat", "1"] if quick else [])],
                  True))
    found.append(("peers", "Peers (bench/peers/compare.py)",
                  ["peers/compare.py", *(["--quick"] if quick else [])], True))
    return found


def run(command: list[str]) -> tuple[int, str, float]:
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *command], cwd=BENCH.parent, text=True,
                               stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    return process.wait(), "".join(lines), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down sizes")
    parser.add_argument("--only", help="comma-separated: pipeline, redis, otel, jit, search, "
                        "cli, mcp, eager, context, peers")
    parser.add_argument("--output", default=str(BENCH / "RESULTS.md"))
    args = parser.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else None
    started = time.perf_counter()
    sections, failed = [], 0
    for key, title, command, markdown in scripts(args.quick):
        if chosen is not None and key not in chosen:
            continue
        script = ["bench/" + command[0], *command[1:]]
        print(f"\n== {title}: python {' '.join(script)}", flush=True)
        if key == "redis" and not redis_up():
            sections.append(f"## {title}\n\nSkipped: no Redis answered PING on "
                            "127.0.0.1:6379 (start one: `redis-server --daemonize yes`).\n")
            continue
        code, output, seconds = run(script)
        failed += code != 0
        body = output.strip() if markdown else f"```text\n{output.rstrip()}\n```"
        note = "" if code == 0 else f"\n\n**exit status {code}**: see the output above."
        sections.append(f"## {title}\n\n`python {' '.join(script)}`, {seconds:.0f} s\n\n"
                        f"{body}{note}\n")
    total = time.perf_counter() - started
    header = ["# Benchmark results", "",
              "Written by `make bench` (`python bench/run.py"
              f"{' --quick' if args.quick else ''}`); bench/README.md explains each table. "
              f"Every number below was measured in this run, which took {total / 60:.1f} min.",
              "", *machine(), ""]
    Path(args.output).write_text("\n".join(header) + "\n" + "\n".join(sections),
                                 encoding="utf-8")
    print(f"\nwrote {args.output} ({total / 60:.1f} min)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
