"""A separate OS process appending to a RedisThreadStore, driven by test_redis_store.py.

    append URL PREFIX THREAD TAG COUNT   writes "ready", waits for a line on stdin,
                                         then appends TAG-000 .. one at a time, each
                                         call resending the previous message (a retry)

Runs on asyncio (``redis.asyncio`` is asyncio-only).
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import anyio.to_thread

from agentrt._redis import RedisGate
from agentrt.thread._messages import Message
from agentrt.thread.redis import RedisThreadStore


def _emit(payload: object) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def append(url: str, prefix: str, thread_id: str, tag: str, count: str) -> None:
    gate = RedisGate(url, prefix=prefix, timeout=15.0)  # only a hang, not a busy box
    try:
        async with RedisThreadStore(gate) as store:
            await store.create_thread(thread_id, exist_ok=True)
            _emit("ready")
            await anyio.to_thread.run_sync(sys.stdin.readline)
            previous: list[Message] = []
            for i in range(int(count)):
                message = Message(role="user", content=f"{tag} says {i}", id=f"{tag}-{i:03d}",
                                  metadata={"pid": os.getpid()})
                await store.append(thread_id, [*previous, message])
                previous = [message]
    finally:
        await gate.aclose()


def main(argv: list[str]) -> None:
    command, *args = argv
    if command != "append":
        raise SystemExit(f"unknown command {command!r}")
    anyio.run(append, *args, backend="asyncio")


if __name__ == "__main__":
    main(sys.argv[1:])
