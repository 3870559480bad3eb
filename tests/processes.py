"""Every OS process a test starts is started here, and reaped here.

Loaded as a pytest plugin by ``tests/conftest.py``. Start children with

``popen(args, ...)`` / ``run(args, timeout=...)``
    ``subprocess.Popen`` / ``subprocess.run``, for sync tests and helpers;
``opened(args, ...)`` / ``run_process(args, ...)``
    ``anyio.open_process`` as an async context manager / ``anyio.run_process``.

Each child leads a process group of its own (``start_new_session``), so a kill reaches
what it starts in turn: a shell's background job, a zygote's forks. The autouse fixture
``_children_are_reaped`` kills (SIGKILL, the whole group) and waits for every child the
test started once it ends, passed, failed or timed out: pytest-timeout runs with the
``signal`` method (pyproject.toml), which fails the test in its own thread so fixture
finalizers still run. What outlives a test's own clean-up is killed there; what outlives
the session (a long-lived server started with ``lasting=True``, the local Redis Cluster)
at interpreter exit.

A test that starts a child must be marked ``integration`` (or ``redis``: ``make test-fast``
runs neither): starting one from an unmarked test fails it with a message saying so.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import signal
import subprocess
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence
    from typing import TypeAlias

    from anyio.abc import Process

    Command: TypeAlias = Sequence[str | os.PathLike[str]]

__all__ = [
    "finish",
    "opened",
    "popen",
    "read_line",
    "reap",
    "run",
    "run_process",
    "running",
    "start_together_and_finish",
]

@dataclass(eq=False)
class _Child:
    pid: int
    command: str
    lasting: bool
    popen: subprocess.Popen[Any] | None = None
    process: Process | None = None

    @property
    def reaped(self) -> bool:
        """Waited for by its owner: its pid (and group id) may belong to someone else now."""
        owner = self.popen if self.popen is not None else self.process
        return owner is not None and owner.returncode is not None


_CHILDREN: list[_Child] = []
# Whether the running test may start children (set per test by the fixture below;
# outside pytest, e.g. `python tests/reliability/load.py`, it may).
_allowed_for: str | None = None


def _check_allowed(args: Command) -> None:
    if _allowed_for is not None:
        pytest.fail(f"{_allowed_for} starts an OS process ({_describe(args)}): mark it "
                    "@pytest.mark.integration, so `make test-fast` leaves it out",
                    pytrace=False)


def _register(pid: int, args: Command, *, lasting: bool, **owner: Any) -> None:
    _CHILDREN.append(_Child(pid, _describe(args), lasting, **owner))


def _describe(args: Command) -> str:
    text = shlex.join(os.fspath(a) for a in args)
    return text if len(text) < 160 else text[:157] + "..."


# -- sync ---------------------------------------------------------------------------------


def popen(args: Command, *, lasting: bool = False, **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **kwargs)`` in a group of its own, reaped after the test
    (``lasting``: at the end of the session, for a session fixture's server)."""
    _check_allowed(args)
    kwargs.setdefault("start_new_session", True)
    child = subprocess.Popen(args, **kwargs)
    _register(child.pid, args, lasting=lasting, popen=child)
    return child


def run(args: Command, *, timeout: float, input: str | bytes | None = None,
        capture_output: bool = False, check: bool = False,
        **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run``, but a timeout (or anything else going wrong while it waits)
    kills the child's whole group, not only the child, before raising."""
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    with popen(args, **kwargs) as child:
        try:
            stdout, stderr = child.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            kill_group(child)
            exc.output, exc.stderr = child.communicate()
            raise
        except BaseException:
            kill_group(child)
            child.wait()
            raise
        finally:
            _kill_leftovers(child.pid)
    done = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done


def kill_group(child: subprocess.Popen[Any] | Process) -> None:
    """SIGKILL to the child's group, while its pid is still ours (not yet reaped)."""
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)


def _kill_leftovers(pgid: int) -> None:
    """Kill what a reaped leader left behind in its group (a background job of a shell).

    The group id can only be taken by a new process once every member is gone, so a
    group that still has members is ours."""
    if _members(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _members(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pgid and stat[0] != "Z":
                found.append(int(entry))
    return found


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) from /proc/PID/stat, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0].decode(), int(fields[2])


def running(pid: int) -> bool:
    """Alive: neither gone nor a zombie waiting to be reaped."""
    stat = _stat(pid)
    if stat is not None:
        return stat[0] != "Z"
    try:  # no /proc (not Linux): signal 0 asks whether it exists at all
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not os.path.isdir("/proc")


# -- async --------------------------------------------------------------------------------


@asynccontextmanager
async def opened(args: Command, *, exit_timeout: float = 30.0,
                 **kwargs: Any) -> AsyncIterator[Process]:
    """``anyio.open_process`` in a group of its own. Leaving the block normally waits for it
    to exit (at most ``exit_timeout`` s, then it is killed and the test fails); leaving it
    with an exception (a failed assertion, a cancellation) kills the group at once."""
    _check_allowed(args)
    kwargs.setdefault("start_new_session", True)
    process = await anyio.open_process(args, **kwargs)
    _register(process.pid, args, lasting=False, process=process)
    try:
        yield process
    except BaseException:
        kill_group(process)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(exit_timeout) as waited:
                await process.aclose()
            if waited.cancelled_caught:
                kill_group(process)
                await process.aclose()
                pytest.fail(f"{_describe(args)} did not exit within {exit_timeout} s; killed")
            _kill_leftovers(process.pid)


async def run_process(args: Command, *, input: bytes | None = None, check: bool = True,
                      **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    """``anyio.run_process``: output collected, the group killed if the wait is cut short."""
    output = [b"", b""]

    async def drain(stream: Any, index: int) -> None:
        async for chunk in stream:
            output[index] += chunk

    stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
    async with opened(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      **kwargs) as process:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain, process.stdout, 0)
            tg.start_soon(drain, process.stderr, 1)
            if process.stdin is not None:
                await process.stdin.send(input or b"")
                await process.stdin.aclose()
        returncode = await process.wait()
    done = subprocess.CompletedProcess(list(args), returncode, output[0], output[1])
    if check:
        done.check_returncode()
    return done


async def read_line(process: Process) -> bytes:
    assert process.stdout is not None
    return await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 1024)


async def finish(process: Process) -> None:
    """Close its stdin, then wait: it must exit 0 (its stderr is the failure message)."""
    assert process.stdin is not None and process.stderr is not None
    await process.stdin.aclose()
    errors = b""
    async for chunk in process.stderr:
        errors += chunk
    assert await process.wait() == 0, errors.decode(errors="replace")


async def start_together_and_finish(*processes: Process) -> None:
    """Each child says "ready" once its store is open; then all are told "go" at once, so
    their appends race, and each must finish cleanly."""
    for process in processes:
        assert await read_line(process) == b'"ready"'
    for process in processes:
        assert process.stdin is not None
        await process.stdin.send(b"go\n")
    async with anyio.create_task_group() as tg:
        for process in processes:
            tg.start_soon(finish, process)


# -- reaping ------------------------------------------------------------------------------


def reap(*, since: int = 0, lasting: bool = False, wait: float = 10.0) -> list[str]:
    """Kill (SIGKILL, the whole group) and wait for every child started since the
    ``since``-th (the long-lived ones only if ``lasting``); those still running when
    called, by command."""
    pending = [c for c in _CHILDREN[since:] if lasting or not c.lasting]
    alive = [c.command for c in pending if not c.reaped and running(c.pid)]
    for child in pending:
        if child.reaped:
            _kill_leftovers(child.pid)
        elif child.popen is not None:
            kill_group(child.popen)
        elif child.process is not None:
            kill_group(child.process)
    deadline = time.monotonic() + wait
    for child in pending:
        if child.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            for pipe in (child.popen.stdin, child.popen.stdout, child.popen.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):  # a broken pipe to a killed child
                        pipe.close()
        # An anyio child is reaped by its event loop's watcher; it is dead once a zombie.
        while running(child.pid) and not child.reaped and time.monotonic() < deadline:
            time.sleep(0.01)
        _CHILDREN.remove(child)
    return alive


atexit.register(reap, lasting=True)


@pytest.fixture(autouse=True)
def _children_are_reaped(request: pytest.FixtureRequest) -> Iterator[None]:
    """Kills and waits for whatever the test started, however it ended. Refuses children
    to a test marked neither ``integration`` nor ``redis``."""
    global _allowed_for
    marked = any(request.node.get_closest_marker(m) for m in ("integration", "redis"))
    _allowed_for = None if marked else request.node.nodeid
    since = len(_CHILDREN)
    try:
        yield
    finally:
        _allowed_for = None
        reap(since=since)
