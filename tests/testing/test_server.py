"""The fake server through the real `anthropic.AsyncAnthropic` over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import anyio
import anyio.lowlevel
import httpx2
import pytest

from agentrt.testing import (
    CutStream,
    FakeAnthropicServer,
    Fault,
    RecordedRequest,
    Reply,
    Step,
    StreamError,
    ToolUse,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

MODEL = "claude-haiku-4-5"
ASK: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "What does product 42 cost?"}],
}
LOOKUP = Reply(
    text="Let me look that up for you.",
    tool_calls=[ToolUse("get_product", {"product_id": 42, "fields": ["price"]}, id="toolu_01A")],
)


def _blocks(message: Any) -> list[tuple[Any, ...]]:
    return [
        (b.type, getattr(b, "text", None), getattr(b, "id", None), getattr(b, "input", None))
        for b in message.content
    ]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_text_reply(anyio_backend: str) -> None:
    async with (
        FakeAnthropicServer([Reply(text="Product 42 costs $9.99.")]) as server,
        server.client() as client,
    ):
        message = await client.messages.create(**ASK)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Product 42 costs $9.99."
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert message.id.startswith("msg_01")
    assert message._request_id is not None and message._request_id.startswith("req_011")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    [request] = server.requests
    assert (request.method, request.path, request.stream) == ("POST", "/v1/messages", False)
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["messages"] == ASK["messages"]


async def test_tool_use_reply() -> None:
    async with (
        FakeAnthropicServer([LOOKUP, Reply(tool_calls=[ToolUse("x")])]) as server,
        server.client() as client,
    ):
        message = await client.messages.create(**ASK)
        generated = await client.messages.create(**ASK)
    assert message.stop_reason == "tool_use"
    assert _blocks(message) == [
        ("text", "Let me look that up for you.", None, None),
        ("tool_use", None, "toolu_01A", {"product_id": 42, "fields": ["price"]}),
    ]
    assert generated.content[0].type == "tool_use"
    assert generated.content[0].id.startswith("toolu_01")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_stream_matches_the_non_streaming_message(anyio_backend: str) -> None:
    async with FakeAnthropicServer([LOOKUP, LOOKUP]) as server, server.client() as client:
        whole = await client.messages.create(**ASK)
        async with client.messages.stream(**ASK) as stream:
            texts = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert len(texts) > 1
    assert "".join(texts) == "Let me look that up for you."
    assert _blocks(final) == _blocks(whole)
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert server.requests[1].stream
    assert server.requests[1].headers["x-stainless-helper-method"] == "stream"


async def test_raw_content_blocks_stream_like_the_api() -> None:
    content: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": "The user wants a price.", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Looking it up."},
        {"type": "tool_use", "id": "toolu_01Z", "name": "get_product", "input": {"id": 42}},
    ]
    reply = Reply(content=content, stop_reason="pause_turn", output_tokens=7)
    async with FakeAnthropicServer([reply, reply]) as server, server.client() as client:
        whole = await client.messages.create(**ASK)
        async with client.messages.stream(**ASK) as stream:
            final = await stream.get_final_message()
    assert [b.to_dict() for b in whole.content] == content
    assert [
        b.model_dump(exclude={"parsed_output"}, exclude_none=True) for b in final.content
    ] == content
    assert final.stop_reason == whole.stop_reason == "pause_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens == 7


async def test_a_step_that_cannot_be_rendered_becomes_a_500() -> None:
    broken = Reply(content=[{"type": "text"}])  # no "text": cannot be streamed
    steps = [broken, Reply(text="still here")]
    async with FakeAnthropicServer(steps) as server, server.client() as client:
        with pytest.raises(anthropic.InternalServerError, match="KeyError"):
            async with client.messages.stream(**ASK) as stream:
                await stream.get_final_message()
        message = await client.messages.create(**ASK)
    assert message.content[0].text == "still here"
    assert len(server.requests) == 2


async def _raw_stream(server: FakeAnthropicServer, body: dict[str, Any]) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=server.base_url) as http:
        response = await http.post(
            "/v1/messages", json=body, headers={"x-api-key": "k", "anthropic-version": "x"}
        )
    return response


async def test_sse_wire_format() -> None:
    reply = Reply(text="Let me look.", tool_calls=[ToolUse("get_product", {"id": 42})])
    async with FakeAnthropicServer([reply]) as server:
        response = await _raw_stream(server, {**ASK, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["request-id"].startswith("req_011")
    assert response.text.endswith("\n\n")
    events = []
    for frame in response.text.removesuffix("\n\n").split("\n\n"):
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == event_line.removeprefix("event: ")
        events.append(data)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    start = events[0]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    text = [e["delta"]["text"] for e in events if e.get("delta", {}).get("type") == "text_delta"]
    assert len(text) > 1 and "".join(text) == "Let me look."
    fragments = [
        e["delta"]["partial_json"]
        for e in events
        if e.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert fragments[0] == "" and len(fragments) >= 3
    assert json.loads("".join(fragments)) == {"id": 42}
    tool_start = next(e for e in events if e.get("index") == 1)
    assert tool_start["content_block"]["input"] == {}
    delta = events[-2]
    assert delta["delta"]["stop_reason"] == "tool_use"
    for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert delta["usage"][key] == start["usage"][key]
    assert delta["usage"]["output_tokens"] > start["usage"]["output_tokens"]


async def test_raw_input_json_is_sent_verbatim() -> None:
    broken = '{"product_id": 4'
    calls = [ToolUse("a", raw_input_json=broken), ToolUse("b", raw_input_json='{"ok": 1}')]
    async with (
        FakeAnthropicServer([Reply(tool_calls=calls), Reply(tool_calls=calls)]) as server,
        server.client() as client,
    ):
        message = await client.messages.create(**ASK)
        response = await _raw_stream(server, {**ASK, "stream": True})
    assert [b.input for b in message.content] == [broken, {"ok": 1}]
    fragments = [
        json.loads(line.removeprefix("data: "))["delta"]
        for line in response.text.splitlines()
        if "input_json_delta" in line
    ]
    assert "".join(d["partial_json"] for d in fragments if d is not None).startswith(broken)


async def test_429_and_529_are_retried_by_the_sdk() -> None:
    steps: list[Step] = [
        Fault(429, retry_after_ms=10),
        Fault(529, retry_after_ms=10, should_retry=True),
        Reply(text="ok"),
    ]
    async with FakeAnthropicServer(steps) as server, server.client() as client:
        message = await client.messages.create(**ASK)
    assert message.content[0].text == "ok"
    assert len(server.requests) == 3
    assert [r.headers["x-stainless-retry-count"] for r in server.requests] == ["0", "1", "2"]


async def test_should_retry_false_stops_the_sdk_retrying() -> None:
    async with (
        FakeAnthropicServer([Fault(529, should_retry=False), Reply()]) as server,
        server.client() as client,
    ):
        with pytest.raises(anthropic.OverloadedError):
            await client.messages.create(**ASK)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_faults_map_to_sdk_errors(
    status: int, error: type[anthropic.APIStatusError], error_type: str
) -> None:
    async with (
        FakeAnthropicServer([Fault(status, message="boom")]) as server,
        server.client(max_retries=0) as client,
    ):
        with pytest.raises(error) as info:
            await client.messages.create(**ASK)
    assert info.value.status_code == status
    assert info.value.type == error_type
    assert info.value.api_message == "boom"
    assert info.value.request_id is not None and info.value.request_id.startswith("req_011")


# anthropic 2.14-2.16 let httpx2's error through; 2.17 wraps it in APIConnectionError
CUT = (httpx2.RemoteProtocolError, anthropic.APIConnectionError)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_cut_stream_raises_remote_protocol_error(anyio_backend: str) -> None:
    cut = CutStream(Reply(text="Product 42 costs $9.99."), after_events=4)
    async with FakeAnthropicServer([cut, cut]) as server, server.client() as client:
        received: list[str] = []
        with pytest.raises(CUT, match="incomplete chunked read"):
            async with client.messages.stream(**ASK) as stream:
                async for text in stream.text_stream:
                    received.append(text)
        with pytest.raises(CUT, match="incomplete chunked read"):
            async for _ in await client.messages.create(**ASK, stream=True):
                pass
    assert received == ["Product "]  # message_start, ping, block start, one delta
    assert len(server.requests) == 2  # not retried


async def test_cut_non_streaming_is_a_connection_error_the_sdk_retries() -> None:
    cut = CutStream(Reply(text="lost"), after_events=0)
    async with (
        FakeAnthropicServer([cut, Reply(text="ok"), cut]) as server,
        server.client() as client,
    ):
        message = await client.messages.create(**ASK)
        with pytest.raises(anthropic.APIConnectionError):
            await client.with_options(max_retries=0).messages.create(**ASK)
    assert message.content[0].text == "ok"
    assert len(server.requests) == 3


async def test_stream_error_raises_an_api_status_error() -> None:
    steps: list[Step] = [StreamError(Reply(text="Product 42 costs $9.99."), after_events=4)] * 2
    async with FakeAnthropicServer(steps) as server, server.client() as client:
        with pytest.raises(anthropic.APIStatusError) as info:
            async with client.messages.stream(**ASK) as stream:
                await stream.get_final_message()
        with pytest.raises(anthropic.OverloadedError):  # as HTTP 529, which the SDK retries
            await client.with_options(max_retries=0).messages.create(**ASK)
    assert info.value.type == "overloaded_error"
    assert info.value.status_code == 200
    assert len(server.requests) == 2


async def test_count_tokens_consumes_no_step() -> None:
    async with FakeAnthropicServer([]) as server, server.client() as client:
        small = await client.messages.count_tokens(model=MODEL, messages=ASK["messages"])
        large = await client.messages.count_tokens(
            model=MODEL, messages=ASK["messages"], system="You are helpful. " * 100
        )
    assert 0 < small.input_tokens < large.input_tokens
    assert server.script.consumed == 0
    assert [r.path for r in server.requests] == ["/v1/messages/count_tokens"] * 2


async def test_missing_credentials_get_401_and_x_api_key_is_accepted() -> None:
    async with (
        FakeAnthropicServer([Reply(text="ok")]) as server,
        httpx2.AsyncClient(base_url=server.base_url) as http,
    ):
        denied = await http.post("/v1/messages", json=ASK)
        allowed = await http.post("/v1/messages?beta=true", json=ASK, headers={"x-api-key": "k"})
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "authentication_error"
    assert denied.json()["request_id"] == denied.headers["request-id"]
    assert allowed.status_code == 200
    assert allowed.headers["content-length"] == str(len(allowed.content))
    assert len(server.requests) == 2


async def test_unknown_path_gets_404() -> None:
    async with FakeAnthropicServer([]) as server, server.client() as client:
        with pytest.raises(anthropic.NotFoundError) as info:
            await client.models.retrieve("claude-haiku-4-5")
    assert info.value.type == "not_found_error"
    assert server.requests[0].method == "GET"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": MODEL, "messages": []}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 1}, "messages: Field required"),
        (None, "not valid JSON"),
    ],
)
async def test_malformed_requests_get_400(body: Any, message: str) -> None:
    async with (
        FakeAnthropicServer([Reply()]) as server,
        httpx2.AsyncClient(base_url=server.base_url) as http,
    ):
        content = b"{not json" if body is None else json.dumps(body).encode()
        response = await http.post("/v1/messages", content=content, headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert server.script.consumed == 0


async def test_unanswered_tool_use_gets_the_apis_400() -> None:
    messages = [
        {"role": "user", "content": "What does product 42 cost?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_01A", "name": "get_product", "input": {}},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_product", "input": {}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A"}]},
    ]
    async with FakeAnthropicServer([Reply()]) as server, server.client() as client:
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.create(**{**ASK, "messages": messages})
        with pytest.raises(anthropic.BadRequestError) as stray:
            await client.messages.create(**{**ASK, "messages": [messages[0], messages[2]]})
    assert info.value.api_message == (
        "messages.1: tool_use ids were found without tool_result blocks immediately after: "
        "toolu_01B. Each tool_use block must have a corresponding tool_result block in the "
        "next message."
    )
    assert stray.value.api_message is not None
    assert stray.value.api_message.startswith("messages.1.content.0: unexpected tool_use_id")
    assert server.script.consumed == 0


async def test_exhausted_script_gets_400() -> None:
    async with FakeAnthropicServer([Reply(text="only")]) as server, server.client() as client:
        await client.messages.create(**ASK)
        with pytest.raises(anthropic.BadRequestError, match="script exhausted after 1 replies"):
            await client.messages.create(**ASK)
    assert len(server.requests) == 2


async def test_responders_receive_the_request() -> None:
    seen: list[RecordedRequest] = []

    async def responder(request: RecordedRequest) -> Step:
        seen.append(request)
        await anyio.lowlevel.checkpoint()
        return Reply(text=f"echo: {request.body['messages'][-1]['content']}")

    async with FakeAnthropicServer(responder) as server, server.client() as client:
        message = await client.messages.create(**ASK)
    assert message.content[0].text == "echo: What does product 42 cost?"
    assert seen == server.requests
    assert server.script.consumed == 1


async def test_a_failing_responder_becomes_a_500_that_is_not_retried() -> None:
    def responder(request: RecordedRequest) -> Step:
        raise RuntimeError("bug in the test")

    async with FakeAnthropicServer(responder) as server, server.client() as client:
        with pytest.raises(anthropic.InternalServerError, match="bug in the test"):
            await client.messages.create(**ASK)
    assert len(server.requests) == 1


async def test_latency_delays_the_reply() -> None:
    async with (
        FakeAnthropicServer([Reply(text="slow", latency=0.1)], latency=0.05) as server,
        server.client() as client,
    ):
        started = anyio.current_time()
        await client.messages.create(**ASK)
        elapsed = anyio.current_time() - started
    assert elapsed >= 0.15


async def test_exit_closes_connections_and_stops_listening() -> None:
    async with FakeAnthropicServer([Reply(text="a")]) as server:
        base_url = server.base_url
        async with server.client() as client:
            await client.messages.create(**ASK)
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", int(base_url.rsplit(":", 1)[1]))
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url


async def test_serve_forever_starts_the_server_and_stops_on_cancel() -> None:
    server = FakeAnthropicServer([Reply(text="forever")])
    async with anyio.create_task_group() as group:
        assert await group.start(server.serve_forever) == server.base_url
        async with server.client() as client:
            message = await client.messages.create(**ASK)
        group.cancel_scope.cancel()
    assert message.content[0].text == "forever"
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
