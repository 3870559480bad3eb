"""The in-process model doubles: what the loop sees from them is what it sees from the real
SDK over HTTP (proved side by side against the fake server), and what they refuse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

from agentrt import (
    Agent,
    MalformedReplyError,
    MemoryThreadStore,
    ModelError,
    Runtime,
    StreamInterruptedError,
    TextDelta,
    Tool,
    UsageError,
    function,
    load_settings,
)
from agentrt.llm._client import ModelClient
from agentrt.testing import (
    CutStream,
    FakeAnthropicServer,
    Fault,
    FunctionModel,
    MalformedEvent,
    RecordedRequest,
    Reply,
    ScriptedModel,
    StreamError,
    ToolSearch,
    ToolUse,
)

if TYPE_CHECKING:
    from agentrt.llm._model import ModelReply
    from agentrt.testing import Step

pytestmark = pytest.mark.anyio

REQUEST: dict[str, Any] = {
    "model": "claude-test", "max_tokens": 100,
    "system": [{"type": "text", "text": "Be brief."}],
    "tools": [{"name": "lookup", "description": "Look up.",
               "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
    "messages": [{"role": "user", "content": "hi"}],
}


async def _turn(model: Any, stream: bool, request: dict[str, Any] = REQUEST
                ) -> tuple[list[str], ModelReply]:
    deltas: list[str] = []
    reply: ModelReply | None = None
    async for item in model.turn(request, stream=stream):
        if isinstance(item, TextDelta):
            deltas.append(item.text)
        else:
            reply = item
    assert reply is not None
    return deltas, reply


SAME_AS_THE_SDK = [
    Reply(text="Hello there, how are you?"),
    Reply(text="Looking.", tool_calls=[ToolUse("lookup", {"q": "x"}, id="toolu_1"),
                                       ToolUse("lookup", {}, id="toolu_2")]),
    Reply(tool_calls=[ToolUse("lookup", id="toolu_3", raw_input_json='{"q": "y"}')]),
    Reply(text="cut", stop_reason="max_tokens", output_tokens=7),
    Reply(content=[{"type": "text", "text": "raw block"}]),
]


@pytest.mark.integration
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("step", SAME_AS_THE_SDK, ids=range(len(SAME_AS_THE_SDK)))
async def test_a_reply_is_what_the_sdk_path_makes_of_it(step: Reply, stream: bool) -> None:
    async with FakeAnthropicServer([step]) as server, server.client() as client:
        over_http = await _turn(ModelClient(client, max_retries=0), stream)
    model = ScriptedModel([step])
    in_process = await _turn(model, stream)
    assert model.requests[0].body == server.requests[0].body  # what the wire carried
    assert in_process[0] == over_http[0]  # the same text deltas
    for reply in (in_process[1], over_http[1]):
        assert reply.id.startswith("msg_")
    assert (in_process[1].content, in_process[1].stop_reason, in_process[1].usage,
            in_process[1].model) == (over_http[1].content, over_http[1].stop_reason,
                                     over_http[1].usage, over_http[1].model)


@pytest.mark.integration
@pytest.mark.parametrize("step", [
    CutStream(Reply(text="a long answer"), after_events=5),
    StreamError(Reply(text="a long answer"), after_events=5),
    MalformedEvent(Reply(text="a long answer"), after_events=4),
    Fault(400), Fault(529, should_retry=False),
], ids=["cut", "stream_error", "malformed", "400", "529"])
async def test_a_fault_is_the_error_the_sdk_path_raises_once_it_gives_up(step: Step) -> None:
    async def outcome(model: Any) -> tuple[list[str], type[BaseException], int | None]:
        deltas: list[str] = []
        with pytest.raises(ModelError) as caught:
            async for item in model.turn(REQUEST, stream=True):
                assert isinstance(item, TextDelta)
                deltas.append(item.text)
        return deltas, type(caught.value), caught.value.status_code

    async with FakeAnthropicServer([step]) as server, server.client() as client:
        over_http = await outcome(ModelClient(client, max_retries=0))
    assert await outcome(ScriptedModel([step])) == over_http


async def test_streaming_yields_the_text_in_deltas_then_the_reply() -> None:
    model = ScriptedModel([Reply(text="It is sunny in Oslo today.")])
    deltas, reply = await _turn(model, stream=True)
    assert len(deltas) > 1 and "".join(deltas) == "It is sunny in Oslo today."
    assert reply.content == [{"type": "text", "text": "It is sunny in Oslo today."}]
    assert reply.stop_reason == "end_turn" and reply.usage.output_tokens > 0
    assert model.requests[0].stream and model.requests[0].body["stream"] is True


async def test_a_function_model_reads_the_request() -> None:
    seen: list[RecordedRequest] = []

    def answer(request: RecordedRequest) -> Reply:
        seen.append(request)
        last = request.messages[-1]["content"]
        return Reply(text=f"{request.system} / {[t['name'] for t in request.tools]} / {last}")

    _, reply = await _turn(FunctionModel(answer), stream=False)
    assert reply.content[0]["text"] == "Be brief. / ['lookup'] / hi"
    assert seen[0].body == REQUEST  # what the loop sent, as JSON


async def test_an_async_function_model_is_awaited() -> None:
    async def answer(request: RecordedRequest) -> Reply:
        await anyio.lowlevel.checkpoint()
        return Reply(tool_calls=[ToolUse("lookup", {"q": "z"})])

    _, reply = await _turn(FunctionModel(answer), stream=True)
    assert reply.stop_reason == "tool_use"
    assert reply.content[0]["input"] == {"q": "z"} and reply.content[0]["id"].startswith("toolu_")


async def test_the_recorded_request_is_a_copy_the_loop_cannot_change() -> None:
    request = {**REQUEST, "messages": [{"role": "user", "content": "hi"}]}
    model = ScriptedModel([Reply(text="ok")])
    await _turn(model, stream=False, request=request)
    request["messages"].append({"role": "assistant", "content": "later"})
    assert len(model.requests[0].messages) == 1


async def test_a_fault_is_a_model_error_and_never_retried() -> None:
    model = ScriptedModel([Fault(429, retry_after_ms=10), Reply(text="never")])
    with pytest.raises(ModelError, match=r"429 \(rate_limit_error\)") as caught:
        await _turn(model, stream=True)
    assert caught.value.status_code == 429 and len(model.requests) == 1


async def test_requests_the_api_refuses_are_refused() -> None:
    unpaired = {**REQUEST, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "lookup",
                                           "input": {}}]},
        {"role": "user", "content": "no result for it"}]}
    model = ScriptedModel([Reply(text="never")])
    with pytest.raises(ModelError, match="tool_use ids were found without tool_result") as caught:
        await _turn(model, stream=False, request=unpaired)
    assert caught.value.status_code == 400 and model.script.consumed == 0


async def test_a_script_that_runs_out_says_so() -> None:
    model = ScriptedModel([Reply(text="one")])
    await _turn(model, stream=False)
    with pytest.raises(ModelError, match="script exhausted after 1 replies"):
        await _turn(model, stream=False)


async def test_tool_input_that_is_not_an_object_is_malformed_as_over_http() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolUse("lookup", raw_input_json="[1, 2]")])])
    with pytest.raises(MalformedReplyError, match="not a JSON object"):
        await _turn(model, stream=True)


async def test_a_cut_stream_streams_what_was_sent_then_fails() -> None:
    model = ScriptedModel([CutStream(Reply(text="abcdefghi"), after_events=4)])
    deltas: list[str] = []
    with pytest.raises(StreamInterruptedError):
        async for item in model.turn(REQUEST, stream=True):
            deltas.append(item.text)  # type: ignore[union-attr]
    assert deltas == ["abc"]  # message_start, ping, block start, the first delta


async def test_a_tool_search_runs_over_the_requests_deferred_tools() -> None:
    request = {**REQUEST, "tools": [
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
        {**REQUEST["tools"][0], "defer_loading": True}]}
    model = ScriptedModel([Reply(searches=[ToolSearch("look")], text="found")])
    _, reply = await _turn(model, stream=False, request=request)
    assert [b["type"] for b in reply.content] == ["text", "server_tool_use",
                                                   "tool_search_tool_result"]


class Echo(Tool):
    @function(read_only=True)
    async def echo(self, word: str) -> str:
        """Says it back."""
        return word


class EchoAgent(Agent):
    model = "claude-test"
    system = "Echo."
    tools = (Echo,)


async def test_a_runtime_with_a_model_needs_no_api_key_and_leaves_it_open(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    model = ScriptedModel([Reply(tool_calls=[ToolUse("echo", {"word": "hi"})]),
                           Reply(text="hi back")])
    async with Runtime(load_settings(thread_store="memory"), model=model,
                       store=MemoryThreadStore()) as runtime:
        result = await EchoAgent(runtime).run("say hi")
    assert result.text == "hi back" and result.stats.executed == 1
    assert model.requests[1].messages[-1]["content"][0]["content"] == "hi"
    assert not model.closed  # given to the Runtime, so still the caller's to close


def test_client_and_model_together_is_a_usage_error() -> None:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(UsageError, match=r"client= .* or model="):
        Runtime(load_settings(thread_store="memory"), client=client,
                model=ScriptedModel([]))
