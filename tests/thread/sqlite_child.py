"""A separate OS process using a SQLiteThreadStore, driven by test_sqlite_cross_process.py.

    write  DB THREAD               stdin: {"metadata": {...}, "messages": [...]};
                                   creates the thread and appends the messages
    read   DB THREAD               stdout: {"thread": {...}, "messages": [...]}
    append DB THREAD PREFIX COUNT  writes "ready", waits for a line on stdin, then
                                   appends PREFIX-000 .. one at a time, each call
                                   resending the previous message (a retry)

Messages travel as ``Message.to_json()`` in ASCII-escaped JSON, so any string
(even a lone surrogate) crosses the pipe unchanged. ``AGENTRT_TEST_BACKEND``
picks the event loop (asyncio by default).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from agentrt.thread._messages import Message
from agentrt.thread.sqlite import SQLiteThreadStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def _emit(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def write(db: str, thread_id: str) -> None:
    payload = json.loads(sys.stdin.buffer.read())
    async with SQLiteThreadStore(db) as store:
        await store.create_thread(thread_id, metadata=payload["metadata"])
        await store.append(thread_id, [Message.from_json(m) for m in payload["messages"]])


async def read(db: str, thread_id: str) -> None:
    async with SQLiteThreadStore(db) as store:
        info = await store.get_thread(thread_id)
        messages = await store.messages(thread_id)
    _emit({"thread": dataclasses.asdict(info) if info else None,
           "messages": [m.to_json() for m in messages]})


async def append(db: str, thread_id: str, prefix: str, count: str) -> None:
    async with SQLiteThreadStore(db) as store:
        await store.create_thread(thread_id, exist_ok=True)
        _emit("ready")
        await anyio.to_thread.run_sync(sys.stdin.readline)
        previous: list[Message] = []
        for i in range(int(count)):
            message = Message(role="user", content=f"{prefix} says {i}", id=f"{prefix}-{i:03d}",
                              metadata={"pid": os.getpid()})
            await store.append(thread_id, [*previous, message])
            previous = [message]


def main(argv: list[str]) -> None:
    command, *args = argv
    backend = os.environ.get("AGENTRT_TEST_BACKEND", "asyncio")
    commands: dict[str, Callable[..., Awaitable[None]]] = {
        "write": write, "read": read, "append": append}
    anyio.run(commands[command], *args, backend=backend)


if __name__ == "__main__":
    main(sys.argv[1:])
