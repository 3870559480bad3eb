"""The children a test starts are reaped however it ends: its body raising, an async test
timing out while a child runs (pytest-timeout's signal method lets fixtures finish), a
child's own children included. Proved on a pytest session of its own, in a child process."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import processes
import pytest

pytestmark = pytest.mark.integration

TESTS = Path(__file__).resolve().parent

INNER = '''
import subprocess
import time
from pathlib import Path

import anyio
import pytest

import processes

HERE = Path(__file__).resolve().parent
# a shell that starts a grandchild (its own group's member), records both pids, waits
SHELL = 'sleep 600 & echo $! > "$1"; echo $$ >> "$1"; wait'


@pytest.fixture
def anyio_backend():
    return "asyncio"


def start(name):
    record = HERE / f"{name}.pids"
    return record, ["sh", "-c", SHELL, "sh", str(record)]


def recorded(record):
    deadline = time.monotonic() + 30
    while len(record.read_text().split()) < 2 if record.exists() else True:
        assert time.monotonic() < deadline, "the shell never said its pids"
        time.sleep(0.01)


@pytest.mark.integration
def test_the_body_raises():
    record, command = start("raises")
    processes.popen(command, stdout=subprocess.DEVNULL)
    recorded(record)
    raise RuntimeError("the test body fails")


@pytest.mark.integration
@pytest.mark.timeout(3)
@pytest.mark.anyio
async def test_an_async_test_times_out_while_its_child_runs():
    record, command = start("timeout")
    async with processes.opened(command, stdout=subprocess.DEVNULL):
        recorded(record)
        await anyio.sleep(600)


@pytest.mark.integration
def test_the_child_is_left_running_by_a_passing_test():
    record, command = start("passes")
    processes.popen(command, stdout=subprocess.DEVNULL)
    recorded(record)


def test_an_unmarked_test_may_not_start_one():
    record, command = start("unmarked")
    processes.popen(command)
'''

INI = '''
[pytest]
markers =
    integration: starts real parts
timeout_method = signal
'''


def test_children_are_killed_and_waited_for_however_the_test_ends(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(textwrap.dedent(INI))
    (tmp_path / "test_inner.py").write_text(INNER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get(
        "PYTHONPATH", "")])}
    done = processes.run([sys.executable, "-m", "pytest", "-p", "processes", "-p",
                          "no:cacheprovider", "-p", "no:randomly", "-q", "-rA",
                          "test_inner.py"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    report = done.stdout + done.stderr
    assert "3 failed, 1 passed" in report, report
    assert "RuntimeError: the test body fails" in report
    assert "Timeout" in report
    assert "starts an OS process (sh -c" in report and "mark it @pytest.mark.integration" in report
    assert not (tmp_path / "unmarked.pids").exists()  # refused before it started
    for name in ("raises", "timeout", "passes"):
        pids = [int(pid) for pid in (tmp_path / f"{name}.pids").read_text().split()]
        assert len(pids) == 2, name
        alive = [pid for pid in pids if processes.running(pid)]
        assert alive == [], f"{name}: still running: {alive}\n{report}"
