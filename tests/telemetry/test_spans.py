"""Spans and metrics of real runs, recorded by the real OpenTelemetry SDK in memory."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest
from opentelemetry import metrics, trace
from opentelemetry.trace import StatusCode

from agentrt import Agent, ModelError, Runtime, Tool, ToolError, function, load_settings
from agentrt.testing import Fault, Reply, ScriptedModel, ToolUse

from .support import Recorder, call_once, shop_model, shop_module

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    yield found
    found.shutdown()


def _settings(**overrides: Any) -> Any:
    return load_settings(thread_store="memory", **overrides)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_the_shop_run_has_one_span_per_run_request_and_call(recorder: Recorder) -> None:
    """examples/shop.py's conversation: the exact tree, and each duplicate call's span
    names the stage that answered it."""
    shop = shop_module()
    model = shop_model()
    async with Runtime(_settings(), model=model, tracer_provider=recorder.tracer_provider,
                       meter_provider=recorder.meter_provider) as runtime:
        result = await shop.ShopAgent(runtime).run(shop.TASK)
        stored = await runtime.store.messages(result.thread_id)

    chat = "chat claude-haiku-5-5"
    assert recorder.tree() == [
        "invoke_agent ShopAgent",
        f"  {chat}",
        "  execute_tool get_product", "  execute_tool get_user",
        f"  {chat}",
        "  execute_tool get_product", "  execute_tool get_product",
        f"  {chat}",
        "  execute_tool get_product", "  execute_tool get_user",
        f"  {chat}",
    ]
    tools = recorder.named("execute_tool")
    assert [(s.attributes or {})["agentrt.tool.source"] for s in tools] == [
        "executed", "executed", "memo", "turn_dedup", "memo", "memo"]
    # the first message's two calls start side by side: which span starts first is the
    # scheduler's choice
    first = dict(next(s for s in tools if s.name == "execute_tool get_product").attributes
                 or {})
    key = first.pop("agentrt.tool.key")
    assert first == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_product",
        "gen_ai.tool.call.id": first["gen_ai.tool.call.id"], "gen_ai.tool.type": "function",
        "agentrt.tool.class": "shop_api", "agentrt.tool.source": "executed",
        "agentrt.tool.error": False}
    assert len(key) == 12 and all(c in "0123456789abcdef" for c in key)
    # the same call has the same short key whichever stage answered it
    assert {(s.attributes or {})["agentrt.tool.key"] for s in tools
            if (s.attributes or {})["gen_ai.tool.name"] == "get_product"} == {key}
    # "42" and 42: one call; the duplicate in the same message links to the first
    dedup = tools[3]
    assert [link.context.span_id for link in dedup.links] == [tools[2].context.span_id]
    assert dict(dedup.links[0].attributes or {}) == {"agentrt.link": "turn_dedup"}

    run = recorder.named("invoke_agent")[0]
    assert run.attributes is not None
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.name"] == "ShopAgent"
    assert run.attributes["gen_ai.conversation.id"] == result.thread_id
    assert run.attributes["agentrt.run.id"] == result.run_id
    assert run.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert run.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens
    assert run.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert (run.attributes["agentrt.run.tool_calls"], run.attributes["agentrt.run.executed"],
            run.attributes["agentrt.run.saved"]) == (6, 2, 4)

    chats = recorder.named("chat")
    replies = [m for m in stored if m.role == "assistant"]
    for span, reply in zip(chats, replies, strict=True):
        attributes = span.attributes or {}
        assert attributes["gen_ai.provider.name"] == "anthropic"
        assert attributes["gen_ai.request.model"] == attributes["gen_ai.response.model"]
        assert attributes["gen_ai.response.id"] == reply.id
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.cache_read.input_tokens"] == 0
        assert attributes["gen_ai.request.stream"] is True
        assert attributes["gen_ai.response.time_to_first_chunk"] >= 0
        assert "gen_ai.input.messages" not in attributes  # content is opt-in
    assert [(s.attributes or {})["gen_ai.response.finish_reasons"] for s in chats] == [
        ("tool_use",), ("tool_use",), ("tool_use",), ("end_turn",)]

    points = list(recorder.points())
    calls = {(a["gen_ai.tool.name"], a["agentrt.tool.source"]): v
             for name, a, v in points if name == "agentrt.tool.calls"}
    assert calls == {("get_product", "executed"): 1, ("get_user", "executed"): 1,
                     ("get_product", "memo"): 2, ("get_product", "turn_dedup"): 1,
                     ("get_user", "memo"): 1}
    saved = sum(v for name, _, v in points if name == "agentrt.tool.upstream_saved")
    assert saved == 4
    tokens = {a["gen_ai.token.type"]: v for name, a, v in points
              if name == "gen_ai.client.token.usage"}
    assert tokens == {"input": (4, result.usage.prompt_tokens),
                      "output": (4, result.usage.output_tokens)}
    (duration,) = [v for name, _, v in points if name == "gen_ai.client.operation.duration"]
    assert duration[0] == 4


class Slow(Tool):
    """One read every caller shares, held open until the test lets it finish."""

    name = "slow"

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.executions = 0

    @function(read_only=True, public=True, ttl=60)
    async def lookup(self, item: int) -> str:
        """Look an item up."""
        self.executions += 1
        await self.release.wait()
        return f"item {item}"


async def test_a_call_that_joins_a_flight_links_to_the_leaders_span(recorder: Recorder) -> None:
    """Two threads ask for the same read at once: one executes, the other's span says
    single_flight and links to the execution's span; both are children of their runs."""
    slow = Slow()

    class Reader(Agent):
        tools = (slow,)

    async with Runtime(_settings(), model=call_once("lookup", {"item": 7}),
                       tracer_provider=recorder.tracer_provider) as runtime:
        agent = Reader(runtime, identity={"account": "a"})
        flight = agent.tool_pipeline.stage("single_flight")
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run, "one")
            tg.start_soon(agent.run, "two")
            with anyio.fail_after(10):
                while flight.statistics().joined < 1:  # type: ignore[attr-defined]
                    await anyio.lowlevel.checkpoint()
            slow.release.set()
    assert slow.executions == 1
    tools = recorder.named("execute_tool")
    by_source = {(s.attributes or {})["agentrt.tool.source"]: s for s in tools}
    assert set(by_source) == {"executed", "single_flight"}
    leader, joiner = by_source["executed"], by_source["single_flight"]
    assert [link.context.span_id for link in joiner.links] == [leader.context.span_id]
    assert dict(joiner.links[0].attributes or {}) == {"agentrt.link": "single_flight"}
    runs = {s.context.span_id: s for s in recorder.named("invoke_agent")}
    assert len(runs) == 2
    assert leader.parent is not None and joiner.parent is not None
    assert {leader.parent.span_id, joiner.parent.span_id} == set(runs)
    assert leader.context.trace_id != joiner.context.trace_id  # one trace per run


class Failing(Tool):
    name = "failing"

    @function(read_only=True)
    async def broken(self) -> str:
        """Always fails."""
        raise KeyError("missing")

    @function(read_only=True)
    async def refused(self) -> str:
        """Fails the way a tool tells the model why."""
        raise ToolError("not allowed today")


async def test_errors_set_the_status_and_the_error_type(recorder: Recorder) -> None:
    class Agent1(Agent):
        tools = (Failing,)

    model = ScriptedModel([
        Reply(tool_calls=[ToolUse("broken", {}), ToolUse("refused", {}),
                          ToolUse("nonexistent", {})]),
        Fault(400, "the request is wrong"),
    ])
    async with Runtime(_settings(llm_max_retries=0), model=model,
                       tracer_provider=recorder.tracer_provider,
                       meter_provider=recorder.meter_provider) as runtime:
        with pytest.raises(ModelError):
            await Agent1(runtime).run("go")
    tools = {(s.attributes or {})["gen_ai.tool.name"]: s for s in recorder.named("execute_tool")}
    for name, error_type, source in [("broken", "KeyError", "executed"),
                                     ("refused", "ToolError", "executed"),
                                     ("nonexistent", "rejected", "rejected")]:
        span = tools[name]
        assert span.status.status_code is StatusCode.ERROR, name
        assert span.attributes is not None
        assert span.attributes["error.type"] == error_type
        assert span.attributes["agentrt.tool.source"] == source
        assert span.attributes["agentrt.tool.error"] is True
    failed_chat = recorder.named("chat")[-1]
    assert failed_chat.status.status_code is StatusCode.ERROR
    assert (failed_chat.attributes or {})["error.type"] == "ModelError"
    assert [e.name for e in failed_chat.events] == ["exception"]
    run = recorder.named("invoke_agent")[0]
    assert run.status.status_code is StatusCode.ERROR
    assert (run.attributes or {})["error.type"] == "ModelError"
    durations = [a for name, a, _ in recorder.points()
                 if name == "gen_ai.client.operation.duration"]
    assert {a.get("error.type") for a in durations} == {None, "ModelError"}


async def test_contents_are_recorded_only_when_the_user_opts_in(recorder: Recorder) -> None:
    class Agent2(Agent):
        system = "Be brief."
        tools = (Failing,)

    def model() -> ScriptedModel:
        return ScriptedModel([Reply(text="Trying.", tool_calls=[ToolUse("refused", {})]),
                              Reply(text="It refused.")])

    for capture in (False, True):
        recorder.spans.clear()
        async with Runtime(_settings(otel_capture_content=capture), model=model(),
                           tracer_provider=recorder.tracer_provider) as runtime:
            await Agent2(runtime).run("Please try.")
        tool = recorder.named("execute_tool")[0].attributes or {}
        first, second = (s.attributes or {} for s in recorder.named("chat"))
        content = ("gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
                   "gen_ai.input.messages", "gen_ai.output.messages",
                   "gen_ai.system_instructions")
        if not capture:
            assert not any(k in a for a in (tool, first, second) for k in content)
            continue
        assert json.loads(str(tool["gen_ai.tool.call.arguments"])) == {}
        assert tool["gen_ai.tool.call.result"] == "not allowed today"
        assert json.loads(str(first["gen_ai.system_instructions"])) == [
            {"type": "text", "content": "Be brief."}]
        assert json.loads(str(first["gen_ai.input.messages"])) == [
            {"role": "user", "parts": [{"type": "text", "content": "Please try."}]}]
        output = json.loads(str(first["gen_ai.output.messages"]))
        assert output[0]["finish_reason"] == "tool_use"
        assert [p["type"] for p in output[0]["parts"]] == ["text", "tool_call"]
        sent = json.loads(str(second["gen_ai.input.messages"]))
        assert sent[-1]["parts"][0]["type"] == "tool_call_response"


class _Counting:
    """A recording provider that counts what is asked of it."""

    def __init__(self, inner: Any, method: str) -> None:
        self.inner = inner
        self.asked = 0
        self.method = method

    def __getattr__(self, name: str) -> Any:
        if name == self.method:
            self.asked += 1
        return getattr(self.inner, name)


async def test_with_otel_off_no_span_or_metric_object_is_made(
        recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recording provider is installed as the global one, as an application's own
    instrumentation would; with ``otel`` off agentrt asks it for nothing."""
    tracers = _Counting(recorder.tracer_provider, "get_tracer")
    meters = _Counting(recorder.meter_provider, "get_meter")
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: tracers)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: meters)
    shop = shop_module()
    async with Runtime(_settings(), model=shop_model()) as runtime:
        agent = shop.ShopAgent(runtime)
        result = await agent.run(shop.TASK)
        assert runtime.telemetry is None
        assert agent._manager.telemetry is None
    assert result.stats.executed == 2
    assert (tracers.asked, meters.asked) == (0, 0)
    assert recorder.finished() == [] and list(recorder.points()) == []


async def test_the_otel_setting_uses_the_global_providers(
        recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: recorder.tracer_provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: recorder.meter_provider)
    shop = shop_module()
    async with Runtime(_settings(otel=True),
                       model=shop_model()) as runtime:
        await shop.ShopAgent(runtime).run(shop.TASK)
    assert recorder.tree()[0] == "invoke_agent ShopAgent" and len(recorder.tree()) == 11
    assert any(name == "agentrt.tool.upstream_saved" for name, _, _ in recorder.points())


async def test_metrics_alone_make_no_spans(recorder: Recorder) -> None:
    shop = shop_module()
    async with Runtime(_settings(), model=shop_model(),
                       meter_provider=recorder.meter_provider) as runtime:
        await shop.ShopAgent(runtime).run(shop.TASK)
        assert runtime.telemetry is not None and runtime.telemetry.tracer is None
    assert recorder.finished() == []
    assert sum(v for name, _, v in recorder.points()
               if name == "agentrt.tool.upstream_saved") == 4


async def test_a_cancelled_run_ends_its_spans(recorder: Recorder) -> None:
    """Cancelled mid-call: the call's span and the run's end, marked with the error."""
    started = anyio.Event()

    class Stuck(Tool):
        name = "stuck"

        @function(read_only=True)
        async def wait(self) -> str:
            """Never returns."""
            started.set()
            await anyio.sleep_forever()
            return "never"

    class Waiter(Agent):
        tools = (Stuck,)

    async with Runtime(_settings(), model=call_once("wait", {}),
                       tracer_provider=recorder.tracer_provider) as runtime:
        agent = Waiter(runtime)
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run, "wait")
            await started.wait()
            tg.cancel_scope.cancel()
    assert [s.name for s in recorder.finished()] == [
        "invoke_agent Waiter", "chat claude-haiku-5-5", "execute_tool wait"]
    run, _, call = recorder.finished()
    for span in (run, call):
        assert span.status.status_code is StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "CancelledError"
