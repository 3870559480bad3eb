"""Workload 1 in instructions per model turn, by valgrind's callgrind: a count that load on the
machine moves far less than CPU time (repeats on a quiet machine agree within about 20-40k a
turn; under a load average of 10-16 the same code counted about 100k a turn more, the client's
event loop turning more often while it waits on a starved server: measure when it is quiet).

    python bench/peers/instructions.py                  # floor, agentrt on, off and bare
    python bench/peers/instructions.py --rows on,off --keep /tmp/ir   # keep the profiles

Each row runs ``child.py turns`` (workload 1, non-streaming, one run at a time) under
``valgrind --tool=callgrind`` twice, with 10 and with 30 runs; instrumentation is switched on
only around the measured runs (not the interpreter's start, the imports nor the warm-up), by
callgrind's client requests from a small C helper compiled here. Per turn = (Ir(30) - Ir(10))
/ (20 runs x 6 model turns): what both counts share (the first run's one-off costs) cancels.
The fake server runs in its own process, not under valgrind. Needs ``valgrind`` and a C
compiler with valgrind's headers (``valgrind/callgrind.h``). ``--keep DIR`` leaves the
profiles there for ``callgrind_annotate``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ROWS = {"floor": ("hand-written loop (floor)", "handwritten", ()),
        "on": ("agentrt, pipeline on", "agentrt_agent", ()),
        "off": ("agentrt, pipeline off", "agentrt_agent", ("--variant", "off")),
        "bare": ("agentrt, pipeline, prompt caching and context management off", "agentrt_agent",
                 ("--variant", "bare"))}
TURNS_PER_RUN = 6  # workload 1: 5 turns of tool calls + the final answer

HELPER = r"""
#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_START_INSTRUMENTATION; }
void stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def compile_helper(directory: Path) -> Path:
    source, library = directory / "toggle.c", directory / "toggle.so"
    source.write_text(HELPER)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(library), str(source)],
                   check=True)
    return library


def child(helper: str, argv: list[str]) -> None:
    """In the process under valgrind: child.py's ``turns`` with the instrumentation on
    around the measured runs only (``_many``'s second call; the first is the warm-up)."""
    import asyncio
    import json

    import child as bench_child

    toggle = ctypes.CDLL(helper)
    many = bench_child._many
    calls = 0

    async def measured(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls != 2:
            return await many(*args)
        toggle.start()
        try:
            return await many(*args)
        finally:
            toggle.stop()

    bench_child._many = measured
    outcome = asyncio.run(bench_child.main(bench_child.parse(argv)))
    print("RESULT " + json.dumps(outcome))


def count(out: Path) -> int:
    text = out.read_text()
    found = re.search(r"^totals: (\d+)", text, re.MULTILINE)  # "summary:" may say 0
    if found is None:
        raise SystemExit(f"no total in {out}")
    return int(found.group(1))


def measure(helper: Path, url: str, module: str, flags: tuple[str, ...], runs: int,
            out: Path) -> int:
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, __file__, "--child", str(helper),
               "turns", "--contender", module, "--base-url", url, *flags,
               "--workload", "w1", "--runs", str(runs)]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "AGENTRT_LOG_LEVEL": "warning",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}  # same dict layouts each time
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines or '"error": null' not in lines[-1]:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-3:]
        raise SystemExit(f"{module} {flags} ({runs} runs) failed: {lines[-1:]} {tail}")
    return count(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="floor,on,off,bare", help="of: " + ", ".join(ROWS))
    parser.add_argument("--runs", default="10,30", help="the two run counts")
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    parser.add_argument("--keep", type=Path, help="leave the callgrind profiles here")
    args = parser.parse_args(argv)
    low, high = (int(n) for n in args.runs.split(","))
    rows = [r.strip() for r in args.rows.split(",")]
    from compare import Server

    with tempfile.TemporaryDirectory() as scratch:
        where = args.keep or Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        helper = compile_helper(Path(scratch))
        server = Server()
        try:
            with ThreadPoolExecutor(args.jobs) as pool:
                futures = {(row, runs): pool.submit(
                    measure, helper, server.url, ROWS[row][1], ROWS[row][2], runs,
                    where / f"callgrind.{row}.{runs}") for row in rows for runs in (low, high)}
                counts = {key: future.result() for key, future in futures.items()}
        finally:
            server.close()
    per_turn = {row: (counts[row, high] - counts[row, low]) / ((high - low) * TURNS_PER_RUN)
                for row in rows}
    floor = per_turn.get("floor")
    print(f"| contender | Ir({low}) | Ir({high}) | instructions per turn | vs floor |")
    print("|-----------|---------|---------|-----------------------|----------|")
    for row in rows:
        versus = f"{per_turn[row] / floor:.3f}x" if floor else "-"
        print(f"| {ROWS[row][0]} | {counts[row, low]:,} | {counts[row, high]:,} | "
              f"{per_turn[row] / 1e6:.3f}M | {versus} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(main())
