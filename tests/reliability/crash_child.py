"""The crash-and-resume workload: a warehouse agent, and a zygote that forks runs of it
which SIGKILL themselves at a chosen point.

``python crash_child.py`` is the zygote: it imports agentrt once, then reads one JSON
job per line on stdin, forks a child per job (a fork costs milliseconds; a fresh
interpreter importing the SDK costs a second) and writes one JSON line per job when
the child is gone: ``{"job": n, "signal": 9}`` if it was killed.

A child runs the agent on the job's thread (SQLite store, the parent's fake Messages
API) and kills itself with SIGKILL (no cleanup, no ``finally``) at ``job["point"]``:

    before_llm      before its n-th model request is sent
    mid_stream      after the first text of its n-th streamed reply
    mid_tool        in its n-th shipment, after "start" and before the effect
    after_tool      in its n-th shipment, after the effect, before returning
    before_persist  before its n-th tool-results message is stored
    after_persist   after its n-th tool-results message is stored
    random_time     at a random moment (a timer thread), finished or not

Side effects are recorded durably (an O_APPEND file, fsync'd per line) so the parent
can count them; so is every message id the store has acknowledged (the journal).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __name__ == "__main__":  # run as a script: make `reliability` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio

from agentrt import Agent, Message, SQLiteThreadStore, Tool, function

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from agentrt import TextDelta
    from agentrt.llm._model import Model, ModelReply


def append_line(path: str, record: dict[str, Any]) -> None:
    """One JSON line, on disk before this returns (a SIGKILL right after keeps it)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: str | Path) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Trap:
    """Counts visits to kill points; SIGKILLs this process at the chosen visit."""

    def __init__(self, point: str | None = None, occurrence: int = 1) -> None:
        self.point = point
        self.occurrence = occurrence
        self.seen: dict[str, int] = {}

    def visit(self, point: str) -> None:
        self.seen[point] = self.seen.get(point, 0) + 1
        if point == self.point and self.seen[point] == self.occurrence:
            die()


class Warehouse(Tool):
    """Shipments (a side effect) and their status, backed by the durable executions log."""

    def __init__(self, log_path: str, trap: Trap | None = None) -> None:
        self.log_path = log_path
        self.trap = trap or Trap()

    @function(read_only=True, ttl=60)
    async def stock(self, item: str) -> dict[str, Any]:
        """Units in stock."""
        return {"item": item, "units": 3}

    @function(read_only=True, ttl=60, cache_tags=("orders",))
    async def order_status(self, item: str) -> str:
        """Whether an item has shipped."""
        shipped = any(r["item"] == item and r["phase"] == "effect"
                      for r in read_lines(self.log_path))
        return "shipped" if shipped else "not shipped"

    @function(invalidates=("orders",))
    async def ship(self, item: str) -> str:
        """Ship an item (never run twice by the runtime)."""
        append_line(self.log_path, {"item": item, "phase": "start", "pid": os.getpid()})
        self.trap.visit("mid_tool")
        await anyio.sleep(0.001)
        append_line(self.log_path, {"item": item, "phase": "effect", "pid": os.getpid()})
        self.trap.visit("after_tool")
        return f"shipped {item}"


class WarehouseAgent(Agent):
    model = "claude-test"
    system = "Ship what you are asked to, once each."
    max_iterations = 30


class JournaledStore(SQLiteThreadStore):
    """Journals every acknowledged message id; kill points around tool results."""

    def __init__(self, path: str, journal: str, trap: Trap) -> None:
        super().__init__(path)
        self.journal = journal
        self.trap = trap

    async def append(self, thread_id: str, messages: Sequence[Message], *,
                     expected_count: int | None = None) -> None:
        results = any(b.get("type") == "tool_result" for m in messages for b in m.blocks())
        if results:
            self.trap.visit("before_persist")
        await super().append(thread_id, messages, expected_count=expected_count)
        for message in messages:
            append_line(self.journal, {"thread": thread_id, "id": message.id})
        if results:
            self.trap.visit("after_persist")


class TrappedModel:
    """The runtime's model (a ModelClient) with kill points before a request and mid-stream."""

    def __init__(self, inner: Model, trap: Trap) -> None:
        self.inner = inner
        self.trap = trap

    async def turn(self, request: dict[str, Any], *, stream: bool,
                   logger: Any = None) -> AsyncIterator[TextDelta | ModelReply]:
        self.trap.visit("before_llm")
        texts = 0
        async for item in self.inner.turn(request, stream=stream, logger=logger):
            if type(item).__name__ == "TextDelta":
                texts += 1
                if texts == 1:
                    self.trap.visit("mid_stream")
            yield item

    async def aclose(self) -> None:
        await self.inner.aclose()


async def run_job(job: dict[str, Any]) -> None:
    import anthropic

    from agentrt import Runtime, load_settings
    from agentrt.log import configure_logging

    configure_logging("error", "json", sys.stderr)
    trap = Trap(job.get("point"), int(job.get("occurrence", 1)))
    if job.get("point") == "random_time":
        threading.Timer(float(job["delay"]), die).start()
    # a short lease: a killed run holds its thread this long, and the resume waits it out
    settings = load_settings(thread_store="memory", llm_max_retries=0, thread_lease=0.3)
    async with anthropic.AsyncAnthropic(base_url=job["base_url"], api_key="test-key",
                                        max_retries=0) as client, JournaledStore(
            job["db"], job["journal"], trap) as store, Runtime(
            settings, client=client, store=store) as runtime:
        runtime.model = TrappedModel(runtime.model, trap)
        agent = type("WarehouseAgent", (WarehouseAgent,),
                     {"tools": (Warehouse(job["log"], trap),)})(runtime)
        await agent.run(job["task"], thread_id=job["thread"])
    if job.get("point") == "random_time":
        await anyio.sleep(60)  # the timer has not fired yet: wait for it


def preload() -> None:
    """Imports, once in the zygote, what every child would otherwise import for itself:
    the SDK and the runtime (about 4 s per child on a loaded machine, against a fork's few
    milliseconds)."""
    import anthropic.resources.messages  # noqa: F401  (the SDK loads its resources lazily)

    from agentrt import Runtime, load_settings  # noqa: F401
    from agentrt.log import configure_logging  # noqa: F401


def zygote() -> None:
    preload()
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: run, and never return into the zygote's loop
            code = 0
            try:
                anyio.run(run_job, job)
            except BaseException as exc:
                sys.stderr.write(f"crash_child: job {job['job']} failed: {exc!r}\n")
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        report = {"job": job["job"], "signal": os.WTERMSIG(status)
                  if os.WIFSIGNALED(status) else None,
                  "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    zygote()
