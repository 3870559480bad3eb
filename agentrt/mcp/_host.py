"""A task that outlives the call that started it: where an MCP session lives.

A session is an async context (its own task group, a child process) that must stay
open across runs, so it cannot live in the task of the run that first needed it. Its
host is a task of the event loop itself (asyncio: ``loop.create_task``; trio: a system
task), told to stop by an event. When the loop ends (``asyncio.run`` returning), such
tasks are cancelled and the MCP transport's shielded shutdown ends the child process,
so a process that never closed its runtime leaves no orphan either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["spawn_host"]

_RUNNING: set[Any] = set()  # asyncio keeps only weak references to its tasks


def spawn_host(fn: Callable[[], Awaitable[None]]) -> None:
    """Start ``fn()`` in a task of its own; it must not raise (it logs its own errors)."""
    import sniffio

    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(fn)
        return
    import asyncio

    async def run() -> None:
        await fn()

    task = asyncio.get_running_loop().create_task(run())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
