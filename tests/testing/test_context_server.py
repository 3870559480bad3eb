"""The fake server's context window, context editing and compaction, through the real SDK."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from agentrt.testing import FakeAnthropicServer, Reply, ToolUse
from agentrt.testing._cache_sim import parse_prompt
from agentrt.testing._context import CLEARED_PLACEHOLDER, emulate_context

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

MODEL = "claude-test-10k"
EDITS = "context-management-2025-06-27"
COMPACT = "compact-2026-01-12"


def thread(turns: int, size: int = 8000) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for n in range(turns):
        messages += [
            {"role": "user", "content": f"read {n}"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_{n}",
                                               "name": "read", "input": {"n": n}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}",
                                          "content": "y" * size}]},
            {"role": "assistant", "content": [{"type": "text", "text": f"read {n}"}]}]
    return [*messages, {"role": "user", "content": "go on"}]


async def test_a_prompt_past_the_models_window_gets_the_apis_400() -> None:
    async with FakeAnthropicServer([Reply(text="ok")], context_windows={MODEL: 10_000}) as server, \
            server.client(max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.create(model=MODEL, max_tokens=10, messages=thread(6))
        error = caught.value.body["error"]  # type: ignore[index]
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("prompt is too long: ")
        assert error["message"].endswith(" tokens > 10000 maximum")
        # another model has no window set: no limit
        reply = await client.messages.create(model="claude-other", max_tokens=10,
                                             messages=thread(6))
        assert reply.content[0].text == "ok"  # type: ignore[union-attr]


@pytest.mark.parametrize("stream", [False, True])
async def test_clear_tool_uses_clears_the_oldest_results_and_reports_it(stream: bool) -> None:
    async with FakeAnthropicServer([Reply(text="ok")], context_windows={MODEL: 10_000}) as server, \
            server.client(max_retries=0) as client:
        edit = {"type": "clear_tool_uses_20250919",
                "trigger": {"type": "input_tokens", "value": 3000},
                "keep": {"type": "tool_uses", "value": 1}}
        params: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": thread(6),
                                  "betas": [EDITS], "context_management": {"edits": [edit]}}
        if stream:
            async with client.beta.messages.stream(**params) as events:
                message = await events.get_final_message()
        else:
            message = await client.beta.messages.create(**params)
        assert message.context_management is not None
        (applied,) = message.context_management.applied_edits
        assert applied.type == "clear_tool_uses_20250919"
        assert applied.cleared_tool_uses == 5  # 6 uses, keep 1
        assert applied.cleared_input_tokens > 9000
        # what the model saw: 5 placeholders, the newest result whole (6 x 2,000 tokens
        # would not have fit the 10,000 window)
        assert message.usage.input_tokens + (message.usage.cache_creation_input_tokens or 0) \
            < 4000
        assert server.requests[0].headers["anthropic-beta"] == EDITS


async def test_context_management_without_its_beta_header_is_refused() -> None:
    async with FakeAnthropicServer([Reply(text="ok")]) as server, \
            server.client(max_retries=0) as client:
        with pytest.raises(anthropic.BadRequestError, match="anthropic-beta: compact-2026-01-12"):
            await client.beta.messages.create(
                model=MODEL, max_tokens=10, messages=thread(1), betas=[EDITS],
                context_management={"edits": [{"type": "compact_20260112"}]})


@pytest.mark.parametrize("stream", [False, True])
async def test_compaction_returns_a_block_that_is_sent_back_and_replaces_what_precedes(
        stream: bool) -> None:
    steps = [Reply(text="after compaction", tool_calls=[ToolUse("read", {"n": 9})]),
             Reply(text="next")]
    async with FakeAnthropicServer(steps) as server, server.client(max_retries=0) as client:
        params: dict[str, Any] = {
            "model": MODEL, "max_tokens": 10, "messages": thread(4), "betas": [COMPACT],
            "context_management": {"edits": [{"type": "compact_20260112", "trigger": {
                "type": "input_tokens", "value": 5000}}]}}
        if stream:
            async with client.beta.messages.stream(**params) as events:
                message = await events.get_final_message()
        else:
            message = await client.beta.messages.create(**params)
        block = message.content[0]
        assert block.type == "compaction" and block.content  # type: ignore[union-attr]
        assert [b.type for b in message.content[1:]] == ["text", "tool_use"]
        iterations = message.usage.iterations or []
        assert [i.type for i in iterations] == ["compaction", "message"]
        assert iterations[0].input_tokens > 8000  # the compaction's cost: not top level
        assert message.usage.input_tokens < 1000
        # sent back: everything before the block is dropped
        tool_use = message.content[2]
        follow = [*thread(4), {"role": "assistant", "content": [
            b.model_dump(exclude_none=True) for b in message.content]},
            {"role": "user", "content": [{"type": "tool_result",
                                          "tool_use_id": tool_use.id,  # type: ignore[union-attr]
                                          "content": "z"}]}]
        counted = await client.beta.messages.count_tokens(model=MODEL, messages=follow,
                                                          betas=[COMPACT])
        assert counted.input_tokens < 1000


async def test_count_tokens_counts_after_the_edits_and_reports_the_original() -> None:
    async with FakeAnthropicServer([]) as server, server.client(max_retries=0) as client:
        edit = {"type": "clear_tool_uses_20250919", "keep": {"type": "tool_uses", "value": 1},
                "trigger": {"type": "tool_uses", "value": 1}}
        counted = await client.beta.messages.count_tokens(
            model=MODEL, messages=thread(4), betas=[EDITS],
            context_management={"edits": [edit]})
        assert counted.context_management is not None
        assert counted.context_management.original_input_tokens > 8000
        assert counted.input_tokens < 3000


def emulated(messages: list[dict[str, Any]], edits: list[dict[str, Any]]) -> Any:
    body = {"model": MODEL, "max_tokens": 1, "messages": messages,
            "context_management": {"edits": edits}}
    return emulate_context(body, parse_prompt(body), {EDITS, COMPACT}, {})


def test_clear_at_least_and_exclude_tools_and_clear_tool_inputs() -> None:
    trigger = {"type": "tool_uses", "value": 0}
    keep = {"type": "tool_uses", "value": 0}
    none = emulated(thread(2), [{"type": "clear_tool_uses_20250919", "trigger": trigger,
                                 "keep": keep, "clear_at_least": {
                                     "type": "input_tokens", "value": 10_000}}])
    assert none.applied == []  # cannot free 10,000 tokens: not applied
    seen = emulated(thread(2), [{"type": "clear_tool_uses_20250919", "trigger": trigger,
                                 "keep": keep, "clear_tool_inputs": True,
                                 "exclude_tools": ["other"]}])
    assert seen.applied[0]["cleared_tool_uses"] == 2
    assert seen.body["messages"][2]["content"][0]["content"] == CLEARED_PLACEHOLDER
    assert seen.body["messages"][1]["content"][0]["input"] == {}
    kept = emulated(thread(2), [{"type": "clear_tool_uses_20250919", "trigger": trigger,
                                 "keep": keep, "exclude_tools": ["read"]}])
    assert kept.applied == []


def test_clear_thinking_keeps_the_newest_turns_thinking() -> None:
    thinking = {"type": "thinking", "thinking": "hmm " * 100, "signature": "s"}
    messages = [{"role": "user", "content": "a"},
                {"role": "assistant", "content": [thinking, {"type": "text", "text": "b"}]},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": [thinking, {"type": "text", "text": "d"}]},
                {"role": "user", "content": "e"}]
    seen = emulated(messages, [{"type": "clear_thinking_20251015"}])
    assert seen.applied == [{"type": "clear_thinking_20251015", "cleared_thinking_turns": 1,
                             "cleared_input_tokens": seen.applied[0]["cleared_input_tokens"]}]
    assert [b["type"] for b in seen.body["messages"][1]["content"]] == ["text"]
    assert [b["type"] for b in seen.body["messages"][3]["content"]] == ["thinking", "text"]


def test_an_empty_compaction_block_is_refused() -> None:
    messages = [{"role": "assistant", "content": [{"type": "compaction", "content": ""}]},
                {"role": "user", "content": "go"}]
    with pytest.raises(ValueError, match="compaction block's content must not be empty"):
        emulated(messages, [])


async def test_the_model_client_counts_tokens_through_the_beta_api_when_edits_are_asked() -> None:
    from agentrt.llm._client import ModelClient

    async with FakeAnthropicServer([]) as server, server.client(max_retries=0) as client:
        model = ModelClient(client)
        plain = {"model": MODEL, "max_tokens": 10, "messages": thread(4)}
        whole = await model.count_tokens(plain)
        edited = await model.count_tokens({
            **plain, "betas": [EDITS], "context_management": {"edits": [{
                "type": "clear_tool_uses_20250919", "trigger": {"type": "tool_uses", "value": 1},
                "keep": {"type": "tool_uses", "value": 1}}]}})
        assert whole > 8000 and edited < 3000
        assert [r.path for r in server.requests] == ["/v1/messages/count_tokens"] * 2
        assert EDITS in server.requests[1].headers["anthropic-beta"]
