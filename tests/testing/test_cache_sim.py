from __future__ import annotations

from typing import Any

import anthropic
import pytest

from agentrt.testing import FakeAnthropicServer, Reply
from agentrt.testing._cache_sim import PromptCache, estimate_tokens, parse_prompt

MODEL = "claude-haiku-4-5"
BIG = "You are the catalogue assistant. Answer from the tools. " * 120  # ~1700 tokens
CACHED = {"type": "ephemeral"}


def _body(system: str = BIG, messages: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 100,
        "system": [{"type": "text", "text": system, "cache_control": CACHED}],
        "messages": messages or [{"role": "user", "content": "hi"}],
        **extra,
    }


def test_estimates_are_a_quarter_of_the_canonical_bytes() -> None:
    assert estimate_tokens({"b": 1, "a": "xyz"}) == 5  # {"a":"xyz","b":1} is 17 bytes
    prompt = parse_prompt(_body())
    block = {"type": "text", "text": BIG}
    assert prompt.total_tokens == estimate_tokens(block) + estimate_tokens(block | {"text": "hi"})


def test_moving_breakpoint_reads_the_previous_turn_within_the_lookback() -> None:
    cache = PromptCache(min_tokens=1024)
    turn1 = [{"role": "user", "content": [{"type": "text", "text": "q1", "cache_control": CACHED}]}]
    first = cache.account(parse_prompt(_body(messages=turn1)))
    turn2 = [
        {"role": "user", "content": [{"type": "text", "text": "q1"}]},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": [{"type": "text", "text": "q2", "cache_control": CACHED}]},
    ]
    second = cache.account(parse_prompt(_body(messages=turn2)))
    assert first["cache_read_input_tokens"] == 0
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] == estimate_tokens(
        {"type": "text", "text": "a1"}
    ) + estimate_tokens({"type": "text", "text": "q2"})
    assert second["input_tokens"] == 0


def test_top_level_cache_control_marks_the_last_block_with_its_ttl() -> None:
    cache = PromptCache(min_tokens=10)
    body = {"model": MODEL, "messages": [{"role": "user", "content": BIG}]}
    usage = cache.account(
        parse_prompt({**body, "cache_control": {"type": "ephemeral", "ttl": "1h"}})
    )
    assert (
        usage["cache_creation"]["ephemeral_1h_input_tokens"] == usage["cache_creation_input_tokens"]
    )
    assert usage["cache_creation"]["ephemeral_5m_input_tokens"] == usage["input_tokens"] == 0


def test_tool_choice_change_invalidates_only_the_messages_cache() -> None:
    cache = PromptCache(min_tokens=10)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": CACHED}]}
    ]
    cache.account(parse_prompt(_body(messages=messages)))
    usage = cache.account(parse_prompt(_body(messages=messages, tool_choice={"type": "any"})))
    assert usage["cache_read_input_tokens"] == estimate_tokens({"type": "text", "text": BIG})


def test_expired_entries_are_not_read() -> None:
    now = [0.0]
    cache = PromptCache(min_tokens=10, clock=lambda: now[0])
    cache.account(parse_prompt(_body()))
    now[0] = 301.0
    assert cache.account(parse_prompt(_body()))["cache_read_input_tokens"] == 0


@pytest.mark.parametrize(
    ("marker", "count", "error"),
    [({"type": "ephemeral", "ttl": "2h"}, 1, "ttl must be '5m' or '1h'"),
     (CACHED, 5, "A maximum of 4 blocks with cache_control may be provided. Found 5.")],
)  # fmt: skip
def test_bad_breakpoints_are_rejected(marker: dict[str, Any], count: int, error: str) -> None:
    blocks = [{"type": "text", "text": str(i), "cache_control": marker} for i in range(count)]
    with pytest.raises(ValueError, match=error.replace(".", r"\.")):
        parse_prompt({"model": MODEL, "messages": [{"role": "user", "content": blocks}]})


@pytest.mark.anyio
@pytest.mark.integration
async def test_cache_counters_through_the_sdk() -> None:
    replies = [Reply(text="ok")] * 5
    async with FakeAnthropicServer(replies) as server, server.client() as client:
        first = (await client.messages.create(**_body())).usage
        second = (await client.messages.create(**_body())).usage
        changed = (await client.messages.create(**_body(system=BIG + "Today is Monday."))).usage
        small = (await client.messages.create(**_body(system="Be brief."))).usage
        async with client.messages.stream(**_body()) as stream:
            streamed = (await stream.get_final_message()).usage
    assert first.cache_creation_input_tokens > 1024
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation is not None
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens == first.input_tokens > 0
    assert changed.cache_read_input_tokens == 0 and changed.cache_creation_input_tokens > 0
    assert small.cache_read_input_tokens == small.cache_creation_input_tokens == 0
    assert streamed.cache_read_input_tokens == first.cache_creation_input_tokens


@pytest.mark.anyio
@pytest.mark.integration
async def test_five_breakpoints_get_400_through_the_sdk() -> None:
    blocks = [{"type": "text", "text": str(i), "cache_control": CACHED} for i in range(5)]
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": blocks}],
    }
    async with FakeAnthropicServer([Reply()]) as server, server.client() as client:
        with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks"):
            await client.messages.create(**body)
        assert server.script.consumed == 0
