"""The fake Messages API for the load test and the soak, as its own process.

``python load_server.py TURNS CALLS LATENCY``: prints ``AGENTRT_FAKE_BASE_URL=...`` once
listening, serves until stdin closes. Each run's model asks for CALLS tool calls per
turn for TURNS turns (``lookup`` of (run, turn, call), plus ``record`` once per turn),
then answers ``done <run>``; every reply waits LATENCY seconds first.
"""

from __future__ import annotations

import sys

import anyio

from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply, ToolUse


def load_model(turns: int, calls: int):  # type: ignore[no-untyped-def]
    def respond(request: RecordedRequest) -> Reply:
        messages = request.body["messages"]
        first = messages[0]["content"]
        run = (first if isinstance(first, str) else first[0]["text"]).split()[-1]
        turn = sum(1 for m in messages if m["role"] == "assistant")
        if turn >= turns:
            return Reply(text=f"done {run}")
        tool_calls = [ToolUse("lookup", {"run": run, "turn": turn, "index": i})
                      for i in range(calls - 1)]
        tool_calls.append(ToolUse("record", {"run": run, "turn": turn}))
        return Reply(text=f"turn {turn}", tool_calls=tool_calls)

    return respond


async def main(turns: int, calls: int, latency: float) -> None:
    async with FakeAnthropicServer(load_model(turns, calls), latency=latency) as server:
        sys.stdout.write(f"AGENTRT_FAKE_BASE_URL={server.base_url}\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.read)  # until the parent closes it


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
