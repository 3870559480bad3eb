"""One OS process running one agent run on a shared thread, for test_thread_claims.py.

    python claim_child.py CONFIG_JSON

CONFIG: base_url (the parent's fake Messages API), store ("sqlite" or "redis"),
sqlite_path or redis_url + redis_prefix, thread_id, note (the run's message),
stagger (seconds to wait after "go"), wait and lease (thread_wait, thread_lease),
block (the tool announces itself with an "in_tool" line, then never returns: the
parent kills the process there).

Protocol on stdout, one JSON value a line: "ready" once the runtime is open; then,
after a line on stdin ("go"), the run's outcome: {"ok": true, "text", "executed"}
or {"ok": false, "error": <exception class name>, "message"}.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

if __name__ == "__main__":  # run as a script: make `reliability` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentrt import Agent, AgentRtError, Runtime, Tool, configure_logging, function, load_settings
from agentrt.testing import RecordedRequest, Reply, ToolCall


class Recorder(Tool):
    """A slow side effect, counted: each run records its note once."""

    def __init__(self, *, seconds: float = 0.3, block: bool = False) -> None:
        self.notes: list[str] = []
        self.seconds = seconds
        self.block = block

    @function
    async def record(self, note: str) -> str:
        """Record a note (a side effect, never repeated by the runtime)."""
        self.notes.append(note)
        if self.block:
            emit("in_tool")
            await anyio.sleep_forever()
        await anyio.sleep(self.seconds)
        return f"recorded {note}"


class ClaimAgent(Agent):
    model = "claude-test"
    system = "Record what you are told."
    max_iterations = 4


def recorder_agent(tool: Recorder) -> type[Agent]:
    return type("ClaimAgent", (ClaimAgent,), {"tools": (tool,)})


def model(request: RecordedRequest) -> Reply:
    """A user's text asks for one ``record`` of it; the tool's result ends the run."""
    content = request.body["messages"][-1]["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if any(block["type"] == "tool_result" for block in blocks):
        return Reply(text="done")
    note = "".join(block.get("text", "") for block in blocks)
    return Reply(tool_calls=[ToolCall("record", {"note": note})])


def emit(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main(config: dict[str, Any]) -> None:
    import anthropic

    configure_logging("warning", "json", sys.stderr)
    options: dict[str, Any] = {"thread_store": config["store"], "thread_wait": config["wait"],
                               "thread_lease": config["lease"], "llm_max_retries": 0}
    if config["store"] == "sqlite":
        options["sqlite_path"] = config["sqlite_path"]
    else:
        options.update(redis_url=config["redis_url"], redis_prefix=config["redis_prefix"])
    tool = Recorder(block=config.get("block", False))
    async with anthropic.AsyncAnthropic(base_url=config["base_url"], api_key="test-key",
                                        max_retries=0) as client, Runtime(
            load_settings(**options), client=client) as runtime:
        agent = recorder_agent(tool)(runtime)
        await runtime.store.get_thread(config["thread_id"])  # open the store now
        emit("ready")
        await anyio.to_thread.run_sync(sys.stdin.readline)
        await anyio.sleep(config["stagger"])
        try:
            result = await agent.run(config["note"], thread_id=config["thread_id"])
        except AgentRtError as exc:
            emit({"ok": False, "error": type(exc).__name__, "message": str(exc),
                  "executed": len(tool.notes), "pid": os.getpid()})
        else:
            emit({"ok": True, "text": result.text, "executed": len(tool.notes),
                  "pid": os.getpid()})


if __name__ == "__main__":
    anyio.run(main, json.loads(sys.argv[1]), backend="asyncio")
