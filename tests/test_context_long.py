"""A 300-turn tool-heavy conversation (20 KB results) on a 50,000-token model completes on
every store, each request under the budget; the stored thread stays whole."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from test_context import MODEL, WINDOW, Pages

from agentrt import (
    Agent,
    MemoryThreadStore,
    Runtime,
    SQLiteThreadStore,
    load_settings,
)
from agentrt.context import CLEARED, SUMMARY, ContextPolicy
from agentrt.llm._usage import Usage
from agentrt.testing import FunctionModel
from agentrt.testing._context import PageReading

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from agentrt.thread import Message, ThreadStore

# 100-300 model turns each: 3-13 s alone, several times that beside other suites
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

def reader(strategy: str, pages: Pages) -> type[Agent]:
    class Reader(Agent):
        model = MODEL
        tools = (pages,)
        pipeline = ("turn_dedup", "memo")  # a call the memo does not answer runs
        context_policy = ContextPolicy(strategy=strategy,  # type: ignore[arg-type]
                                       windows={MODEL: WINDOW})
    return Reader


@asynccontextmanager
async def conversation(store: ThreadStore, strategy: str, *, per_run: int = 10,
                       reread_every: int | None = 50
                       ) -> AsyncIterator[tuple[Agent, Pages, PageReading]]:
    script = PageReading(per_run, reread_every=reread_every)
    model = FunctionModel(script, context_windows={MODEL: WINDOW})
    settings = load_settings(thread_store="memory", stream=False, max_iterations=50)
    pages = Pages()
    async with Runtime(settings, model=model, store=store) as runtime:
        yield reader(strategy, pages)(runtime=runtime), pages, script


async def talk(agent: Agent, runs: int) -> str:
    thread_id: str | None = None
    for index in range(runs):
        result = await agent.run(f"Please read the next pages ({index}).", thread_id=thread_id)
        assert result.stop_reason == "end_turn", result
        thread_id = result.thread_id
    assert thread_id is not None
    return thread_id


def prompts(messages: list[Message]) -> list[int]:
    """The prompt tokens the API reported for each reply of the thread."""
    return [Usage(**m.metadata["usage"]).prompt_tokens for m in messages
            if m.role == "assistant"]


async def check_long_conversation(store: ThreadStore, strategy: str, runs: int = 30) -> None:
    """``runs`` user turns of 10 tool turns each (300 with 30 runs)."""
    started = time.monotonic()
    async with conversation(store, strategy) as (agent, pages, script):
        thread_id = await talk(agent, runs)
        budget = ContextPolicy(windows={MODEL: WINDOW}).budget_for(MODEL, 4096)
        stored = await store.messages(thread_id)
        sizes = prompts(stored)
        assert len(sizes) == 11 * runs
        assert max(sizes) <= budget, (max(sizes), budget)
        assert len(stored) == 22 * runs  # nothing dropped from the store
        results = [b for m in stored for b in m.blocks() if b.get("type") == "tool_result"]
        assert len(results) == 10 * runs and all(len(str(b["content"])) >= 20_000 for b in results)
        kinds = {e.kind for e in await store.events(thread_id)}
        assert SUMMARY in kinds and (CLEARED in kinds or strategy == "summary")
        assert script.summaries >= 1
        # page 1 was read again 6 times, long after its result had left the context:
        # each ran again instead of being answered by the memo from what the model
        # no longer sees
        assert pages.calls.count(1) == 1 + runs // 5
        assert sorted(set(pages.calls)) == [p for p in range(1, 10 * runs + 1) if p % 50]
    assert time.monotonic() - started < 60


async def test_300_turns_memory_store_stub() -> None:
    await check_long_conversation(MemoryThreadStore(), "stub")


async def test_100_turns_memory_store_api_edit() -> None:
    """The API's clearing sends cleared results whole (the fake then parses them twice):
    100 turns keep it fast; bench/context.py runs 300."""
    await check_long_conversation(MemoryThreadStore(), "api_edit", runs=10)


async def test_300_turns_sqlite_store(tmp_path: Path) -> None:
    async with SQLiteThreadStore(tmp_path / "threads.db") as store:
        await check_long_conversation(store, "auto")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_300_turns_redis_store(redis_gate: Any) -> None:
    from agentrt.thread.redis import RedisThreadStore

    await check_long_conversation(RedisThreadStore(redis_gate()), "auto")
