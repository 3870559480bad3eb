"""Input from outside that used to get through: model replies no request can send back,
input and results nested too deep, error texts as large as what they quote, result
blocks of any kind against the size limits, and a tool's own stray cancellation.
Each case failed before its fix (see README.md's report)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from agentrt import MalformedReplyError, SQLiteThreadStore, Tool, ToolContent, function
from agentrt.testing import Reply, ToolUse, capture_events

from .support import check_thread, harness

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("stream", [False, True])
async def test_a_lone_surrogate_in_tool_input_is_refused_and_the_thread_stays_usable(
        stream: bool, tmp_path: Any) -> None:
    """Failed before: the call key raised a bare UnicodeEncodeError, and the stored reply
    made every later request of the thread fail (the SDK sends UTF-8 only)."""
    steps = [Reply(tool_calls=[ToolUse("stock", {"item": "lamp\ud800"})]),
             Reply(text="Here again."), Reply(text="Still here.")]
    async with SQLiteThreadStore(tmp_path / "t.db") as store, harness(
            steps, store=store, stream=stream) as (agent, _, shop):
        with pytest.raises(MalformedReplyError):  # streamed: the SDK's parser refuses it
            await agent.run("How many lamps?")
        thread = (await store.list_threads())[0].id
        assert [m.role for m in await store.messages(thread)] == ["user"]  # nothing stored
        again = await agent.run("Try again", thread_id=thread)
        third = await agent.run("And now?", thread_id=thread)
        messages = await store.messages(thread)
    assert shop.reads == [] and again.text == "Here again." and third.text == "Still here."
    check_thread(messages)


@pytest.mark.parametrize("depth", [900, 10_000])
@pytest.mark.parametrize("stream", [False, True])
async def test_tool_input_nested_too_deep_is_a_malformed_reply(stream: bool, depth: int) -> None:
    """Failed before (non-streamed): a bare ValueError ("Maximum serialization depth
    exceeded") at 900, a bare RecursionError from the SDK's parse at 10,000."""
    steps = [Reply(tool_calls=[ToolUse("stock", raw_input_json=_nested(depth))]),
             Reply(text="ok")]
    async with harness(steps, stream=stream) as (agent, _, shop):
        with pytest.raises(MalformedReplyError):
            await agent.run("How many lamps?")
        thread = (await agent.runtime.store.list_threads())[0].id
        assert [m.role for m in await agent.runtime.store.messages(thread)] == ["user"]
        assert (await agent.run("again", thread_id=thread)).text == "ok"
    assert shop.reads == []


class Hostile(Tool):
    """Results and failures built to be as large or as deep as possible."""

    def __init__(self) -> None:
        self.shipped = 0

    @function(read_only=True)
    async def deep(self) -> Any:
        """A result nested 100,000 deep."""
        value: Any = 1
        for _ in range(100_000):
            value = [value]
        return value

    @function(read_only=True)
    async def echo(self, text: str, count: int) -> str:
        """Echo."""
        return text * count

    @function
    async def ship(self) -> str:
        """A side effect, then a failure with a 20 MB message."""
        self.shipped += 1
        raise RuntimeError("x" * 20_000_000)

    @function(read_only=True)
    async def picture(self) -> ToolContent:
        """An image of 8 MB and a caption."""
        return ToolContent("A cat.", {"type": "image", "source": {
            "type": "base64", "media_type": "image/png", "data": "A" * 8_000_000}})

    @function(read_only=True)
    async def stray_cancel(self) -> str:
        """Raises a cancellation of its own (as code that awaits a cancelled future does)."""
        raise anyio.get_cancelled_exc_class()()


def _results(server: Any) -> list[dict[str, Any]]:
    body = server.requests[-1].body
    return [b for b in body["messages"][-1]["content"] if b["type"] == "tool_result"]


async def _run_tool(*calls: ToolUse, **settings: Any) -> tuple[list[dict[str, Any]], Any,
                                                                 list[dict[str, Any]]]:
    tool = Hostile()
    steps = [Reply(tool_calls=list(calls)), Reply(text="done")]
    async with harness(steps, agent_attrs={"tools": (tool,)}, **settings) as (agent, server, _):
        with capture_events() as events:
            result = await agent.run("go")
        check_thread(await agent.runtime.store.messages(result.thread_id))
        assert result.text == "done"
        return _results(server), tool, events


async def test_a_result_nested_too_deep_is_an_error_result_and_the_run_goes_on() -> None:
    """Failed before: json.dumps raised RecursionError out of the pipeline, ending the run."""
    results, _, _ = await _run_tool(ToolUse("deep"))
    assert results[0]["is_error"] and "nested too deep" in results[0]["content"]


async def test_an_error_result_is_bounded_like_a_result() -> None:
    """Failed before: the validation error quoted the 10 MB argument whole."""
    results, _, _ = await _run_tool(ToolUse("echo", {"text": "y",
                                                      "count": "many" * 2_500_000}))
    assert results[0]["is_error"] and len(results[0]["content"]) < 1_000


async def test_an_exception_with_a_huge_message_is_logged_bounded() -> None:
    """Failed before: the traceback (with the 20 MB message) was logged whole."""
    results, tool, events = await _run_tool(ToolUse("ship"))
    assert tool.shipped == 1 and results[0]["is_error"] and len(results[0]["content"]) < 1_000
    logged = [e for e in events if e["event"] == "tool.error"]
    assert logged and all(len(repr(e)) < 50_000 for e in logged)
    assert "RuntimeError" in logged[0]["traceback"]


async def test_every_block_counts_against_the_result_limit() -> None:
    """Failed before: an 8 MB image went out with max_result_chars=1000 and the local
    cache counted 690 bytes for it."""
    results, _, _ = await _run_tool(ToolUse("picture"), max_result_chars=1000)
    blocks = results[0]["content"]
    assert [b["type"] for b in blocks] == ["text", "text"]
    assert "image block of 8,000,0" in blocks[1]["text"] and len(str(blocks)) < 2_000


async def test_the_local_cache_counts_an_image_by_its_size() -> None:
    from agentrt.pipeline import ToolOutcome
    from agentrt.pipeline.local_cache import outcome_size

    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "A" * 80_000}}
    assert outcome_size(ToolOutcome("cat", blocks=({"type": "text", "text": "cat"}, image))
                        ) > 80_000


async def test_a_tools_own_cancellation_is_an_error_result_not_the_runs() -> None:
    """Failed before: the stray CancelledError ended the whole run as if it had been
    cancelled by its caller."""
    results, _, _ = await _run_tool(ToolUse("stray_cancel"), ToolUse("echo", {
        "text": "a", "count": 2}))
    assert results[0]["is_error"] and "Cancel" in results[0]["content"]
    assert results[1]["content"] == "aa"


async def test_a_cancelled_run_is_still_cancelled_while_a_tool_runs() -> None:
    started = anyio.Event()

    class Slow(Tool):
        @function
        async def wait(self) -> str:
            """Waits."""
            started.set()
            await anyio.sleep(60)
            return "never"

    steps = [Reply(tool_calls=[ToolUse("wait")]), Reply(text="done")]
    async with harness(steps, agent_attrs={"tools": (Slow(),)}) as (agent, _, _):
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run, "go")
            await started.wait()
            tg.cancel_scope.cancel()
        thread = (await agent.runtime.store.list_threads())[0].id
        messages = await agent.runtime.store.messages(thread)
    check_thread(messages)
    assert "cancelled" in str(messages[-1].content)
