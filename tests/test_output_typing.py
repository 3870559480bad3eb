"""``RunResult`` is generic in its output: ``agent.run(..., output_type=Invoice)`` is a
``RunResult[Invoice]`` to mypy --strict, and an untyped run a ``RunResult[Any]``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = '''
from pydantic import BaseModel
from agentrt import Agent, RunResult


class Invoice(BaseModel):
    total: float


async def typed(agent: Agent) -> float:
    result = await agent.run("invoice", output_type=Invoice)
    reveal_type(result.output)
    return result.output.total if result.output is not None else 0.0


async def untyped(agent: Agent) -> RunResult:
    result = await agent.run("hello")
    reveal_type(result.output)
    return result


async def wrong(agent: Agent) -> str:
    result = await agent.run("invoice", output_type=Invoice)
    return result.output.number
'''


@pytest.mark.timeout(180)
def test_mypy_sees_the_output_type(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(SNIPPET, encoding="utf-8")
    # The SDK's types play no part in what is checked here, and reading them is half
    # of a cold run (9 of 18 s of CPU): mypy takes them as Any.
    (tmp_path / "mypy.ini").write_text("[mypy]\n[mypy-anthropic.*]\nfollow_imports = skip\n",
                                       encoding="utf-8")
    found = subprocess.run(
        # the repository's cache: warm after `make check`, and agentrt's types come from it
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "mypy.ini",
         "--cache-dir", str(ROOT / ".mypy_cache"), "snippet.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=170,
        env={**os.environ, "MYPYPATH": str(ROOT)}).stdout  # the editable install hides it
    lines = [line.split(": ", 1)[1] for line in found.splitlines() if ": " in line]
    assert lines[:2] == ['note: Revealed type is "snippet.Invoice | None"',
                         'note: Revealed type is "Any | None"'], found
    assert 'error: Item "Invoice" of "Invoice | None" has no attribute "number"  [union-attr]' \
        in lines[2:], found
    errors = [line for line in found.splitlines() if ": error: " in line]
    assert errors and all(e.startswith("snippet.py:24: ") for e in errors), found  # only wrong()
