"""How fast the ``agentrt`` command answers what needs no runtime (``--help``, ``--version``).

Each row is a fresh interpreter, run ``--repeat`` times with the rows taking turns (so a
change in the machine's load falls on every row alike); the table gives the median
wall time and its ratio to the baseline, an interpreter that does nothing
(``python -c pass``). The last row is what a command that runs pays on top: the
runtime's imports (``agentrt.runtime``, with pydantic, anyio and structlog; the SDK
is loaded later still, by the first Runtime).

    python bench/cli.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

ROWS = [
    ("python -c pass (baseline)", ["-c", "pass"]),
    ("import agentrt", ["-c", "import agentrt"]),
    ("agentrt --version", ["-m", "agentrt", "--version"]),
    ("agentrt --help", ["-m", "agentrt", "--help"]),
    ("agentrt run --help", ["-m", "agentrt", "run", "--help"]),
    ("agentrt tools list --help", ["-m", "agentrt", "tools", "list", "--help"]),
    ("import agentrt.runtime", ["-c", "import agentrt.runtime"]),
]


def once(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    repeat = parser.parse_args().repeat
    for _, args in ROWS:  # compile the bytecode first: a user's second run
        once(args)
    times: dict[str, list[float]] = {name: [] for name, _ in ROWS}
    for _ in range(repeat):
        for name, args in ROWS:
            times[name].append(once(args))
    base = statistics.median(times[ROWS[0][0]])
    print(f"| command{' ' * 22}| median ms | vs baseline |")
    print(f"|{'-' * 30}|-----------|-------------|")
    for name, _ in ROWS:
        median = statistics.median(times[name])
        print(f"| {name:<28} | {median * 1000:9.1f} | {median / base:11.2f} |")


if __name__ == "__main__":
    main()
