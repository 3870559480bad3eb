"""JIT activations as ``activate_tool`` spans: where they happen, with their dependencies."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from opentelemetry.trace import StatusCode
from telemetry.support import Recorder

from agentrt import Runtime, load_settings
from agentrt.testing import Reply, ScriptedModel, ToolUse

from .agents import research_agent
from .helpers import write_manifest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_activations_are_spans_under_what_caused_them(tmp_path: Path) -> None:
    recorder = Recorder()
    agent_cls = research_agent(write_manifest(tmp_path), tool_loading="append")
    model = ScriptedModel([
        Reply(tool_calls=[ToolUse("initialize_tools", {"tool_names": ["presentation"]})]),
        Reply(tool_calls=[ToolUse("send_mail", {"to": "a@b", "body": "x"})]),
        Reply(text="done")])
    async with Runtime(load_settings(thread_store="memory"), model=model,
                       tracer_provider=recorder.tracer_provider) as runtime:
        await agent_cls(runtime, identity={"account": "acme"}).run("make slides")
    recorder.shutdown()
    chat = "chat claude-haiku-5-5"
    assert recorder.tree() == [
        "invoke_agent ResearchAgent",
        f"  {chat}",
        "  execute_tool initialize_tools",
        "    activate_tool files", "    activate_tool web_search",
        "    activate_tool presentation",
        f"  {chat}",
        "  activate_tool mailer",  # the call activated it, before its own span began
        "  execute_tool send_mail",
        f"  {chat}",
    ]
    spans = {s.name: s for s in recorder.finished()}
    presentation = spans["activate_tool presentation"].attributes or {}
    assert presentation["agentrt.tool.dependencies"] == ("files", "web_search")
    assert presentation["agentrt.jit.trigger"] == "initialize_tools"
    assert presentation["gen_ai.tool.name"] == "presentation"
    mailer = spans["activate_tool mailer"]
    assert mailer.status.status_code is StatusCode.ERROR
    assert "api_key" in (mailer.status.description or "")
    assert (mailer.attributes or {})["agentrt.jit.trigger"] == "auto"
