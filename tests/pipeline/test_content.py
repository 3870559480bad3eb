"""ToolContent: a tool result made of content blocks, through the pipeline and its caches."""

from __future__ import annotations

from typing import Any

import pytest

from agentrt import Message, Tool, ToolContent, function, tool_reference
from agentrt.pipeline import ToolOutcome
from agentrt.pipeline._redis_codec import decode_outcome, encode_outcome
from agentrt.pipeline.processor import result_block
from agentrt.tools import ToolRegistry

from .support import context, processor, resources, turn, use

pytestmark = pytest.mark.anyio


class Finder(Tool):
    def __init__(self) -> None:
        self.calls = 0

    @function(read_only=True, ttl=60)
    async def find(self, topic: str) -> ToolContent:
        """Find tools about a topic."""
        self.calls += 1
        return ToolContent(f"Tools for {topic}:", tool_reference(f"{topic}_search"),
                           {"type": "text", "text": "Call them directly."})

    @function(read_only=True)
    async def long(self) -> ToolContent:
        """Too much text."""
        return ToolContent("x" * 8000, tool_reference("t"), "y" * 5000)


def test_strings_become_text_blocks_and_bad_blocks_fail_where_written() -> None:
    content = ToolContent("one", tool_reference("get_weather"), "two")
    assert content.blocks == ({"type": "text", "text": "one"},
                              {"type": "tool_reference", "tool_name": "get_weather"},
                              {"type": "text", "text": "two"})
    assert content.text == "one\ntwo" and content.references() == ["get_weather"]
    with pytest.raises(ValueError, match="block 0: expected a 'type' string"):
        ToolContent({"text": "no type"})
    with pytest.raises(ValueError, match="block 1 is not JSON"):
        ToolContent("ok", {"type": "text", "text": {1, 2}})


async def test_blocks_reach_the_tool_result_and_a_cache_hit_keeps_them() -> None:
    tool = Finder()
    tools, proc, ctx = ToolRegistry([tool]), processor(resources()), context()
    [first] = await turn(proc, tools, ctx, use("find", topic="weather"))
    [again] = await turn(proc, tools, context(), use("find", topic="weather"))
    expected = [{"type": "text", "text": "Tools for weather:"},
                {"type": "tool_reference", "tool_name": "weather_search"},
                {"type": "text", "text": "Call them directly."}]
    assert first["content"] == again["content"] == expected
    assert (first["source"], again["source"]) == ("executed", "local_cache")
    assert tool.calls == 1


async def test_text_blocks_share_the_result_size_limit() -> None:
    [result] = await turn(processor(resources()), ToolRegistry([Finder()]), context(),
                          use("long"))
    text, reference, rest = result["content"]
    assert text["text"].startswith("x" * 8000) and "truncated" not in text["text"]
    assert reference == {"type": "tool_reference", "tool_name": "t"}
    assert rest["text"].startswith("y" * 2000)
    assert "[agentrt: result truncated from 5,000 to 2,000 characters]" in rest["text"]


def test_the_redis_value_carries_the_blocks_and_reads_without_them() -> None:
    blocks = ({"type": "text", "text": "a"}, {"type": "tool_reference", "tool_name": "b"})
    outcome = ToolOutcome("a", blocks=blocks)
    decoded = decode_outcome("k", encode_outcome("k", outcome))
    assert decoded is not None and decoded[0] == outcome
    plain = decode_outcome("k", encode_outcome("k", ToolOutcome("a")))
    assert plain is not None and plain[0].blocks is None
    assert decode_outcome("k", encode_outcome("k", outcome).replace(
        '"blocks":[', '"blocks":[3,')) is None  # not ours: a miss, never a wrong answer
    assert result_block("toolu_1", outcome) == {"type": "tool_result", "tool_use_id": "toolu_1",
                                                "content": list(blocks)}


async def test_a_stored_block_result_feeds_the_memo_of_a_resumed_thread() -> None:
    tool = Finder()
    tools, res = ToolRegistry([tool]), resources()
    call = use("find", topic="mail")
    [result] = await turn(processor(res), tools, context(), call)
    del result["source"]
    history: list[Any] = [Message(role="assistant", content=[call]),
                          Message(role="user", content=[result])]
    proc = processor(resources(), stages=["memo"])
    ctx = context()
    await proc.replay(history, ctx, tools)
    [again] = await turn(proc, tools, ctx, use("find", topic="mail"))
    assert again["source"] == "memo" and again["content"] == result["content"]
    assert tool.calls == 1
