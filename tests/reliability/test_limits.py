"""Limits a service needs: a run that stops on max_iterations says so in the log, and
per-run usage limits end a run before the request that would go past them, with a
typed reason and a thread the next run continues."""

from __future__ import annotations

import pytest

from agentrt import UsageLimits
from agentrt.testing import Reply, ToolUse, capture_events

from .support import check_thread, harness

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def _reads(n: int, first: int = 0) -> Reply:
    return Reply(tool_calls=[ToolUse("stock", {"item": f"item{i}"})
                             for i in range(first, first + n)])


async def test_max_iterations_is_logged_at_warning() -> None:
    """Failed before: the run ended with an empty text and nothing in the log said why."""
    async with harness([_reads(1)] * 6, agent_attrs={"max_iterations": 2}) as (agent, _, _):
        with capture_events() as events:
            result = await agent.run("loop forever")
    assert result.stop_reason == "max_iterations" and result.limit is None
    stopped = [e for e in events if e["event"] == "run.stopped"]
    assert stopped and stopped[0]["log_level"] == "warning"
    assert stopped[0]["stop_reason"] == "max_iterations" and stopped[0]["iterations"] == 2


async def test_the_input_token_limit_stops_before_the_request_that_would_pass_it() -> None:
    steps = [_reads(1), _reads(1), _reads(1), Reply(text="done"), Reply(text="resumed")]
    async with harness(steps) as (agent, server, _):
        first = await agent.run("go", usage_limits=UsageLimits(input_tokens=1))
        assert (first.stop_reason, first.limit, first.iterations) == ("usage_limit",
                                                                      "input_tokens", 0)
        assert server.requests == []  # stopped before sending anything
        one = await agent.run("go", thread_id=first.thread_id)  # no limit: to the end
        prompt = one.usage.prompt_tokens // one.iterations  # about one request's worth
        limited = await agent.run("again", thread_id=first.thread_id,
                                  usage_limits=UsageLimits(input_tokens=prompt))
        messages = await agent.runtime.store.messages(first.thread_id)
    assert limited.stop_reason == "usage_limit" and limited.limit == "input_tokens"
    assert limited.usage.prompt_tokens <= prompt
    check_thread(messages)


async def test_output_tokens_cap_max_tokens_then_stop() -> None:
    steps = [Reply(tool_calls=[ToolUse("stock", {"item": "a"})], output_tokens=40),
             Reply(tool_calls=[ToolUse("stock", {"item": "b"})], output_tokens=40),
             Reply(text="never sent")]
    async with harness(steps) as (agent, server, _):
        result = await agent.run("go", usage_limits=UsageLimits(output_tokens=70))
    assert [r.body["max_tokens"] for r in server.requests] == [70, 30]
    assert (result.stop_reason, result.limit) == ("usage_limit", "output_tokens")


async def test_tool_calls_past_the_limit_are_answered_as_not_run() -> None:
    steps = [_reads(2), _reads(2, first=2), Reply(text="never sent")]
    async with harness(steps, run_max_tool_calls=3) as (agent, server, shop):
        result = await agent.run("go")
        messages = await agent.runtime.store.messages(result.thread_id)
    assert (result.stop_reason, result.limit) == ("usage_limit", "tool_calls")
    assert len(shop.reads) == 3 and len(server.requests) == 2
    last = messages[-1].blocks()
    assert [b.get("is_error", False) for b in last] == [False, True]
    assert "limit on tool calls" in str(last[1]["content"])
    check_thread(messages)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="tool_calls"):
        UsageLimits(tool_calls=0)
