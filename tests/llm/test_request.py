from __future__ import annotations

import json

from agentrt import Message
from agentrt.llm._request import RequestBuilder

TOOLS = [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}}]


def _history() -> list[Message]:
    return [
        Message(role="user", content="hi"),
        Message(role="assistant", content=[{"type": "tool_use", "id": "t1", "name": "f",
                                            "input": {}}]),
        Message(role="user", content=[{"type": "tool_result", "tool_use_id": "t1",
                                       "content": "ok"}]),
    ]


def test_prefix_is_byte_identical_between_turns() -> None:
    builder = RequestBuilder(model="m", max_tokens=10, system="sys")
    history = _history()
    first = builder.build(TOOLS, history[:1])
    second = builder.build(TOOLS, history)
    for key in ("model", "tools", "system"):
        assert json.dumps(first[key], sort_keys=True) == json.dumps(second[key], sort_keys=True)


def test_breakpoints_on_tools_system_and_last_block_without_touching_history() -> None:
    history = _history()
    request = RequestBuilder(model="m", max_tokens=10, system="sys").build(TOOLS, history)
    assert request["system"] == [{"type": "text", "text": "sys",
                                  "cache_control": {"type": "ephemeral"}}]
    assert request["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert request["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in TOOLS[-1]
    assert all("cache_control" not in b for m in history for b in m.blocks())


def test_breakpoint_on_tools_without_a_system() -> None:
    request = RequestBuilder(model="m", max_tokens=10).build(TOOLS, _history()[:1])
    assert request["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in TOOLS[-1]


def test_consecutive_user_messages_are_merged_results_first() -> None:
    history = [*_history(), Message(role="user", content="and now?")]
    request = RequestBuilder(model="m", max_tokens=10, prompt_caching=False).build([], history)
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in request["messages"][-1]["content"]] == ["tool_result", "text"]
    assert "tools" not in request and "system" not in request


def test_the_tools_breakpoint_goes_on_the_last_tool_that_is_not_deferred() -> None:
    deferred = {"name": "g", "description": "d", "input_schema": {"type": "object"},
                "defer_loading": True}
    search = {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}
    request = RequestBuilder(model="m", max_tokens=10).build([*TOOLS, search, deferred],
                                                             _history()[:1])
    assert [t["name"] for t in request["tools"] if "cache_control" in t] == [
        "tool_search_tool_regex"]
    only_deferred = RequestBuilder(model="m", max_tokens=10).build([deferred], _history()[:1])
    assert "cache_control" not in only_deferred["tools"][0]
