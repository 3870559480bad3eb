"""One run per thread (issue 15, point 1): two runs on one thread started together,
0-200 ms apart, in one process and in two OS processes, on every store.

Failed before: with SQLite and the second run 50 ms after the first, the stored order
became user, assistant tool_use, user, assistant tool_use, tool_result, tool_result
(every later run then fails with the API's 400), and neither run reported an error.
Now the second run waits for the first (``thread_wait``) or is refused with
``ThreadBusyError``; afterwards the thread alternates, every tool_use has exactly one
tool_result, and a third run succeeds. A claim whose process was SIGKILLed is taken
over once its lease has run out.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import processes
import pytest

from agentrt import (
    MemoryThreadStore,
    Message,
    Runtime,
    ThreadBusyError,
    load_settings,
)
from agentrt.testing import FakeAnthropicServer

from .claim_child import Recorder, model, recorder_agent
from .support import Child, check_thread

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from redis_support import GateFactory

    from agentrt import Agent, RunResult, ThreadStore

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio; the in-process core is also run on trio below

CHILD = Path(__file__).with_name("claim_child.py")
STAGGERS = [0.0, 0.05, 0.2]


def check_alternates(messages: Sequence[Message], runs: int) -> None:
    """Whole runs one after the other: user, tool_use, tool_result, text, per run;
    every tool_use answered exactly once."""
    check_thread(messages)
    roles = [m.role for m in messages]
    assert roles == ["user", "assistant"] * (2 * runs), roles
    uses = Counter(b["id"] for m in messages for b in m.blocks() if b["type"] == "tool_use")
    results = Counter(b["tool_use_id"] for m in messages for b in m.blocks()
                      if b["type"] == "tool_result")
    assert uses == results and set(uses.values()) == {1}
    for start in range(0, len(messages), 4):  # each run's tool_use records its own note
        note = messages[start].content
        assert messages[start + 1].blocks()[0]["input"] == {"note": note}


# -- in one process -----------------------------------------------------------------------


@pytest.fixture
def gates(request: pytest.FixtureRequest, kind: str) -> GateFactory | None:
    """The shared Redis's gate factory (test prefix, keys deleted afterwards) for "redis"."""
    return request.getfixturevalue("redis_gate") if kind == "redis" else None


@asynccontextmanager
async def agents(kind: str, count: int, *, tmp_path: Path, redis_gate: GateFactory | None,
                 shared_runtime: bool = False,
                 **settings: Any) -> AsyncIterator[tuple[list[Agent], Recorder, ThreadStore]]:
    """``count`` agents on one thread store: in one runtime, or one runtime each (as two
    service replicas would be, sharing nothing but the store's data)."""
    tool = Recorder()
    options: dict[str, Any] = {"thread_store": kind, "llm_max_retries": 0, **settings}
    memory = MemoryThreadStore()
    if kind == "sqlite":
        options["sqlite_path"] = tmp_path / "threads.db"
    if kind == "redis":
        assert redis_gate is not None
        gate = redis_gate()  # registers the prefix's keys for deletion afterwards
        options.update(redis_url=gate.url, redis_prefix=gate.prefix)
    async with FakeAnthropicServer(model, latency=0.02) as server, AsyncExitStack() as stack:
        client = await stack.enter_async_context(server.client(max_retries=0))
        made: list[Runtime] = []
        for _ in range(1 if shared_runtime else count):
            runtime = Runtime(load_settings(**options), client=client,
                              store=memory if kind == "memory" else None)
            made.append(await stack.enter_async_context(runtime))
        yield ([recorder_agent(tool)(made[0 if shared_runtime else n]) for n in range(count)],
               tool, made[0].store)


async def race(first: Agent, second: Agent, stagger: float,
               thread_id: str) -> list[RunResult | BaseException]:
    """Two runs on ``thread_id``, the second ``stagger`` seconds after the first."""
    outcomes: list[RunResult | BaseException] = []

    async def run(agent: Agent, note: str, delay: float) -> None:
        await anyio.sleep(delay)
        try:
            outcomes.append(await agent.run(note, thread_id=thread_id))
        except Exception as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, first, "first", 0.0)
        tg.start_soon(run, second, "second", stagger)
    return outcomes


@pytest.mark.parametrize("stagger", STAGGERS)
@pytest.mark.parametrize("kind", [
    "memory", "sqlite", pytest.param("redis", marks=[pytest.mark.redis])])
@pytest.mark.parametrize("shared_runtime", [True, False], ids=["one-runtime", "two-runtimes"])
async def test_two_runs_on_one_thread_in_one_process(
        gates: GateFactory | None, tmp_path: Path, kind: str, stagger: float,
        shared_runtime: bool) -> None:
    # (a generous wait: a loaded CI box can make one run take seconds)
    async with agents(kind, 2, tmp_path=tmp_path, redis_gate=gates, thread_wait=60,
                      shared_runtime=shared_runtime) as (pair, tool, store):
        with anyio.fail_after(90):
            outcomes = await race(pair[0], pair[1], stagger, "t1")
        assert all(not isinstance(o, BaseException) for o in outcomes), outcomes
        assert sorted(tool.notes) == ["first", "second"]  # each side effect once
        check_alternates(await store.messages("t1"), runs=2)
        third = await pair[1].run("third", thread_id="t1")
        assert third.text == "done"
        check_alternates(await store.messages("t1"), runs=3)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_run_that_cannot_wait_is_refused_with_thread_busy(tmp_path: Path) -> None:
    async with agents("memory", 2, tmp_path=tmp_path, redis_gate=None, shared_runtime=True,
                      thread_wait=0) as (pair, tool, store):
        outcomes = await race(pair[0], pair[1], 0.05, "t1")
        (busy,) = [o for o in outcomes if isinstance(o, BaseException)]
        assert isinstance(busy, ThreadBusyError) and busy.thread_id == "t1"
        assert "'t1' is busy" in str(busy)
        assert tool.notes == ["first"]  # the refused run did nothing
        check_alternates(await store.messages("t1"), runs=1)
        assert (await pair[1].run("third", thread_id="t1")).text == "done"
        check_alternates(await store.messages("t1"), runs=2)
        stats = pair[0].runtime.claims.statistics()
        assert (stats.refused, stats.held, stats.waiting) == (1, 0, 0)


async def test_a_run_waits_no_longer_than_thread_wait(tmp_path: Path) -> None:
    async with agents("memory", 1, tmp_path=tmp_path, redis_gate=None,
                      thread_wait=0.3) as (pair, _, store):
        await store.create_thread("t1")
        assert await store.claim("t1", "run_elsewhere", lease=60)  # another process has it
        started = anyio.current_time()
        with pytest.raises(ThreadBusyError):
            await pair[0].run("hello", thread_id="t1")
        assert 0.3 <= anyio.current_time() - started < 2.0
        assert await store.messages("t1") == []  # nothing stored, nothing asked


# -- in two OS processes ------------------------------------------------------------------


@asynccontextmanager
async def children(*configs: dict[str, Any]) -> AsyncIterator[list[Child]]:
    """The children, started through tests/processes.py; killed and reaped however the
    test ends."""
    async with contextlib.AsyncExitStack() as stack:
        started = [Child(await stack.enter_async_context(processes.opened(
            [sys.executable, str(CHILD), json.dumps(config)], env=dict(os.environ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
            for config in configs]
        try:
            yield started
        finally:
            for child in started:
                processes.kill_group(child.process)


@pytest.fixture
def store(gates: GateFactory | None, kind: str, tmp_path: Path) -> dict[str, Any]:
    """How a child opens the shared store."""
    if gates is None:
        return {"store": "sqlite", "sqlite_path": str(tmp_path / "threads.db")}
    gate = gates()
    return {"store": "redis", "redis_url": gate.url, "redis_prefix": gate.prefix}


@asynccontextmanager
async def parent_store(config: dict[str, Any]) -> AsyncIterator[ThreadStore]:
    """The children's store, opened in this process to check the thread."""
    options: dict[str, Any] = {"thread_store": config["store"]}
    if config["store"] == "sqlite":
        options["sqlite_path"] = config["sqlite_path"]
    else:
        options.update(redis_url=config["redis_url"], redis_prefix=config["redis_prefix"])
    async with FakeAnthropicServer(model) as server, server.client() as client, Runtime(
            load_settings(**options), client=client) as runtime:
        yield runtime.store


# Generous bounds: each child imports agentrt and the SDK, seconds on a loaded 2-CPU box.
PROCESS_TIMEOUT = 150


@pytest.mark.integration
@pytest.mark.timeout(PROCESS_TIMEOUT + 30)
@pytest.mark.parametrize("stagger", STAGGERS)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_two_runs_on_one_thread_in_two_processes(store: dict[str, Any],
                                                       stagger: float) -> None:
    async with FakeAnthropicServer(model, latency=0.02) as server:
        base = {**store, "base_url": server.base_url, "thread_id": "t1", "wait": 60.0,
                "lease": 5.0}
        with anyio.fail_after(PROCESS_TIMEOUT):
            async with children({**base, "note": "first", "stagger": 0.0},
                                {**base, "note": "second", "stagger": stagger}) as pair:
                for child in pair:
                    assert await child.read() == "ready"
                for child in pair:
                    await child.send(b"go\n")
                outcomes = [await child.read() for child in pair]
                for child in pair:
                    assert await child.process.wait() == 0
    assert [o["ok"] for o in outcomes] == [True, True], outcomes
    assert [o["executed"] for o in outcomes] == [1, 1]
    async with parent_store(store) as parent:
        check_alternates(await parent.messages("t1"), runs=2)
        async with FakeAnthropicServer(model) as server, server.client() as client:
            third_runtime = Runtime(load_settings(thread_store=store["store"]), client=client,
                                    store=parent)
            result = await recorder_agent(Recorder(seconds=0))(third_runtime).run(
                "third", thread_id="t1")
        assert result.text == "done"
        check_alternates(await parent.messages("t1"), runs=3)


@pytest.mark.integration
@pytest.mark.timeout(PROCESS_TIMEOUT + 30)
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_the_claim_of_a_killed_process_is_taken_over_after_its_lease(
        store: dict[str, Any]) -> None:
    # Renewed every lease / 3, the claim has at least 2 s left when its holder is killed. The
    # parent's store and SDK client are opened before the kill: opened after it, the SDK's
    # first import alone took 4 s with two suites side by side, past a 1 s lease.
    lease = 3.0
    async with FakeAnthropicServer(model) as server, parent_store(store) as parent, \
            server.client() as client:
        config = {**store, "base_url": server.base_url, "thread_id": "t1", "wait": 0.0,
                  "lease": lease, "note": "killed", "stagger": 0.0, "block": True}
        with anyio.fail_after(PROCESS_TIMEOUT):
            async with children(config) as (child,):
                assert await child.read() == "ready"
                await child.send(b"go\n")
                assert await child.read() == "in_tool"  # holding the thread, mid side effect
                child.process.send_signal(signal.SIGKILL)
                assert await child.process.wait() == -signal.SIGKILL
                killed_at = anyio.current_time()
        settings = load_settings(thread_store=store["store"], thread_lease=lease, thread_wait=0)
        async with Runtime(settings, client=client, store=parent) as runtime:
            agent = recorder_agent(Recorder(seconds=0))(runtime)
            with pytest.raises(ThreadBusyError):  # the dead process's claim still holds
                await agent.run("too soon", thread_id="t1")
            runtime.claims.wait = 10.0
            result = await agent.run("after the lease", thread_id="t1")
            took_over_after = anyio.current_time() - killed_at
        assert result.text == "done"
        assert took_over_after < lease + 3.0  # the lease, not thread_wait
        messages = await parent.messages("t1")
    check_thread(messages)
    # the killed run's side effect is answered as unknown, never run again
    answered = messages[2].blocks()[0]
    assert answered["is_error"] and "outcome is unknown" in str(answered["content"])
    assert [m.content for m in messages if isinstance(m.content, str)] == [
        "killed", "after the lease"]
