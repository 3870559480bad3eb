"""The Temporal tests' harness: worker processes (``agentrt worker``) on the session's
dev server, the fake Messages API answering them over HTTP, a SQLite thread store and
Redis (events, the shared cache, the tools' records) shared by all of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import processes
import redis.asyncio as aioredis
from anyio.streams.buffered import BufferedByteReceiveStream
from reliability.support import warehouse_model
from temporalio.client import Client

from agentrt import load_settings
from agentrt.temporal import Options, TemporalRuntime, run_worker
from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply, ToolUse

from .fleet import REDIS_URL, FleetAgent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import Process, TaskGroup

    from agentrt import Settings
    from agentrt.testing import Step

HERE = Path(__file__).resolve().parent
TARGET = f"{HERE / 'fleet.py'}:FleetAgent"
# heartbeat every second, a dead worker's activity moves on after this
HEARTBEAT_TIMEOUT = 3.0


def task_of(request: RecordedRequest) -> str:
    first = request.body["messages"][0]["content"]
    return str(first if isinstance(first, str) else first[0]["text"])


def fleet_model(request: RecordedRequest) -> Reply:
    """``Ship: a, b``: the crash tests' warehouse (per item a stock look-up and a shipment,
    a shipment whose outcome is unknown checked before shipping again). ``Check: a``: a
    stock look-up and a slow check at once. ``Refund: a``: a refund (it requires
    approval)."""
    verb, _, rest = task_of(request).partition(": ")
    item = rest.split(", ")[0]
    answered = any(block.get("type") == "tool_result"
                   for message in request.body["messages"]
                   if isinstance(message["content"], list) for block in message["content"])
    if verb == "Check":
        if not answered:
            return Reply(text="Looking.", tool_calls=[ToolUse("stock", {"item": item}),
                                                      ToolUse("slow_check", {"item": item})])
        return Reply(text=f"Checked {item}.")
    if verb == "Refund":
        if not answered:
            return Reply(text="Refunding.", tool_calls=[ToolUse("refund", {"item": item})])
        return Reply(text="Refund settled.")
    return warehouse_model(request)


class Worker:
    """One ``agentrt worker`` process; its stderr (JSON logs) kept for failures."""

    def __init__(self, process: Process, group: TaskGroup) -> None:
        self.process = process
        self.log: list[str] = []
        self._ready = anyio.Event()
        group.start_soon(self._drain)

    async def _drain(self) -> None:
        assert self.process.stderr is not None
        lines = BufferedByteReceiveStream(self.process.stderr)
        try:
            while True:
                line = (await lines.receive_until(b"\n", 1 << 20)).decode(errors="replace")
                self.log.append(line)
                if "temporal.worker_started" in line:
                    self._ready.set()
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError):
            self._ready.set()

    async def ready(self) -> None:
        with anyio.fail_after(30):
            await self._ready.wait()
        assert self.process.returncode is None, "\n".join(self.log[-30:])

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)


class Fleet:
    """Workers, the fake model, the store and Redis of one test."""

    def __init__(self, address: str, server: FakeAnthropicServer, tmp: Path,
                 stack: AsyncExitStack, group: TaskGroup) -> None:
        self.address = address
        self.server = server
        self.prefix = f"tfleet{uuid.uuid4().hex[:12]}"
        self.queue = f"q-{self.prefix}"
        self.db = tmp / "threads.db"
        self.stack = stack
        self.group = group
        self.redis = aioredis.Redis.from_url(REDIS_URL, socket_timeout=60)  # BLPOP waits
        self.workers: list[Worker] = []

    def settings(self) -> Settings:
        return load_settings(thread_store="sqlite", sqlite_path=str(self.db),
                             redis_url=REDIS_URL, redis_prefix=self.prefix)

    def env(self, hang: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTRT_", "FLEET_"))}
        env.update(AGENTRT_THREAD_STORE="sqlite", AGENTRT_SQLITE_PATH=str(self.db),
                   AGENTRT_ANTHROPIC_BASE_URL=self.server.base_url,
                   AGENTRT_ANTHROPIC_API_KEY="sk-test", AGENTRT_REDIS_URL=REDIS_URL,
                   AGENTRT_REDIS_PREFIX=self.prefix, AGENTRT_LOG_FORMAT="json",
                   AGENTRT_LOG_LEVEL="info", FLEET_PREFIX=self.prefix,
                   # a dead worker's single-flight lease expires as fast as its activity
                   AGENTRT_LEASE_TTL=str(HEARTBEAT_TIMEOUT),
                   PYTHONUNBUFFERED="1")
        if hang is not None:
            env["FLEET_HANG"] = hang
        return env

    async def worker(self, *, hang: str | None = None) -> Worker:
        """A worker process, once it polls the task queue."""
        process = await self.stack.enter_async_context(processes.opened(
            [sys.executable, "-m", "agentrt", "worker", TARGET, "--temporal", self.address,
             "--task-queue", self.queue], env=self.env(hang), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, exit_timeout=20))
        worker = Worker(process, self.group)
        self.workers.append(worker)
        await worker.ready()
        return worker

    async def start(self, count: int, *, hang: str | None = None) -> list[Worker]:
        """``count`` workers started at once."""
        started: list[Worker] = []

        async def one() -> None:
            started.append(await self.worker(hang=hang))

        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
        return started

    @asynccontextmanager
    async def in_process_worker(self) -> AsyncIterator[None]:
        """A worker in this process (the tools' FLEET_ variables set by the caller)."""
        settings = load_settings(thread_store="sqlite", sqlite_path=str(self.db),
                                 anthropic_base_url=self.server.base_url,
                                 anthropic_api_key="sk-test", redis_url=REDIS_URL,
                                 redis_prefix=self.prefix, lease_ttl=HEARTBEAT_TIMEOUT)
        client = await Client.connect(self.address)
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: run_worker([FleetAgent], client=client,
                                                task_queue=self.queue, settings=settings,
                                                stop=stop))
            try:
                yield
            finally:
                stop.set()

    def by_pid(self, pid: int) -> Worker:
        (worker,) = [w for w in self.workers if w.process.pid == pid]
        return worker

    @asynccontextmanager
    async def runtime(self, update_rpc_timeout: float | None = None
                      ) -> AsyncIterator[TemporalRuntime]:
        client = await Client.connect(self.address)
        async with TemporalRuntime(self.settings(), client=client, task_queue=self.queue,
                                   options=Options(heartbeat_timeout=HEARTBEAT_TIMEOUT),
                                   update_rpc_timeout=update_rpc_timeout) as runtime:
            yield runtime

    async def wait_for(self, fn: str, phase: str) -> dict[str, Any]:
        """The next tool record of ``fn`` at ``phase`` (earlier others are skipped)."""
        with anyio.fail_after(30):
            while True:
                popped = await self.redis.blpop([f"{self.prefix}:signal"], timeout=30)
                assert popped is not None, f"no {fn} {phase} record"
                entry: dict[str, Any] = json.loads(popped[1])
                if entry["fn"] == fn and entry["phase"] == phase:
                    return entry

    async def records(self) -> list[dict[str, Any]]:
        return [json.loads(item) for item in
                await self.redis.lrange(f"{self.prefix}:log", 0, -1)]

    def stop(self) -> None:
        for worker in self.workers:  # the survivors stop gracefully (SIGTERM)
            if worker.process.returncode is None:
                worker.process.terminate()

    async def aclose(self) -> None:
        keys = [key async for key in self.redis.scan_iter(f"{self.prefix}*")]
        if keys:
            await self.redis.delete(*keys)
        await self.redis.aclose()


@asynccontextmanager
async def fleet(address: str, tmp: Path,
                model: Callable[[RecordedRequest], Step | Any] = fleet_model
                ) -> AsyncIterator[Fleet]:
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(FakeAnthropicServer(model))
        group = await stack.enter_async_context(anyio.create_task_group())
        harness = Fleet(address, server, tmp, stack, group)
        stack.push_async_callback(harness.aclose)
        try:
            yield harness
        except BaseException:
            for _worker in harness.workers:  # shown with the failure (captured stdout)
                pass
            raise
        harness.stop()
        group.cancel_scope.cancel()
