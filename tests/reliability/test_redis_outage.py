"""A write made while Redis is down still makes what it names stale, in every layer and
every process: its invalidation is kept and given to Redis when it answers again, and
no process serves a result that predates the write. Two OS processes on a private
redis-server that the test stops (SIGSTOP) and lets go again (SIGCONT)."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import processes
import pytest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from anyio.abc import Process
    from redis_support import RedisServerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.redis]


class Worker:
    """One outage_child process, asked one line at a time."""

    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self._lines = process.stdout

    async def ask(self, line: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        await self.process.stdin.send(f"{line}\n".encode())
        buffer = b""
        with anyio.fail_after(20):
            while not buffer.endswith(b"\n"):
                buffer += await self._lines.receive(1)
        answer: dict[str, Any] = json.loads(buffer)
        return answer

    async def read(self, item: str) -> tuple[int, str]:
        answer = await self.ask(f"read {item}")
        return json.loads(answer["content"])["units"], answer["source"]


@asynccontextmanager
async def worker(redis: RedisServerProcess, prefix: str, stock: Path) -> AsyncIterator[Worker]:
    async with processes.opened(
            [sys.executable, "-m", "tests.reliability.outage_child", redis.url, prefix,
             str(stock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None) as process:
        yield Worker(process)
        assert process.stdin is not None
        await process.stdin.aclose()  # its end of input: it exits


async def _until_flushed(process: Worker) -> None:
    """The writer's listener reconnects and hands Redis the invalidation it kept: within
    ``retry_after`` (0.3 s) of Redis answering, or later when a loaded machine makes its
    attempts time out; the bound is for a flush that never comes."""
    answer = await process.ask("pending")
    with anyio.move_on_after(20):
        while answer["pending"]:
            await anyio.sleep(0.05)
            answer = await process.ask("pending")
    assert answer["pending"] == [], answer


@pytest.mark.parametrize("first_reader", ["the writer", "a new process"])
async def test_a_write_during_an_outage_is_never_undone_by_a_cache(
        redis_server_process: RedisServerProcess, tmp_path: Path, first_reader: str) -> None:
    """Failed before: after the write (lamp 5 -> 4) made while Redis was stopped, a new
    process got lamp: 5 from the shared cache, and the writer got lamp: 5 from its local
    cache (refilled from Redis): the invalidation had been dropped."""
    stock = tmp_path / "stock.json"
    stock.write_text(json.dumps({"lamp": 5}))
    prefix = f"outage-{tmp_path.name}"
    async with worker(redis_server_process, prefix, stock) as writer:
        assert await writer.read("lamp") == (5, "executed")  # now in Redis and locally
        redis_server_process.pause()
        try:
            assert (await writer.ask("ship lamp"))["content"] == "shipped 1 lamp"
            assert (await writer.ask("pending"))["pending"] == ["stock"]
            # during the outage the writer serves nothing stale of its own either
            assert (await writer.read("lamp"))[0] == 4
        finally:
            redis_server_process.resume()
        if first_reader == "the writer":
            assert (await writer.read("lamp"))[0] == 4
        else:
            await _until_flushed(writer)
        async with worker(redis_server_process, prefix, stock) as newcomer:
            assert (await newcomer.read("lamp"))[0] == 4
        assert (await writer.read("lamp"))[0] == 4
        await _until_flushed(writer)


@pytest.mark.parametrize("outage", ["stalled", "restarted"])
async def test_another_process_drops_what_predates_the_write(
        redis_server_process: RedisServerProcess, tmp_path: Path, outage: str) -> None:
    """Another process's local cache holds lamp: 5 from before the outage. The writer's
    invalidation is published when Redis answers again: the other process hears it if
    it is still subscribed (a stalled Redis), and if it was not (a restarted one: its
    subscription broke) the generation counter tells it, on reconnecting, to drop what
    it holds."""
    stock = tmp_path / "stock.json"
    stock.write_text(json.dumps({"lamp": 5}))
    prefix = f"outage-{tmp_path.name}"
    async with worker(redis_server_process, prefix, stock) as writer, \
            worker(redis_server_process, prefix, stock) as reader:
        assert (await writer.read("lamp"))[0] == 5
        assert await reader.read("lamp") == (5, "shared_cache")  # and now in its local cache
        if outage == "stalled":
            redis_server_process.pause()
            try:
                await writer.ask("ship lamp")
            finally:
                redis_server_process.resume()
        else:
            redis_server_process.stop()
            try:
                await writer.ask("ship lamp")
            finally:
                redis_server_process.start()
        await _until_flushed(writer)
        with anyio.fail_after(20):  # the reader's listener reconnects, or hears the flush
            while (units := (await reader.read("lamp"))[0]) != 4:
                assert units == 5
                await anyio.sleep(0.05)
