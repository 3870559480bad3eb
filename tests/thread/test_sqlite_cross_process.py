"""Several OS processes sharing one SQLite file: resume, and racing appends."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from processes import opened, run_process, start_together_and_finish

from agentrt.thread._messages import Message
from agentrt.thread.sqlite import SQLiteThreadStore

from .conformance import assert_same_messages, tricky_messages

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

CHILD = Path(__file__).with_name("sqlite_child.py")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def child_command(*args: str) -> list[str]:
    return [sys.executable, str(CHILD), *args]


def child_env(backend: str = "asyncio") -> dict[str, str]:
    return {**os.environ, "AGENTRT_TEST_BACKEND": backend}


async def run_child(*args: str, stdin: bytes = b"") -> Any:
    """Run the helper to completion; its stdout, parsed as JSON (or None)."""
    result = await run_process(child_command(*args), input=stdin, check=False,
                               env=child_env())
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return json.loads(result.stdout) if result.stdout.strip() else None


async def test_a_thread_written_by_one_process_is_resumed_by_another(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    first = tricky_messages()
    metadata = {"owner": "child", "n": 1.0}
    payload = {"metadata": metadata, "messages": [m.to_json() for m in first]}
    await run_child("write", db, "t1", stdin=json.dumps(payload).encode())

    # The parent resumes the thread exactly as the child left it, then continues it.
    second = [Message(role="assistant", content=[{"type": "text", "text": "resumed ✓"}],
                      id="msg_resumed", created_at=2.0)]
    async with SQLiteThreadStore(db) as store:
        assert_same_messages(await store.messages("t1"), first)
        await store.append("t1", [first[-1], *second])  # a retry overlapping the child's write

    read = await run_child("read", db, "t1")
    assert_same_messages([Message.from_json(m) for m in read["messages"]], first + second)
    assert read["thread"]["message_count"] == len(first) + 1
    assert repr(read["thread"]["metadata"]) == repr(metadata)


async def test_two_processes_appending_to_one_thread(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    count = 100
    async with SQLiteThreadStore(db) as store:
        await store.create_thread("t1")

    # One child on asyncio, one on trio; both open the store, then start together.
    with anyio.fail_after(50):
        async with (
            opened(child_command("append", db, "t1", "A", str(count)),
                   env=child_env("asyncio")) as a,
            opened(child_command("append", db, "t1", "B", str(count)),
                   env=child_env("trio")) as b,
        ):
            await start_together_and_finish(a, b)

    async with SQLiteThreadStore(db) as store:
        stored = await store.messages("t1")
        info = await store.get_thread("t1")
    ids = [m.id for m in stored]
    assert len(ids) == len(set(ids)) == 2 * count
    assert info is not None
    assert info.message_count == 2 * count
    for prefix, pid in (("A", a.pid), ("B", b.pid)):
        own = [m for m in stored if m.id.startswith(f"{prefix}-")]
        assert [m.id for m in own] == [f"{prefix}-{i:03d}" for i in range(count)]
        assert {m.metadata["pid"] for m in own} == {pid}
