"""Talking to a child process line by line: shared by the cross-process store tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream

if TYPE_CHECKING:
    from anyio.abc import Process


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
