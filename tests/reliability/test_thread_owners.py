"""Thread owners (issue 15, point 2): a run whose identity is not the one that created
the thread is refused, before it reads or writes anything.

Failed before: a second tenant reusing a thread id was answered from the first
tenant's history (the memo served alice's tool result to bob, and bob's model saw
alice's conversation).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentrt import (
    Agent,
    MemoryThreadStore,
    Runtime,
    SQLiteThreadStore,
    ThreadOwnerError,
    load_settings,
)
from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply, ToolCall

from .support import harness

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

V1_FILE = Path(__file__).parents[1] / "thread" / "fixtures" / "threads-v1.db"
ALICE = {"account": "alice"}
BOB = {"account": "bob"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def shop_model(request: RecordedRequest) -> Reply:
    """Looks the lamp up once per run, then answers with what it read."""
    last = request.body["messages"][-1]["content"]
    if isinstance(last, list) and any(b["type"] == "tool_result" for b in last):
        return Reply(text=f"stock: {last[0]['content']}")
    return Reply(tool_calls=[ToolCall("stock", {"item": "lamp"})])


def as_identity(agent: Agent, identity: dict[str, str] | None) -> Agent:
    return type(agent)(agent.runtime, identity=identity)


async def test_another_identity_is_refused_before_anything_is_read(anyio_backend: str) -> None:
    async with harness(shop_model) as (alice, server, tool):
        alice = as_identity(alice, ALICE)
        await alice.run("how many lamps?", thread_id="t1")
        stored = await alice.runtime.store.messages("t1")
        requests = len(server.requests)
        for identity in (BOB, None, {"account": "alice", "user": "x"}):
            with pytest.raises(ThreadOwnerError) as caught:
                await as_identity(alice, identity).run("how many lamps?", thread_id="t1")
            assert caught.value.thread_id == "t1"
            assert "alice" not in str(caught.value)  # the owner is never named
        assert len(server.requests) == requests  # nothing reached the model
        assert tool.reads == ["lamp"]  # ... or a tool
        assert [m.id for m in await alice.runtime.store.messages("t1")] == [m.id for m in stored]
        # the owner goes on, with the same identity however its keys are ordered
        again = await as_identity(alice, {"account": "alice"}).run("again?", thread_id="t1")
        assert again.text.startswith("stock:")
        info = await alice.runtime.store.get_thread("t1")
        assert info is not None and info.owner == '{"account":"alice"}'


async def test_a_thread_without_owner_is_not_taken_by_an_identity(anyio_backend: str) -> None:
    async with harness(shop_model) as (agent, _, _):
        await agent.runtime.store.create_thread("t1")  # as an application did before owners
        with pytest.raises(ThreadOwnerError):
            await as_identity(agent, BOB).run("hi", thread_id="t1")
        assert (await agent.run("hi", thread_id="t1")).text  # no identity: its owner ("")


async def test_claim_unowned_threads_lets_the_first_identity_take_it(anyio_backend: str) -> None:
    async with harness(shop_model, claim_unowned_threads=True) as (agent, _, _):
        await agent.run("hi", thread_id="t1")  # created by a run without identity
        assert (await as_identity(agent, BOB).run("hi", thread_id="t1")).text
        info = await agent.runtime.store.get_thread("t1")
        assert info is not None and info.owner == '{"account":"bob"}'
        for identity in (ALICE, None):  # now it is bob's
            with pytest.raises(ThreadOwnerError):
                await as_identity(agent, identity).run("hi", thread_id="t1")


async def test_two_identities_claiming_one_unowned_thread_one_wins(anyio_backend: str) -> None:
    store = MemoryThreadStore()
    await store.create_thread("t1")
    outcomes: list[str] = []
    async with harness(lambda r: Reply(text="ok"), store=store,
                       claim_unowned_threads=True) as (agent, _, _):
        async def run(identity: dict[str, str]) -> None:
            try:
                await as_identity(agent, identity).run("hi", thread_id="t1")
                outcomes.append(identity["account"])
            except ThreadOwnerError:
                outcomes.append("refused")

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, ALICE)
            tg.start_soon(run, BOB)
    assert sorted(outcomes)[1:] == ["refused"] and sorted(outcomes)[0] in ("alice", "bob")


class Plain(Agent):
    model = "claude-test"


async def test_threads_of_a_version_1_file_belong_to_the_empty_identity(
        tmp_path: Path, anyio_backend: str) -> None:
    db = tmp_path / "threads.db"
    shutil.copyfile(V1_FILE, db)  # its thread "empty" was written by agentrt before owners
    for claim_unowned in (False, True):
        settings = load_settings(thread_store="sqlite", claim_unowned_threads=claim_unowned)
        async with FakeAnthropicServer(lambda r: Reply(text="ok")) as server, \
                server.client() as client, SQLiteThreadStore(db) as store, \
                Runtime(settings, client=client, store=store) as runtime:
            if not claim_unowned:
                with pytest.raises(ThreadOwnerError):
                    await Plain(runtime, identity=BOB).run("hi", thread_id="empty")
                # a run without identity continues it, as before the upgrade
                assert (await Plain(runtime).run("hi", thread_id="empty")).text == "ok"
            else:
                assert (await Plain(runtime, identity=BOB).run("hi", thread_id="empty")).text
                info = await store.get_thread("empty")
                assert info is not None and info.owner == '{"account":"bob"}'
