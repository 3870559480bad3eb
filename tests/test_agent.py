"""The loop end to end, on the in-process model double (agentrt.testing.ScriptedModel);
the tests marked ``integration`` run it on the real anthropic SDK over HTTP to the fake
Messages API server instead (streaming and not, retries, logging, trio)."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import sniffio

from agentrt import (
    Agent,
    MemoryThreadStore,
    RunContext,
    RunFinished,
    Runtime,
    StreamInterruptedError,
    TextDelta,
    Tool,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    function,
    load_settings,
)
from agentrt.testing import (
    CutStream,
    FakeAnthropicServer,
    Fault,
    Reply,
    ScriptedModel,
    ToolUse,
    capture_events,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from agentrt.testing import Step

pytestmark = pytest.mark.anyio
SDK = pytest.mark.integration  # the real SDK over HTTP: see harness(sdk=True)


class Weather(Tool):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started = anyio.Event()

    @function(read_only=True)
    async def get_weather(self, city: str) -> dict[str, Any]:
        """Current weather for a city.

        Args:
            city: City name.
        """
        self.calls.append(city)
        return {"city": city, "temp_c": 15}

    @function
    async def book_table(self, city: str) -> str:
        """Books a table: a side effect."""
        self.calls.append(f"book:{city}")
        return "booked"

    @function
    async def explode(self) -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    @function(timeout=0.05)
    async def stall(self) -> str:
        """Never returns in time."""
        await anyio.sleep(10)
        return "late"

    @function
    async def block_forever(self) -> str:
        """Signals, then blocks until cancelled."""
        self.started.set()
        await anyio.sleep_forever()
        return ""

    @function(read_only=True)
    async def whoami(self, ctx: RunContext) -> str:
        """The current thread."""
        return ctx.thread_id


class WeatherAgent(Agent):
    model = "claude-haiku-5-5"
    system = "You report the weather."
    max_iterations = 5


@asynccontextmanager
async def harness(steps: Sequence[Step] | Any, *, stream: bool = True, sdk: bool = False,
                  store: MemoryThreadStore | None = None, min_cache_tokens: int = 1024
                  ) -> AsyncIterator[tuple[WeatherAgent, Any, Weather]]:
    """The agent, what answered it (``.requests`` as the model saw them) and its tool.

    ``sdk``: the real SDK over HTTP to FakeAnthropicServer (mark the test ``SDK``);
    else ScriptedModel, in process, with the same steps."""
    tool = Weather()
    WeatherAgent.tools = (tool,)
    settings = load_settings(stream=stream, thread_store="memory", llm_max_retries=2)
    store = store or MemoryThreadStore()
    if not sdk:
        model = ScriptedModel(steps, min_cache_tokens=min_cache_tokens)
        async with Runtime(settings, model=model, store=store) as rt:
            yield WeatherAgent(rt), model, tool
        return
    async with FakeAnthropicServer(steps, min_cache_tokens=min_cache_tokens) as server, \
            server.client() as client, Runtime(settings, client=client, store=store) as rt:
        yield WeatherAgent(rt), server, tool


def _results(request_body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in request_body["messages"][-1]["content"] if b["type"] == "tool_result"]


@pytest.mark.parametrize("sdk", [pytest.param(True, marks=SDK), False], ids=["sdk", "double"])
@pytest.mark.parametrize("stream", [True, False])
async def test_tool_call_then_answer(stream: bool, sdk: bool) -> None:
    steps = [Reply(text="Checking.", tool_calls=[ToolUse("get_weather", {"city": "Paris"})]),
             Reply(text="It is 15 C in Paris.")]
    async with harness(steps, stream=stream, sdk=sdk) as (agent, server, tool):
        result = await agent.run("Weather in Paris?")
        stored = await agent.runtime.store.messages(result.thread_id)
    assert result.text == "It is 15 C in Paris."
    assert result.stop_reason == "end_turn" and result.iterations == 2
    assert (result.stats.tool_calls, result.stats.executed) == (1, 1)
    assert tool.calls == ["Paris"]
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    assert [m.role for m in stored] == ["user", "assistant", "user", "assistant"]
    assert stored[1].content[1]["name"] == "get_weather"
    assert json.loads(stored[2].content[0]["content"]) == {"city": "Paris", "temp_c": 15}
    assert server.requests[0].stream is stream
    second = server.requests[1].body
    assert second["tools"] == server.requests[0].body["tools"]
    assert second["system"][0]["text"] == "You report the weather."


async def test_stream_yields_typed_events_in_order() -> None:
    steps = [Reply(text="Let me check the weather.",
                   tool_calls=[ToolUse("get_weather", {"city": "Oslo"})]),
             Reply(text="Cold.")]
    async with harness(steps) as (agent, _, _):
        events = [event async for event in agent.stream("Oslo?")]
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "TextDelta" and kinds[-1] == "RunFinished"
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert started[0].name == "get_weather" and started[0].input == {"city": "Oslo"}
    assert finished[0].source == "executed" and not finished[0].is_error
    assert kinds.index("ToolCallStarted") < kinds.index("ToolCallFinished")
    assert [e.stop_reason for e in events if isinstance(e, TurnFinished)] == ["tool_use",
                                                                               "end_turn"]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Let me check the weather.Cold."
    assert isinstance(events[-1], RunFinished) and events[-1].result.text == (
        "Cold.")


async def test_second_run_continues_the_thread() -> None:
    steps = [Reply(text="Hello Ann."), Reply(text="Your name is Ann.")]
    async with harness(steps) as (agent, server, _):
        first = await agent.run("I am Ann.")
        second = await agent.run("What is my name?", thread_id=first.thread_id)
    assert second.thread_id == first.thread_id
    sent = server.requests[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"][0]["text"] == "I am Ann."


async def test_seed_scenario_duplicates_in_one_message_and_repeats_across_turns() -> None:
    paris, oslo = ToolUse("get_weather", {"city": "Paris"}), ToolUse("get_weather",
                                                                         {"city": "Oslo"})
    steps = [Reply(tool_calls=[paris, oslo, paris, oslo]), Reply(tool_calls=[paris]),
             Reply(text="done")]
    async with harness(steps) as (agent, server, tool):
        result = await agent.run("weather twice")
    assert tool.calls == ["Paris", "Oslo"]
    assert (result.stats.tool_calls, result.stats.executed) == (5, 2)
    assert result.stats.hits == {"turn_dedup": 2, "memo": 1}
    assert len(_results(server.requests[1].body)) == 4


@SDK
async def test_call_and_model_events_carry_the_run_ids() -> None:
    paris = ToolUse("get_weather", {"city": "Paris"})
    async with harness([Reply(tool_calls=[paris, paris]), Reply(text="done")],
                       sdk=True) as (agent, _, _):
        with capture_events() as logs:
            result = await agent.run("weather")
    by_event = {e["event"]: e for e in logs}
    for event in ("llm.request", "llm.response", "tool.executed", "tool.hit"):
        assert by_event[event]["run_id"] == result.run_id, event
        assert by_event[event]["thread_id"] == result.thread_id, event


async def test_parallel_calls_answered_in_order_in_one_message() -> None:
    calls = [ToolUse("get_weather", {"city": c}) for c in ("Paris", "Oslo", "Rome")]
    async with harness([Reply(tool_calls=calls), Reply(text="done")]) as (agent, server, _):
        await agent.run("three cities")
    results = _results(server.requests[1].body)
    assert [json.loads(r["content"])["city"] for r in results] == ["Paris", "Oslo", "Rome"]
    uses = server.requests[1].body["messages"][-2]["content"]
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]


async def test_tool_failures_become_error_results_and_the_run_finishes() -> None:
    calls = [ToolUse("explode"), ToolUse("stall"), ToolUse("no_such_fn", {"x": 1}),
             ToolUse("get_weather", {"town": "Paris"}), ToolUse("get_weather", {"city": "Rome"})]
    async with harness([Reply(tool_calls=calls), Reply(text="Sorry.")]) as (agent, server, _):
        result = await agent.run("go")
    results = _results(server.requests[1].body)
    assert [r.get("is_error", False) for r in results] == [True, True, True, True, False]
    assert "RuntimeError: kaboom" in results[0]["content"]
    assert "timed out after 0.05 s" in results[1]["content"]
    assert "Unknown function 'no_such_fn'" in results[2]["content"]
    assert "city: Field required" in results[3]["content"]
    assert result.text == "Sorry." and result.stats.errors == 4
    assert result.stats.executed == 3  # explode, stall, the valid get_weather


async def test_max_iterations_stops_cleanly() -> None:
    def always_a_tool(_: Any) -> Reply:
        return Reply(text="again", tool_calls=[ToolUse("get_weather", {"city": "Paris"})])

    async with harness(always_a_tool) as (agent, server, _):
        result = await agent.run("loop forever")
    assert result.stop_reason == "max_iterations"
    assert result.iterations == WeatherAgent.max_iterations == len(server.requests)


@SDK
async def test_overloaded_and_rate_limited_are_retried() -> None:
    steps = [Fault(429, retry_after_ms=10), Fault(529, retry_after_ms=10), Reply(text="ok")]
    async with harness(steps, sdk=True) as (agent, server, _):
        result = await agent.run("hi")
    assert result.text == "ok" and len(server.requests) == 3


async def test_cut_stream_raises_and_leaves_the_thread_intact() -> None:
    steps = [Reply(text="first answer"),
             CutStream(Reply(text="a long answer that never ends"), after_events=4)]
    store = MemoryThreadStore()
    async with harness(steps, store=store) as (agent, _, _):
        first = await agent.run("one")
        with pytest.raises(StreamInterruptedError):
            await agent.run("two", thread_id=first.thread_id)
        stored = await store.messages(first.thread_id)
    assert [(m.role, m.blocks()[0].get("text")) for m in stored] == [
        ("user", "one"), ("assistant", "first answer"), ("user", "two")]


async def test_cancelling_mid_tool_stores_what_happened_and_leaves_no_task() -> None:
    store = MemoryThreadStore()
    async with harness([Reply(tool_calls=[ToolUse("get_weather", {"city": "Oslo"}),
                                          ToolUse("block_forever")])],
                       store=store) as (agent, _, tool):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(agent.run, "go")
                await tool.started.wait()
                scope.cancel()
        threads = await store.list_threads()
        stored = await store.messages(threads[0].id)
    assert [m.role for m in stored] == ["user", "assistant", "user"]
    results = stored[-1].content
    assert results[0]["tool_use_id"] == stored[1].content[0]["id"]
    assert json.loads(results[0]["content"])["city"] == "Oslo"
    assert results[1]["is_error"] is True and "cancelled" in results[1]["content"]


async def test_resume_reruns_read_only_calls_and_flags_side_effects_as_unknown() -> None:
    store = MemoryThreadStore()
    from agentrt import Message

    info = await store.create_thread()
    await store.append(info.id, [
        Message(role="user", content="go"),
        Message(role="assistant", content=[
            {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_b", "name": "book_table", "input": {"city": "Oslo"}},
        ]),
    ])
    async with harness([Reply(text="resumed")], store=store) as (agent, server, tool):
        result = await agent.run("still there?", thread_id=info.id)
    assert result.text == "resumed"
    assert tool.calls == ["Oslo"]  # the booking is not repeated
    sent = server.requests[0].body["messages"]
    results = [b for b in sent[-1]["content"] if b["type"] == "tool_result"]
    assert "is_error" not in results[0]
    assert results[1]["is_error"] is True and "outcome is unknown" in results[1]["content"]
    assert sent[-1]["content"][-1]["text"] == "still there?"


async def test_max_tokens_and_pause_turn_continue_refusal_stops() -> None:
    steps = [Reply(text="part one, ", stop_reason="max_tokens"),
             Reply(text="part two", stop_reason="pause_turn"),
             Reply(text="", stop_reason="refusal",
                   stop_details={"type": "refusal", "category": "cyber", "explanation": "no"})]
    async with harness(steps) as (agent, server, _):
        result = await agent.run("write")
    assert result.stop_reason == "refusal" and result.iterations == 3
    assert "Continue exactly where it stopped" in json.dumps(server.requests[1].body["messages"])
    assert server.requests[2].body["messages"][-1]["role"] == "assistant"  # pause_turn resend
    assert result.text == "part one, part two"


async def test_prompt_prefix_is_read_from_cache_on_the_next_turn() -> None:
    steps = [Reply(tool_calls=[ToolUse("get_weather", {"city": "Paris"})]), Reply(text="ok")]
    async with harness(steps, min_cache_tokens=1) as (agent, _, _):
        result = await agent.run("Paris")
    assert result.usage.cache_creation_input_tokens > 0
    assert result.usage.cache_read_input_tokens > 0


@pytest.mark.parametrize("sdk", [pytest.param(True, marks=SDK), False], ids=["sdk", "double"])
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_the_loop_runs_on_trio(sdk: bool) -> None:
    steps = [Reply(tool_calls=[ToolUse("whoami")]), Reply(text="fine")]
    async with harness(steps, sdk=sdk) as (agent, server, _):
        result = await agent.run("who?")
    assert result.text == "fine"
    assert _results(server.requests[1].body)[0]["content"] == result.thread_id


class _Sniff(Tool):
    def __init__(self) -> None:
        self.seen: list[str | None] = []

    @function(read_only=True)
    async def which_loop(self) -> str:
        """The async library sniffio's context variable names."""
        self.seen.append(sniffio.current_async_library_cvar.get())
        return "seen"


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_run_tells_sniffio_its_library_and_leaves_the_callers_context_as_it_was(
        anyio_backend: str) -> None:
    tool = _Sniff()

    class SniffAgent(Agent):
        model = "claude-haiku-5-5"
        tools = (tool,)

    model = ScriptedModel([Reply(tool_calls=[ToolUse("which_loop")]), Reply(text="done")])
    async with Runtime(load_settings(thread_store="memory"), model=model,
                       store=MemoryThreadStore()) as runtime:
        token = sniffio.current_async_library_cvar.set(None)  # as under plain asyncio.run()
        try:
            result = await SniffAgent(runtime).run("which?")
            after = sniffio.current_async_library_cvar.get()
        finally:
            sniffio.current_async_library_cvar.reset(token)
    assert result.text == "done"
    assert tool.seen == [anyio_backend]  # told for the run, as sniffio found it
    assert after is None
