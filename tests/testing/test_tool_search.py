"""Deferred tools and server-side tool search on the fake server, through the real SDK:
token accounting, the API's 400s, and the search emulation, streaming and not."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from agentrt.testing import FakeAnthropicServer, Reply, Script, ToolSearch, ToolUse
from agentrt.testing._cache_sim import PromptCache, estimate_tokens, parse_prompt
from agentrt.testing._search import run_search

MODEL = "claude-haiku-4-5"
REGEX = {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}
BM25 = {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"}


def tool(name: str, description: str, deferred: bool = True, **params: str) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "name": name, "description": description,
        "input_schema": {"type": "object", "properties": {
            p: {"type": "string", "description": d} for p, d in params.items()}}}
    return {**definition, "defer_loading": True} if deferred else definition


WEATHER = tool("get_weather", "Current weather for a city.", city="The city to look up")
FORECAST = tool("get_forecast", "Weather forecast: the weather of the next days.",
                days="How many days ahead")
TIME = tool("get_time", "The current time in a time zone.", zone="IANA zone, like Europe/Paris")
ECHO = tool("echo", "Repeat the input.", deferred=False, text="What to repeat")
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def referencing(*names: str) -> list[dict[str, Any]]:
    """A conversation whose tool_result references ``names``."""
    return [*ASK,
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01A", "name": "echo", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [
                    {"type": "text", "text": "found"},
                    *({"type": "tool_reference", "tool_name": n} for n in names)]}]}]


def dump(message: Any) -> list[dict[str, Any]]:
    return [b.model_dump(mode="json", exclude_none=True) for b in message.content]


def test_deferred_tools_cost_nothing_until_referenced_then_once() -> None:
    tools = [ECHO, WEATHER, TIME]
    bare = parse_prompt({"model": MODEL, "tools": [ECHO], "messages": ASK}).total_tokens
    assert parse_prompt({"model": MODEL, "tools": tools, "messages": ASK}).total_tokens == bare
    plain = parse_prompt({"model": MODEL, "tools": tools, "messages": referencing()})
    once = parse_prompt({"model": MODEL, "tools": tools,
                         "messages": referencing("get_weather")})
    twice = parse_prompt({"model": MODEL, "tools": tools,
                          "messages": referencing("get_weather", "get_weather")})
    reference = estimate_tokens({"type": "tool_reference", "tool_name": "get_weather"})
    revealed = estimate_tokens({k: v for k, v in WEATHER.items()})
    assert once.total_tokens - plain.total_tokens == reference + revealed
    assert twice.total_tokens - once.total_tokens == reference  # the definition counts once
    # referencing a loaded tool reveals nothing
    loaded = parse_prompt({"model": MODEL, "tools": tools, "messages": referencing("echo")})
    assert loaded.total_tokens - plain.total_tokens == estimate_tokens(
        {"type": "tool_reference", "tool_name": "echo"})


def test_deferred_tools_are_not_part_of_the_cached_prefix() -> None:
    cache = PromptCache(min_tokens=1)
    marked = {**ECHO, "cache_control": {"type": "ephemeral"}}
    first = cache.account(parse_prompt({"model": MODEL, "tools": [marked, WEATHER],
                                        "messages": ASK}))
    more = cache.account(parse_prompt({"model": MODEL, "tools": [marked, WEATHER, TIME],
                                       "messages": ASK}))
    assert first["cache_read_input_tokens"] == 0
    assert more["cache_read_input_tokens"] == estimate_tokens(ECHO)  # the prefix survived


@pytest.mark.anyio
@pytest.mark.integration
async def test_usage_and_count_tokens_agree_on_deferred_and_revealed_tools() -> None:
    tools = [ECHO, WEATHER, TIME]
    async with FakeAnthropicServer([Reply(text="a"), Reply(text="b")]) as server, \
            server.client() as client:
        before = await client.messages.create(model=MODEL, max_tokens=10, tools=tools,
                                              messages=ASK)
        after = await client.messages.create(model=MODEL, max_tokens=10, tools=tools,
                                             messages=referencing("get_weather"))
        counted_before = await client.messages.count_tokens(model=MODEL, tools=tools,
                                                            messages=ASK)
        counted_after = await client.messages.count_tokens(
            model=MODEL, tools=tools, messages=referencing("get_weather"))
        bare = await client.messages.count_tokens(model=MODEL, tools=[ECHO], messages=ASK)
    assert before.usage.input_tokens == counted_before.input_tokens == bare.input_tokens
    assert after.usage.input_tokens == counted_after.input_tokens
    assert counted_after.input_tokens > counted_before.input_tokens + estimate_tokens(WEATHER) - 1


@pytest.mark.anyio
@pytest.mark.integration
@pytest.mark.parametrize(("tools", "messages", "message"), [
    ([ECHO, WEATHER], referencing("get_wether"),
     "messages.2.content.0.content.1: tool_reference names 'get_wether', which is not a tool "
     "of this request"),
    ([{**REGEX, "defer_loading": True}, ECHO, WEATHER], ASK,
     "tools.0: the tool search tool (tool_search_tool_regex) cannot be deferred"),
    ([WEATHER, TIME], ASK, "tools: at least one tool must not be deferred"),
])
async def test_the_api_400s_for_deferred_tools(tools: list[Any], messages: list[Any],
                                               message: str) -> None:
    async with FakeAnthropicServer([Reply(text="never")]) as server, \
            server.client(max_retries=0) as client:
        for counting in (False, True):
            with pytest.raises(anthropic.BadRequestError) as caught:
                if counting:
                    await client.messages.count_tokens(model=MODEL, tools=tools,
                                                       messages=messages)
                else:
                    await client.messages.create(model=MODEL, max_tokens=10, tools=tools,
                                                 messages=messages)
            body = caught.value.body
            assert isinstance(body, dict) and body["type"] == "error"
            assert body["error"]["type"] == "invalid_request_error"
            assert body["error"]["message"].startswith(message)
        assert server.script.remaining == 1  # a refused request consumes no step


def test_a_search_in_a_tool_search_result_must_name_a_tool_of_the_request() -> None:
    found = {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_01A", "content": {
        "type": "tool_search_tool_search_result",
        "tool_references": [{"type": "tool_reference", "tool_name": "gone"}]}}
    messages = [*ASK, {"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_01A", "name": "tool_search_tool_regex",
         "input": {"query": "gone"}}, found]}]
    with pytest.raises(ValueError, match=r"messages.1.content.1.content.tool_references.0: "
                                         r"tool_reference names 'gone'"):
        parse_prompt({"model": MODEL, "tools": [REGEX, WEATHER], "messages": messages})


def test_regex_search_reads_names_descriptions_and_arguments() -> None:
    tools = [REGEX, ECHO, WEATHER, FORECAST, TIME]
    names = lambda q: [r["tool_name"] for r in run_search("regex", q, tools)["tool_references"]]  # noqa: E731
    assert names("weather") == ["get_weather", "get_forecast"]  # deferred tools only, in order
    assert names("(?i)WEATHER") == ["get_weather", "get_forecast"]
    assert names("Europe/") == ["get_time"]  # an argument's description
    assert names("days|zone") == ["get_forecast", "get_time"]  # argument names
    assert names("^get_") == ["get_weather", "get_forecast", "get_time"]
    assert names("^weather") == []  # re.search: ^ is the start of the text (the name)
    assert names("repeat") == []  # echo is loaded, not searched
    assert run_search("regex", "x" * 201, tools) == {
        "type": "tool_search_tool_result_error", "error_code": "invalid_tool_input",
        "error_message": "pattern is 201 characters long; the limit is 200"}
    error = run_search("regex", "(", tools)
    assert error["error_code"] == "invalid_tool_input"
    assert error["error_message"].startswith("invalid regular expression")
    many = [tool(f"t{i}", "same") for i in range(8)]
    assert len(run_search("regex", "same", [ECHO, *many])["tool_references"]) == 5


def test_bm25_ranks_by_relevance() -> None:
    tools = [BM25, ECHO, WEATHER, FORECAST, TIME]
    names = lambda q: [r["tool_name"] for r in run_search("bm25", q, tools)["tool_references"]]  # noqa: E731
    assert names("weather forecast next days") == ["get_forecast", "get_weather"]
    assert names("weather city") == ["get_weather", "get_forecast"]
    assert names("time zone") == ["get_time"]
    assert names("nothing matches") == []


@pytest.mark.anyio
@pytest.mark.integration
@pytest.mark.parametrize("search_tool", [REGEX, BM25])
async def test_a_scripted_search_streams_and_not_alike(search_tool: dict[str, Any]) -> None:
    step = Reply(text="Let me find a tool.", searches=[ToolSearch("weather", id="srvtoolu_01S")],
                 tool_calls=[ToolUse("get_weather", {"city": "Paris"}, id="toolu_01W")])
    tools = [search_tool, ECHO, WEATHER, FORECAST, TIME]
    async with FakeAnthropicServer([step, step]) as server, server.client() as client:
        plain = await client.messages.create(model=MODEL, max_tokens=100, tools=tools,
                                             messages=ASK)
        async with client.messages.stream(model=MODEL, max_tokens=100, tools=tools,
                                          messages=ASK) as stream:
            streamed = await stream.get_final_message()
    name = search_tool["name"]
    expected = [
        {"type": "text", "text": "Let me find a tool."},
        {"type": "server_tool_use", "id": "srvtoolu_01S", "name": name,
         "input": {"query": "weather"}},
        {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_01S", "content": {
            "type": "tool_search_tool_search_result",
            "tool_references": [{"type": "tool_reference", "tool_name": "get_weather"},
                                {"type": "tool_reference", "tool_name": "get_forecast"}]}},
        {"type": "tool_use", "id": "toolu_01W", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert dump(plain) == dump(streamed) == expected
    assert plain.stop_reason == streamed.stop_reason == "tool_use"
    # the assistant message goes back as received: the server accepts it, references included
    async with FakeAnthropicServer([Reply(text="ok")]) as server, server.client() as client:
        answer = [{"type": "tool_result", "tool_use_id": "toolu_01W", "content": "sunny"}]
        reply = await client.messages.create(
            model=MODEL, max_tokens=10, tools=tools,
            messages=[*ASK, {"role": "assistant", "content": dump(plain)},
                      {"role": "user", "content": answer}])
    assert reply.content[0].type == "text"


@pytest.mark.anyio
@pytest.mark.integration
async def test_a_search_without_a_search_tool_fails_the_step_loudly() -> None:
    async with FakeAnthropicServer([Reply(searches=[ToolSearch("weather")])]) as server, \
            server.client(max_retries=0) as client:
        with pytest.raises(anthropic.InternalServerError, match="no tool search tool"):
            await client.messages.create(model=MODEL, max_tokens=10, tools=[ECHO, WEATHER],
                                         messages=ASK)


def test_searches_in_a_replay_file() -> None:
    script = Script.from_json({"replies": [
        {"searches": [{"query": "weather", "id": "srvtoolu_01R"}],
         "tool_calls": [{"name": "get_weather", "input": {"city": "Oslo"}}],
         "stop_reason": "pause_turn"}]})
    step = script._steps[0]
    assert isinstance(step, Reply)
    assert step.searches == (ToolSearch("weather", id="srvtoolu_01R"),)
    assert step.stop_reason == "pause_turn"
    with pytest.raises(ValueError, match=r"replies\[0\].searches\[0\]: 'query' is required"):
        Script.from_json({"replies": [{"searches": [{"id": "x"}]}]})
    with pytest.raises(ValueError, match="searches: every item must be a ToolSearch"):
        Reply(searches=["weather"])  # type: ignore[list-item]


@pytest.mark.anyio
@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
async def test_a_strict_model_cannot_call_a_deferred_tool_before_a_reference_reveals_it(
        stream: bool) -> None:
    """As the API: a client tool's tool_result holding a tool_reference reveals the deferred
    tool it names from there on, and so does the model's own search in the same turn."""
    weather = Reply(tool_calls=[ToolUse("get_weather", {"city": "Oslo"})])
    steps = [weather, weather, weather,
             Reply(searches=[ToolSearch("weather")],
                   tool_calls=[ToolUse("get_weather", {"city": "Oslo"})])]
    tools = [ECHO, WEATHER, TIME, REGEX]
    async with FakeAnthropicServer(steps, strict_deferred=True) as server, \
            server.client(max_retries=0) as client:

        async def ask(messages: list[dict[str, Any]]) -> Any:
            if not stream:
                return await client.messages.create(model=MODEL, max_tokens=10, tools=tools,
                                                    messages=messages)
            async with client.messages.stream(model=MODEL, max_tokens=10, tools=tools,
                                              messages=messages) as events:
                return await events.get_final_message()

        with pytest.raises(anthropic.APIStatusError, match=r"get_weather.*not yet revealed"):
            await ask(ASK)
        with pytest.raises(anthropic.APIStatusError, match="not yet revealed"):
            await ask(referencing("get_time"))  # another tool's reference reveals only it
        revealed = await ask(referencing("get_weather"))
        searched = await ask(ASK)
    assert [b["name"] for b in dump(revealed) if b["type"] == "tool_use"] == ["get_weather"]
    assert [b["type"] for b in dump(searched)] == [
        "server_tool_use", "tool_search_tool_result", "tool_use"]
