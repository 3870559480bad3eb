"""Running the examples as a newcomer does: ``python examples/<name>.py`` from the
repository's root, offline (no API key in the environment), in a child process."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import processes

if TYPE_CHECKING:
    import subprocess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without API keys or agentrt settings, threads in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "AGENTRT_"))}
    env["AGENTRT_SQLITE_PATH"] = str(tmp_path / "threads.db")
    env.update(extra)
    return env


def run_example(name: str, *args: str, env: dict[str, str], timeout: float = 120,
                expect: int = 0) -> subprocess.CompletedProcess[str]:
    proc = processes.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def stats_lines(output: str) -> list[dict[str, object]]:
    """Every per-run stats line ``[tool calls N, executed N, errors N, answered by the
    pipeline: memo 1, turn 2]`` the examples print, parsed."""
    found = []
    for m in re.finditer(r"\[tool calls (\d+), executed (\d+), errors (\d+), answered by the "
                         r"pipeline: ([^\]]*)\]", output):
        hits = {} if m[4] == "none" else {k: int(v) for k, v in
                                          (part.rsplit(" ", 1) for part in m[4].split(", "))}
        found.append({"tool_calls": int(m[1]), "executed": int(m[2]), "errors": int(m[3]),
                      "hits": hits})
    return found
