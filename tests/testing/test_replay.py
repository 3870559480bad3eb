"""``runtime_or_replay``: the examples' switch between the real API and scripted replies."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING

import pytest

from agentrt import Agent
from agentrt.testing import has_api_key, runtime_or_replay, show_run

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

REPLIES = [{"text": "first"}, {"text": "second"}]


class Echo(Agent):
    system = "Say something."


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env, no settings file
    for name in os.environ:
        if name.startswith(("ANTHROPIC_", "AGENTRT_")):
            monkeypatch.delenv(name)


@pytest.mark.integration
async def test_without_a_key_replies_follow_the_conversation() -> None:
    assert not has_api_key()
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        agent = Echo(runtime)
        one = await agent.run("hi")
        other = await agent.run("hi")  # another thread: its own first reply
        again = await agent.run("more", thread_id=one.thread_id)  # reply 1 of that thread
        beyond = await agent.run("and?", thread_id=one.thread_id)
        out = io.StringIO()
        shown = await show_run(agent, "hello", out=out)
    assert (one.text, other.text, again.text) == ("first", "first", "second")
    assert "scripted replies of this offline example end here" in beyond.text
    assert out.getvalue() == ("you> hello\nfirst\n   [tool calls 0, executed 0, errors 0, "
                              "answered by the pipeline: none]\n")
    assert shown.text == "first"


async def test_with_a_key_the_runtime_talks_to_the_real_api(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-real")
    assert has_api_key()
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        sdk = runtime.model.sdk  # type: ignore[attr-defined]
        assert sdk.api_key == "sk-real" and "127.0.0.1" not in str(sdk.base_url)
