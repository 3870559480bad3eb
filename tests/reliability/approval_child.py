"""One OS process resuming (or starting) a run that waits for approval, for
test_approval_processes.py.

    python approval_child.py CONFIG_JSON

CONFIG: base_url (the parent's fake Messages API), store ("sqlite" or "redis"),
sqlite_path or redis_url + redis_prefix, thread_id, effects (a file: each payment
appends "start" then "done", fsync'd, so a SIGKILL keeps what happened), approve (call
ids; the child resumes with them), block (the payment announces "in_tool" after
"start" and never returns: the parent kills the process there), wait and lease.

Protocol on stdout, one JSON value a line: "ready" once the runtime is open; then, after
a line on stdin ("go"), the outcome: {"ok": true, "text", "stop_reason"} or
{"ok": false, "error": <exception class name>, "message"}.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import anyio.to_thread

from agentrt import Agent, AgentRtError, Runtime, Tool, configure_logging, function, load_settings
from agentrt.testing import RecordedRequest, Reply, ToolUse


def record(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class Payments(Tool):
    def __init__(self, effects: str, *, block: bool = False) -> None:
        self.effects = effects
        self.block = block

    @function(requires_approval=True, approval_reason="payments move money")
    async def pay(self, amount: int) -> str:
        """Pay an amount (a side effect a person approves first)."""
        record(self.effects, f"start {os.getpid()}")
        if self.block:
            emit("in_tool")
            await anyio.sleep_forever()
        record(self.effects, f"done {os.getpid()}")
        return f"paid {amount}"


class PayAgent(Agent):
    model = "claude-test"
    system = "Pay what you are told."
    max_iterations = 4


def pay_agent(tool: Payments) -> type[Agent]:
    return type("PayAgent", (PayAgent,), {"tools": (tool,)})


PAY = ToolUse("pay", {"amount": 10}, id="toolu_pay")


def model(request: RecordedRequest) -> Reply:
    """Asks to pay once; answers with what the payment's result said."""
    content = request.body["messages"][-1]["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    results = [b for b in blocks if b["type"] == "tool_result"]
    if results:
        return Reply(text=f"result: {results[0]['content']}")
    return Reply(tool_calls=[PAY])


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
    tool = Payments(config["effects"], block=config.get("block", False))
    async with anthropic.AsyncAnthropic(base_url=config["base_url"], api_key="test-key",
                                        max_retries=0) as client, Runtime(
            load_settings(**options), client=client) as runtime:
        agent = pay_agent(tool)(runtime)
        await runtime.store.get_thread(config["thread_id"])  # open the store now
        emit("ready")
        await anyio.to_thread.run_sync(sys.stdin.readline)
        try:
            result = await agent.resume(config["thread_id"], approve=config["approve"])
        except AgentRtError as exc:
            emit({"ok": False, "error": type(exc).__name__, "message": str(exc)})
        else:
            emit({"ok": True, "text": result.text, "stop_reason": result.stop_reason})


if __name__ == "__main__":
    anyio.run(main, json.loads(sys.argv[1]), backend="asyncio")
