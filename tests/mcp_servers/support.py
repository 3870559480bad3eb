"""What the MCP tests share: the real servers' configurations, their manifest (written
once per session: describing a server starts it), a git repository, and the servers'
child processes, found in /proc so a test can check, kill or wait for them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio

from agentrt.jit.manifest import render_manifest
from agentrt.mcp import StdioServer
from agentrt.mcp._describe import describe_servers

BIN = Path(sys.executable).parent
OWN = str(Path(__file__).with_name("own_server.py"))
GIT = StdioServer(command=str(BIN / "mcp-server-git"))
TIME = StdioServer(command=str(BIN / "mcp-server-time"), args=["--local-timezone", "UTC"])
MARKERS = ("mcp-server-git", "mcp-server-time", "own_server.py")


def own(**options: object) -> StdioServer:
    return StdioServer(command=sys.executable, args=[OWN, "stdio"], **options)  # type: ignore[arg-type]


def write_manifest(path: Path, servers: dict[str, StdioServer]) -> Path:
    path.write_text(render_manifest(anyio.run(describe_servers, servers)), encoding="utf-8")
    return path


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for args in (["init", "-q"], ["config", "user.email", "t@example.com"],
                 ["config", "user.name", "Test"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "a.txt").write_text("one\n")
    subprocess.run(["git", "add", "a.txt"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=path, check=True)
    return path


def server_children(parent: int | None = None) -> list[int]:
    """The pids of the MCP server processes descending from ``parent`` (this process)."""
    root = os.getpid() if parent is None else parent
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(
                errors="replace").replace("\0", " ")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found = []
    for pid, command in commands.items():
        if not any(marker in command for marker in MARKERS):
            continue
        ancestor = parents.get(pid)
        while ancestor is not None and ancestor not in (root, 0, 1):
            ancestor = parents.get(ancestor)
        if ancestor == root:
            found.append(pid)
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def until(condition: object, timeout: float = 20.0) -> None:
    """Poll a condition on another process (no event crosses the boundary)."""
    with anyio.fail_after(timeout):
        while not condition():  # type: ignore[operator]
            await anyio.sleep(0.02)


def wait_gone(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.02)
    return False
