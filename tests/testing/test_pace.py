"""The fake server paces a stream: a delay between events, a token rate, a held block."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from agentrt import TextDelta
from agentrt.llm._model import ModelReply, ToolUseComplete
from agentrt.testing import FakeAnthropicServer, Pause, Reply, Script, ScriptedModel, ToolUse

pytestmark = pytest.mark.anyio

REQUEST: dict[str, Any] = {"model": "claude-test", "max_tokens": 100,
                           "messages": [{"role": "user", "content": "hi"}]}


async def _events(server: FakeAnthropicServer, seen: list[str]) -> None:
    async with server.client() as client, client.messages.stream(**REQUEST) as stream:
        async for event in stream:
            if event.type in ("text", "input_json", "content_block_start"):
                continue
            seen.append(f"{event.type}:{getattr(event, 'index', '')}")


@pytest.mark.integration
async def test_event_delay_spaces_every_event() -> None:
    seen: list[str] = []
    async with FakeAnthropicServer([Reply(text="abcdef", event_delay=0.02)]) as server:
        started = time.monotonic()
        await _events(server, seen)
        elapsed = time.monotonic() - started
    # message_start, ping, block start, 3 deltas, block stop, message_delta, message_stop
    assert elapsed >= 9 * 0.02


@pytest.mark.integration
async def test_tokens_per_second_streams_a_token_per_delta_at_that_rate() -> None:
    deltas: list[str] = []
    async with FakeAnthropicServer([Reply(text="x" * 40, tokens_per_second=200)]) as server, \
            server.client() as client:
        started = time.monotonic()
        async with client.messages.stream(**REQUEST) as stream:
            async for event in stream:
                if event.type == "text":
                    deltas.append(event.text)
        elapsed = time.monotonic() - started
    assert deltas == ["xxxx"] * 10
    assert elapsed >= 10 / 200


@pytest.mark.integration
async def test_a_pause_holds_the_stream_after_its_block_until_released() -> None:
    pause = Pause(after_block=0)
    reply = Reply(text="first", tool_calls=[ToolUse("lookup", {"q": "a"}, id="t1")],
                  pauses=[pause])
    seen: list[str] = []
    async with FakeAnthropicServer([reply]) as server, anyio.create_task_group() as tg:
        tg.start_soon(_events, server, seen)
        with anyio.fail_after(5):
            await pause.reached()
        await wait_all_tasks_blocked()
        assert seen[-1] == "content_block_stop:0"  # and nothing after it
        pause.release()
    assert seen[-3:] == ["content_block_stop:1", "message_delta:", "message_stop:"]


async def test_the_model_double_paces_and_reports_completed_tool_use_blocks() -> None:
    pause = Pause(after_block=1)
    reply = Reply(text="first", tool_calls=[ToolUse("lookup", {"q": "a"}, id="t1"),
                                           ToolUse("lookup", id="t2", raw_input_json="{oops")],
                  stop_reason="max_tokens", pauses=[pause])
    model = ScriptedModel([reply])
    items: list[Any] = []

    async def consume() -> None:
        async for item in model.turn(REQUEST, stream=True):
            items.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        with anyio.fail_after(5):
            await pause.reached()
        await wait_all_tasks_blocked()
        assert isinstance(items[-1], ToolUseComplete) and items[-1].block == {
            "type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "a"}}
        pause.release()
    assert isinstance(items[0], TextDelta) and isinstance(items[-1], ModelReply)
    # input that does not parse as an object (cut at max_tokens here) is None
    assert items[-2].index == 2 and items[-2].block["input"] is None


def test_pauses_cannot_be_scripted_in_a_replay_file_but_delays_can() -> None:
    script = Script.from_json({"replies": [{"text": "hi", "event_delay": 0.01,
                                            "tokens_per_second": 50}]})
    assert script.remaining == 1
    with pytest.raises(ValueError, match="pauses"):
        Script.from_json({"replies": [{"text": "hi", "pauses": [{"after_block": 0}]}]})
    with pytest.raises(ValueError, match="tokens_per_second"):
        Reply(text="hi", tokens_per_second=0)
