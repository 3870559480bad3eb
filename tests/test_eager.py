"""Eager execution (issue 21): read-only calls start while the reply still streams.

Run on the real SDK over HTTP to the fake Messages API, whose stream is held at a
chosen block by a ``Pause`` the test releases: every "before" and "while" below is
proven with events (and ``wait_all_tasks_blocked`` for "has not started"), never
with sleeps.
"""

from __future__ import annotations

import json
from collections import defaultdict
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from agentrt import (
    Agent,
    MalformedReplyError,
    MemoryThreadStore,
    Runtime,
    StreamInterruptedError,
    TextDelta,
    Tool,
    ToolCallFinished,
    ToolCallStarted,
    UsageLimits,
    function,
    load_settings,
)
from agentrt.testing import (
    CutStream,
    FakeAnthropicServer,
    MalformedEvent,
    Pause,
    Reply,
    ScriptedModel,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from agentrt import RunEvent
    from agentrt.testing import Step

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


class Library(Tool):
    """A read (``lookup``, held by ``gate`` when set) and a write (``note``)."""

    def __init__(self, store: MemoryThreadStore) -> None:
        self.store = store
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.cancel_seen = anyio.Event()
        self.started: defaultdict[str, anyio.Event] = defaultdict(anyio.Event)
        self.finished: defaultdict[str, anyio.Event] = defaultdict(anyio.Event)
        self.gate: anyio.Event | None = None
        self.stored_at_write: list[list[str]] = []  # the thread's roles when a write ran

    @function(read_only=True)
    async def lookup(self, q: str) -> dict[str, Any]:
        """Looks a word up."""
        self.calls.append(q)
        self.started[q].set()
        try:
            if self.gate is not None:
                await self.gate.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(q)
            self.cancel_seen.set()
            raise
        self.finished[q].set()
        return {"q": q, "n": len(q)}

    @function
    async def note(self, text: str) -> str:
        """Writes a note: a side effect."""
        self.calls.append(f"note:{text}")
        threads = await self.store.list_threads()
        messages = await self.store.messages(threads[0].id)
        self.stored_at_write.append([m.role for m in messages])
        return "noted"


class Librarian(Agent):
    system = "You look things up."


def use(name: str, id: str, **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": arguments}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


@asynccontextmanager
async def harness(steps: Sequence[Step], *, sdk: bool = True, agent_eager: bool | None = None,
                  usage_limits: UsageLimits | None = None, entered: bool = True,
                  **settings: Any
                  ) -> AsyncIterator[tuple[Agent, Any, Library, MemoryThreadStore]]:
    """``entered``: the Runtime entered (its task group runs the early calls), or not
    (the loop's generator holds a task group of its own for them)."""
    store = MemoryThreadStore()
    tool = Library(store)
    attrs = {"tools": (tool,), "eager_tools": agent_eager, "usage_limits": usage_limits}
    agent_class = type("Librarian", (Librarian,), attrs)
    options = load_settings(thread_store="memory", **settings)
    if not sdk:
        model = ScriptedModel(steps)
        async with Runtime(options, model=model, store=store) as rt:
            yield agent_class(rt), model, tool, store
        return
    async with FakeAnthropicServer(steps) as server, server.client() as client:
        rt = Runtime(options, client=client, store=store)
        try:
            if entered:
                await rt.__aenter__()
            yield agent_class(rt), server, tool, store
        finally:
            await rt.aclose()


async def collect(agent: Agent, events: list[RunEvent], thread_id: str | None = None,
                  seen: dict[str, anyio.Event] | None = None,
                  errors: list[Exception] | None = None) -> None:
    """Runs ``agent`` to its end, its events into ``events``; ``seen``: ToolCallStarted
    ids to signal; ``errors``: where the run's error goes (else it is raised)."""
    try:
        async with aclosing(agent.stream("go", thread_id=thread_id)) as stream:
            async for event in stream:
                events.append(event)
                if seen and isinstance(event, ToolCallStarted) and event.id in seen:
                    seen[event.id].set()
    except Exception as exc:
        if errors is None:
            raise
        errors.append(exc)


async def roles(store: MemoryThreadStore) -> list[str]:
    threads = await store.list_threads()
    return [m.role for m in await store.messages(threads[0].id)] if threads else []


def tool_events(events: Sequence[RunEvent]) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.id) for e in events
            if isinstance(e, ToolCallStarted | ToolCallFinished)]


# 1. A read-only call starts at its block's end, unless a call that must wait precedes it.

@pytest.mark.parametrize(("sdk", "entered"), [(True, True), (True, False), (False, True)],
                         ids=["sdk", "sdk-runtime-not-entered", "double"])
async def test_a_read_only_call_runs_while_the_rest_of_the_reply_streams(
        sdk: bool, entered: bool) -> None:
    pause = Pause(after_block=1)
    steps = [Reply(content=[text("Let me look."), use("lookup", "t1", q="a"),
                            text("Meanwhile, more text.")], pauses=[pause]),
             Reply(text="done")]
    events: list[RunEvent] = []
    async with harness(steps, sdk=sdk, entered=entered) as (agent, _, tool, store):
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, events)
            with anyio.fail_after(5):
                await pause.reached()
                await tool.finished["a"].wait()  # done while the stream is held
            # its result is not stored: the assistant message is not complete
            assert await roles(store) == ["user"]
            pause.release()
        assert await roles(store) == ["user", "assistant", "user", "assistant"]
        threads = await store.list_threads()
        stored = await store.messages(threads[0].id)
    assert tool.calls == ["a"]
    assert json.loads(stored[2].content[0]["content"]) == {"q": "a", "n": 1}
    # Started right after its block, Finished with the next stream event (before the
    # text that follows the call), each once.
    kinds = [type(e).__name__ if not isinstance(e, TextDelta) else e.text for e in events]
    later_text = next(i for i, e in enumerate(events)
                      if isinstance(e, TextDelta) and e.text.startswith("Meanwhile"[:3]))
    assert kinds.index("ToolCallStarted") < kinds.index("ToolCallFinished") < later_text
    assert tool_events(events) == [("ToolCallStarted", "t1"), ("ToolCallFinished", "t1")]
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.source == "executed" and not finished.is_error


async def test_a_read_after_a_write_waits_for_the_end_of_the_message() -> None:
    pause = Pause(after_block=1)
    steps = [Reply(content=[use("note", "w1", text="x"), use("lookup", "r1", q="a"),
                            text("and more")], pauses=[pause]),
             Reply(text="done")]
    async with harness(steps) as (agent, _, tool, _), anyio.create_task_group() as tg:
        tg.start_soon(collect, agent, [])
        with anyio.fail_after(5):
            await pause.reached()
        await wait_all_tasks_blocked()
        assert tool.calls == []  # neither the write nor the read after it
        pause.release()
    assert tool.calls == ["note:x", "a"]
    assert tool.stored_at_write == [["user", "assistant"]]


async def test_side_effects_wait_for_the_stored_message_and_run_in_reply_order() -> None:
    pause = Pause(after_block=2)
    steps = [Reply(content=[use("lookup", "r1", q="a"), use("note", "w1", text="x"),
                            use("note", "w2", text="y")], pauses=[pause]),
             Reply(text="done")]
    async with harness(steps) as (agent, server, tool, store), anyio.create_task_group() as tg:
        tg.start_soon(collect, agent, [])
        with anyio.fail_after(5):
            await pause.reached()
            await tool.finished["a"].wait()
        await wait_all_tasks_blocked()
        assert tool.calls == ["a"]  # the writes wait for the end of the message
        assert await roles(store) == ["user"]
        pause.release()
    assert tool.calls == ["a", "note:x", "note:y"]
    # the assistant message was stored before any side effect, and no result before it
    assert tool.stored_at_write == [["user", "assistant"]] * 2
    results = [b["tool_use_id"] for b in server.requests[1].messages[-1]["content"]]
    assert results == ["r1", "w1", "w2"]


async def test_an_identical_block_later_in_the_reply_joins_the_early_call() -> None:
    pause = Pause(after_block=2)
    steps = [Reply(content=[use("lookup", "t1", q="a"), text("again:"),
                            use("lookup", "t2", q="a")], pauses=[pause]),
             Reply(text="done")]
    events: list[RunEvent] = []
    async with harness(steps) as (agent, server, tool, _):
        tool.gate = anyio.Event()
        seen = {"t2": anyio.Event()}
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, events, None, seen)
            with anyio.fail_after(5):
                await pause.reached()
                await seen["t2"].wait()  # the second block started early too...
            await wait_all_tasks_blocked()
            assert tool.calls == ["a"]  # ...and joined the first: one execution
            tool.gate.set()
            pause.release()
    results = server.requests[1].messages[-1]["content"]
    assert [json.loads(r["content"]) for r in results] == [{"q": "a", "n": 1}] * 2
    sources = {e.id: e.source for e in events if isinstance(e, ToolCallFinished)}
    assert sources == {"t1": "executed", "t2": "turn_dedup"}


@pytest.mark.parametrize("where", ["setting", "agent"])
async def test_eager_tools_off_runs_nothing_before_the_message_ends(where: str) -> None:
    pause = Pause(after_block=0)
    steps = [Reply(content=[use("lookup", "t1", q="a"), text("more")], pauses=[pause]),
             Reply(text="done")]
    options: dict[str, Any] = ({"eager_tools": False} if where == "setting"
                               else {"agent_eager": False})
    async with harness(steps, **options) as (agent, _, tool, _):  # noqa: SIM117
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, [])
            with anyio.fail_after(5):
                await pause.reached()
            await wait_all_tasks_blocked()
            assert tool.calls == []
            pause.release()
    assert tool.calls == ["a"]


async def test_the_agent_attribute_overrides_the_setting() -> None:
    pause = Pause(after_block=0)
    steps = [Reply(content=[use("lookup", "t1", q="a"), text("more")], pauses=[pause]),
             Reply(text="done")]
    async with harness(steps, eager_tools=False, agent_eager=True) as (agent, _, tool, _):  # noqa: SIM117
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, [])
            with anyio.fail_after(5):
                await pause.reached()
                await tool.finished["a"].wait()
            pause.release()


async def test_a_rejected_call_does_not_hold_back_the_reads_after_it() -> None:
    pause = Pause(after_block=2)
    steps = [Reply(content=[use("lookup", "bad"), use("nope", "unknown"),
                            use("lookup", "t1", q="b")], pauses=[pause]),
             Reply(text="done")]
    async with harness(steps) as (agent, server, tool, _), anyio.create_task_group() as tg:
        tg.start_soon(collect, agent, [])
        with anyio.fail_after(5):
            await pause.reached()
            await tool.finished["b"].wait()
        pause.release()
    results = server.requests[1].messages[-1]["content"]
    assert [r.get("is_error", False) for r in results] == [True, True, False]


async def test_no_call_past_the_runs_tool_call_limit_starts_early() -> None:
    pause = Pause(after_block=1)
    steps = [Reply(content=[use("lookup", "t1", q="a"), use("lookup", "t2", q="b")],
                   pauses=[pause])]
    async with harness(steps, usage_limits=UsageLimits(tool_calls=1)) as (agent, _, tool, _):  # noqa: SIM117
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, [])
            with anyio.fail_after(5):
                await pause.reached()
                await tool.finished["a"].wait()
            await wait_all_tasks_blocked()
            assert tool.calls == ["a"]
            pause.release()
    assert tool.calls == ["a"]


# 2. Whatever the message's end brings.

async def test_max_tokens_inside_a_later_block_keeps_the_early_results() -> None:
    pause = Pause(after_block=0)
    steps = [Reply(content=[use("lookup", "t1", q="a"), text("then"),
                            use("lookup", "t2", q="b")], stop_reason="max_tokens",
                   pauses=[pause]),
             Reply(text="done")]
    events: list[RunEvent] = []
    async with harness(steps) as (agent, server, tool, store):
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, events)
            with anyio.fail_after(5):
                await pause.reached()
                await tool.finished["a"].wait()
            pause.release()
        assert await roles(store) == ["user", "assistant", "user", "assistant"]
    results = server.requests[1].messages[-1]["content"]
    assert json.loads(results[0]["content"]) == {"q": "a", "n": 1}
    assert results[1]["is_error"] is True and "max_tokens" in results[1]["content"]
    # each call reported once: started, then finished
    assert sorted(tool_events(events)) == sorted(
        [("ToolCallStarted", "t1"), ("ToolCallFinished", "t1"),
         ("ToolCallStarted", "t2"), ("ToolCallFinished", "t2")])


def _events_through_first_block() -> int:
    """message_start, ping, the tool_use block (start, 4 deltas, stop), the text's start."""
    return 2 + 6 + 1


@pytest.mark.parametrize("entered", [True, False], ids=["runtime", "runtime-not-entered"])
@pytest.mark.parametrize("running", [True, False], ids=["running", "finished"])
async def test_a_broken_stream_stores_nothing_of_its_early_calls_and_resumes(
        running: bool, entered: bool) -> None:
    pause = Pause(after_block=0)
    reply = Reply(content=[use("lookup", "t1", q="a"), text("a long answer")], pauses=[pause])
    steps = [CutStream(reply, after_events=_events_through_first_block() + 1),
             Reply(text="resumed")]
    async with harness(steps, entered=entered) as (agent, server, tool, store):
        if running:
            tool.gate = anyio.Event()
        errors: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, [], None, None, errors)
            with anyio.fail_after(5):
                await pause.reached()
                await (tool.started if running else tool.finished)["a"].wait()
            pause.release()
        assert [type(e) for e in errors] == [StreamInterruptedError]
        assert await roles(store) == ["user"]  # no assistant message, so no result
        flights = agent.tool_pipeline.statistics()["single_flight"]
        assert flights.in_flight == 0
        assert tool.cancelled == (["a"] if running else [])
        thread = (await store.list_threads())[0].id
        result = await agent.run("again", thread_id=thread)
    assert result.text == "resumed"
    assert {m["role"] for m in server.requests[-1].messages} == {"user"}  # no result


@pytest.mark.parametrize("entered", [True, False], ids=["runtime", "runtime-not-entered"])
async def test_cancelling_the_run_mid_stream_cancels_its_early_calls_and_resumes(
        entered: bool) -> None:
    pause = Pause(after_block=0)
    steps = [Reply(content=[use("lookup", "t1", q="a"), text("more")], pauses=[pause]),
             Reply(text="resumed")]
    async with harness(steps, entered=entered) as (agent, _, tool, store):
        tool.gate = anyio.Event()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, agent, [])
                with anyio.fail_after(5):
                    await pause.reached()
                    await tool.started["a"].wait()
                scope.cancel()
        assert await roles(store) == ["user"]
        assert tool.cancelled == ["a"]
        assert agent.tool_pipeline.statistics()["single_flight"].in_flight == 0
        pause.release()
        thread = (await store.list_threads())[0].id
        result = await agent.run("again", thread_id=thread)
    assert result.text == "resumed"


async def test_dropping_the_stream_mid_turn_without_closing_it_cancels_the_early_calls(
        ) -> None:
    """``break`` and let the garbage collector close the stream (from another task):
    with the runtime entered, the early calls run in its task group, not the stream's."""
    pause = Pause(after_block=0)
    steps = [Reply(content=[use("lookup", "t1", q="a"), text("more")], pauses=[pause])]
    async with harness(steps) as (agent, _, tool, store):
        tool.gate = anyio.Event()
        async for event in agent.stream("go"):
            if isinstance(event, ToolCallStarted):
                break
        with anyio.fail_after(5):
            await tool.cancel_seen.wait()
        await wait_all_tasks_blocked()  # the closing task has finished
        pause.release()
        assert agent.tool_pipeline.statistics()["single_flight"].in_flight == 0
        assert await roles(store) == ["user"]
    assert tool.cancelled == ["a"]


async def test_cancelling_after_the_message_is_stored_stores_what_finished() -> None:
    steps = [Reply(content=[use("lookup", "t1", q="a"), use("note", "w1", text="x")])]
    async with harness(steps) as (agent, _, tool, store):
        tool.gate = anyio.Event()
        seen = {"w1": anyio.Event()}  # reported once the message is stored
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, agent, [], None, seen)
                with anyio.fail_after(5):
                    await seen["w1"].wait()
                scope.cancel()
        threads = await store.list_threads()
        stored = await store.messages(threads[0].id)
    assert [m.role for m in stored] == ["user", "assistant", "user"]
    assert all(r["is_error"] and "cancelled" in r["content"] for r in stored[2].content)
    assert tool.calls == ["a"] and tool.cancelled == ["a"]


async def test_a_malformed_reply_stores_nothing_of_its_early_calls() -> None:
    pause = Pause(after_block=0)
    reply = Reply(content=[use("lookup", "t1", q="a"), text("more text")], pauses=[pause])
    steps = [MalformedEvent(reply, after_events=_events_through_first_block() + 1)]
    async with harness(steps) as (agent, _, tool, store):
        errors: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, [], None, None, errors)
            with anyio.fail_after(5):
                await pause.reached()
                await tool.finished["a"].wait()
            pause.release()
        assert [type(e) for e in errors] == [MalformedReplyError]
        assert await roles(store) == ["user"]
    assert tool.calls == ["a"]


@pytest.mark.redis
async def test_a_broken_stream_leaves_no_flight_behind_here_or_in_redis(
        redis_url: str, redis_prefix: str) -> None:
    import redis

    def leases() -> list[int]:
        client = redis.Redis.from_url(redis_url)
        try:
            return [int(client.pttl(key)) for key in client.scan_iter(f"{redis_prefix}*lease*")]
        finally:
            client.close()

    pause = Pause(after_block=0)
    reply = Reply(content=[use("lookup", "t1", q="a"), text("a long answer")], pauses=[pause])
    steps = [CutStream(reply, after_events=_events_through_first_block() + 1)]
    async with harness(steps, redis_url=redis_url, redis_prefix=redis_prefix) as (
            agent, _, tool, store):
        assert "shared_flight" in agent.tool_pipeline.names
        tool.gate = anyio.Event()
        errors: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, [], None, None, errors)
            with anyio.fail_after(5):
                await pause.reached()
                await tool.started["a"].wait()
            assert len(await anyio.to_thread.run_sync(leases)) == 1  # led from here
            pause.release()
        assert [type(e) for e in errors] == [StreamInterruptedError]
        assert tool.cancelled == ["a"]
        assert agent.tool_pipeline.statistics()["single_flight"].in_flight == 0
        assert await roles(store) == ["user"]

    # the lease was given back (expiring at once), so a waiter elsewhere takes over now
    assert all(ttl <= 1 for ttl in await anyio.to_thread.run_sync(leases))


async def test_a_reply_found_malformed_at_its_end_stores_nothing_of_its_early_calls() -> None:
    from agentrt.testing import ToolUse

    pause = Pause(after_block=1)
    steps = [Reply(text="Looking.", tool_calls=[
        ToolUse("lookup", {"q": "a"}, id="t1"),
        ToolUse("lookup", id="t2", raw_input_json='{"q": "b" "oops": 1}')], pauses=[pause])]
    async with harness(steps) as (agent, _, tool, store):
        errors: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, agent, [], None, None, errors)
            with anyio.fail_after(5):
                await pause.reached()
                await tool.finished["a"].wait()
            pause.release()
        assert [type(e) for e in errors] == [MalformedReplyError]
        assert await roles(store) == ["user"]
    assert tool.calls == ["a"]  # the read ran; the call after the unreadable one did not
