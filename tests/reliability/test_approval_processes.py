"""Approvals across OS processes (issue 19): a run paused in this process is resumed in
another, on SQLite and on a real redis-server; two resumes racing on two processes run
the approved call once; a resume SIGKILLed inside the approved call is resumed again,
and the model is told the outcome is unknown, never a second payment. Also: the Redis
store's thread_ttl never drops a thread with calls pending."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import processes
import pytest

from agentrt import Runtime, load_settings
from agentrt.testing import FakeAnthropicServer
from agentrt.thread.redis import RedisThreadStore
from agentrt.thread.sqlite import SQLiteThreadStore

from .approval_child import Payments, model, pay_agent
from .support import Child, check_thread

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from redis_support import GateFactory

    from agentrt import ThreadStore

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

CHILD = Path(__file__).with_name("approval_child.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio


@asynccontextmanager
async def children(*configs: dict[str, Any]) -> AsyncIterator[list[Child]]:
    async with contextlib.AsyncExitStack() as stack:
        started = [Child(await stack.enter_async_context(processes.opened(
            [sys.executable, str(CHILD), json.dumps(config)], env=dict(os.environ),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
            for config in configs]
        for child in started:
            assert await child.read() == "ready"
        yield started


class Setup:
    """The parent's side: the fake API, a store of the kind, and the children's config."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.effects = str(tmp_path / "effects.log")
        self.config: dict[str, Any] = {"store": kind, "effects": self.effects, "wait": 20.0,
                                       "lease": 1.0}
        if kind == "sqlite":
            self.config["sqlite_path"] = str(tmp_path / "threads.db")
        else:
            self.gates: GateFactory = request.getfixturevalue("redis_gate")
            self.config.update(redis_url=request.getfixturevalue("redis_url"),
                               redis_prefix=request.getfixturevalue("redis_prefix"))

    def store(self, ttl: float | None = None) -> ThreadStore:
        if self.kind == "sqlite":
            return SQLiteThreadStore(self.config["sqlite_path"])
        return RedisThreadStore(self.gates(), ttl=ttl)

    def effects_seen(self) -> list[str]:
        path = Path(self.effects)
        return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


async def pause(setup: Setup, server: FakeAnthropicServer, **settings: Any) -> str:
    """A run in this process that stops waiting for approval of its payment."""
    tool = Payments(setup.effects)
    async with server.client(max_retries=0) as client, Runtime(
            load_settings(llm_max_retries=0, **settings), client=client,
            store=setup.store(settings.pop("ttl", None))) as rt:
        result = await pay_agent(tool)(rt).run("Pay 10")
    assert result.stop_reason == "approval_required"
    assert [p.id for p in result.pending] == ["toolu_pay"]
    assert setup.effects_seen() == []
    return result.thread_id


KINDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


@pytest.fixture
def setup(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Setup:
    return Setup(kind, tmp_path, request)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_paused_run_resumes_in_another_process(
        setup: Setup) -> None:
    async with FakeAnthropicServer(model) as server:
        thread = await pause(setup, server)
        config = {**setup.config, "base_url": server.base_url, "thread_id": thread,
                  "approve": ["toolu_pay"]}
        async with children(config) as [child]:
            await child.send(b"go\n")
            outcome = await child.read()
        assert outcome == {"ok": True, "text": "result: paid 10", "stop_reason": "end_turn"}
        assert setup.effects_seen() == ["start", "done"]
        store = setup.store()
        async with store:
            check_thread(await store.messages(thread))


@pytest.mark.parametrize("kind", KINDS)
async def test_two_resumes_racing_pay_once(
        setup: Setup) -> None:
    async with FakeAnthropicServer(model) as server:
        thread = await pause(setup, server)
        config = {**setup.config, "base_url": server.base_url, "thread_id": thread,
                  "approve": ["toolu_pay"]}
        async with children(config, dict(config)) as both:
            for child in both:
                await child.send(b"go\n")
            outcomes = [await child.read() for child in both]
    assert setup.effects_seen() == ["start", "done"]
    assert sorted(o["ok"] for o in outcomes) == [False, True]
    [lost] = [o for o in outcomes if not o["ok"]]
    assert lost["error"] == "ApprovalError" and "already approved" in lost["message"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_resume_killed_inside_the_approved_call_never_pays_twice(
        setup: Setup) -> None:
    async with FakeAnthropicServer(model) as server:
        thread = await pause(setup, server)
        config = {**setup.config, "base_url": server.base_url, "thread_id": thread,
                  "approve": ["toolu_pay"], "block": True}
        async with children(config) as [child]:
            await child.send(b"go\n")
            assert await child.read() == "in_tool"
            child.process.kill()  # SIGKILL: no clean-up, the claim is left to expire
            await child.process.wait()
        assert setup.effects_seen() == ["start"]
        tool = Payments(setup.effects)
        async with server.client(max_retries=0) as client, Runtime(
                load_settings(llm_max_retries=0, thread_wait=20.0), client=client,
                store=setup.store()) as rt:
            agent = pay_agent(tool)(rt)
            result = await agent.resume(thread, approve=["toolu_pay"])  # the same decision
            messages = await rt.store.messages(thread)
    assert "outcome is unknown" in result.text
    assert setup.effects_seen() == ["start"]  # never a second payment
    check_thread(messages)


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis"])
async def test_thread_ttl_never_drops_a_thread_with_calls_pending(setup: Setup) -> None:
    async with FakeAnthropicServer(model) as server:
        gate = setup.gates()
        tool = Payments(setup.effects)
        async with server.client(max_retries=0) as client, Runtime(
                load_settings(llm_max_retries=0, approval_timeout=3600), client=client,
                store=RedisThreadStore(gate, ttl=2)) as rt:
            agent = pay_agent(tool)(rt)
            result = await agent.run("Pay 10")
            store = rt.store
            assert isinstance(store, RedisThreadStore)
            ttls = [await gate.client.pttl(key) for key in store.keys(result.thread_id)]
            assert all(ttl > 3_000_000 for ttl in ttls if ttl != -2), ttls
            await agent.resume(result.thread_id, deny={"toolu_pay": "no"})
            ttls = [await gate.client.pttl(key) for key in store.keys(result.thread_id)]
            assert all(0 < ttl <= 2_000 for ttl in ttls if ttl != -2), ttls
