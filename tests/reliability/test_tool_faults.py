"""Tool faults: whatever a tool does, the run finishes, each call gets a clear error or a
truncated result with a notice, and memory stays bounded."""

from __future__ import annotations

import datetime
import tracemalloc
from typing import Any

import anyio
import pytest

from agentrt import Agent, Runtime, Tool, ToolError, function, load_settings
from agentrt.testing import FakeAnthropicServer, Reply, ToolUse

from .support import check_thread, tool_results

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

BIG = 50 * 1024 * 1024


class BadMessage(Exception):
    def __str__(self) -> str:
        raise RuntimeError("even the message is broken")


class Faulty(Tool):
    @function
    async def raises(self) -> str:
        """Raises."""
        raise ValueError("disk on fire")

    @function
    async def refuses(self) -> str:
        """Raises ToolError, a message for the model."""
        raise ToolError("no such order 7")

    @function
    async def unprintable(self) -> str:
        """Raises an exception whose message cannot be rendered."""
        raise BadMessage

    @function
    async def huge_error(self) -> str:
        """Raises with a 50 MB message."""
        raise ToolError("x" * BIG)

    @function(timeout=0.05)
    async def slow(self) -> str:
        """Takes too long."""
        await anyio.sleep(5)
        return "late"

    @function(timeout=0.05)
    async def hangs(self) -> str:
        """Never returns."""
        await anyio.sleep_forever()
        return ""

    @function
    async def not_json(self) -> Any:
        """Returns what JSON cannot carry."""
        return {"when": datetime.datetime(2026, 1, 1), "raw": b"\x00"}

    @function
    async def circular(self) -> Any:
        """Returns a value that refers to itself."""
        value: dict[str, Any] = {}
        value["self"] = value
        return value

    @function(read_only=True)
    async def fifty_mb_text(self) -> str:
        """Returns 50 MB of text."""
        return "y" * BIG

    @function(read_only=True)
    async def fifty_mb_json(self) -> dict[str, Any]:
        """Returns 50 MB of JSON."""
        return {"rows": ["z" * 1024] * (BIG // 1024)}


class FaultyAgent(Agent):
    model = "claude-test"
    max_iterations = 3
    tools = (Faulty,)


EXPECTED = {  # function -> (is_error, text in the result)
    "raises": (True, "raises failed: ValueError: disk on fire"),
    "refuses": (True, "no such order 7"),
    "unprintable": (True, "BadMessage: its message cannot be read"),
    "huge_error": (True, "xxx..."),
    "slow": (True, "slow timed out after 0.05 s and was cancelled"),
    "hangs": (True, "hangs timed out after 0.05 s and was cancelled"),
    "not_json": (True, "returned a value that is not JSON (dict)"),
    "circular": (True, "returned a value that is not JSON (dict)"),
    "fifty_mb_text": (False, "[agentrt: result truncated from 52,428,800 to 100,000 characters]"),
    "fifty_mb_json": (False, "[agentrt: result truncated from"),
}


async def test_every_tool_fault_becomes_a_result_and_the_run_finishes() -> None:
    """Failed before: ``unprintable`` crashed the whole run (its ``__str__`` raised
    inside the error handler), and ``huge_error`` logged its 50 MB message."""
    calls = [ToolUse(name) for name in EXPECTED]
    steps = [Reply(tool_calls=calls), Reply(text="Reported.")]
    settings = load_settings(thread_store="memory")
    tracemalloc.start()
    try:
        async with FakeAnthropicServer(steps) as server, server.client() as client, Runtime(
                settings, client=client) as runtime:
            agent = FaultyAgent(runtime)
            with anyio.fail_after(20):
                result = await agent.run("try everything")
            stored = await runtime.store.messages(result.thread_id)
            current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.text == "Reported." and result.stop_reason == "end_turn"
    check_thread(stored)
    results = tool_results(server.requests[1].body)
    for (name, (is_error, text)), block in zip(EXPECTED.items(), results, strict=True):
        assert block.get("is_error", False) is is_error, (name, block)
        assert text in block["content"], (name, block["content"][-300:])
        assert len(block["content"]) <= 100_200, name  # every result bounded
    # three 50 MB values were built by the tools; what is kept afterwards is bounded
    assert current < 20 * 1024 * 1024, f"{current / 1e6:.1f} MB still held"
    assert peak < 400 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
