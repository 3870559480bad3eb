"""The fake Messages API for the peer benchmarks, as its own OS process.

``agentrt.testing.FakeAnthropicServer`` serving a responder: every reply is decided from the
request (the task's tag and the number of assistant messages so far), so any number of
contenders and concurrent runs can share one server and all get the same conversation.

    python bench/peers/server.py [--port 0]

prints ``AGENTRT_FAKE_BASE_URL=http://127.0.0.1:PORT`` once it listens; SIGTERM stops it.

Besides the workloads it answers two control tasks, sent as ordinary messages:
``[bench w=stats run=N]`` returns, as the reply text, the JSON of the first request seen for
run N of workload 4 (arrival time on the system-wide monotonic clock, and the body), and
``[bench w=cpu run=0]`` the server's own CPU seconds so far.

Workload 4 emulates the API's tool search (``tool_search_tool_*`` with ``defer_loading``),
which FakeAnthropicServer does not: the reply carries ``server_tool_use`` and
``tool_search_tool_result`` blocks before the calls, in the same turn, as the API does.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import (
    FINAL_TEXT,
    TOPICS,
    duplicate_runs,
    function_name,
    needed_tools,
    parse_task,
    tool_name,
    unique_turns,
)

from agentrt.testing import FakeAnthropicServer, Reply, Script, ToolCall

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentrt.testing import RecordedRequest, Step


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content
                        if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _blocks(messages: Sequence[Any], role: str, kind: str) -> list[dict[str, Any]]:
    return [b for m in messages if isinstance(m, dict) and m.get("role") == role
            and isinstance(m.get("content"), list)
            for b in m["content"] if isinstance(b, dict) and b.get("type") == kind]


class Responder:
    def __init__(self) -> None:
        self.server: FakeAnthropicServer | None = None
        self.first_requests: dict[str, dict[str, Any]] = {}
        self._duplicates: dict[tuple[int, int], list[Any]] = {}

    def __call__(self, request: RecordedRequest) -> Step:
        if self.server is not None:
            self.server.requests.clear()  # nothing here reads them: keep the process flat
        body = request.body
        messages = body.get("messages", [])
        user = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), {})
        tag = parse_task(_text(user.get("content")))
        kind, run = tag.get("w", ""), tag.get("run", "0")
        latency = float(tag.get("latency", 0.0))
        turn = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
        if kind == "cpu":
            return Reply(text=json.dumps({"cpu": time.process_time()}))
        if kind == "stats":
            return Reply(text=json.dumps(self.first_requests.get(run)))
        if kind in ("w1", "w3"):
            script = unique_turns(int(run), int(tag.get("turns", 5)), int(tag.get("calls", 2)))
        elif kind == "w2":
            key = (int(tag["runs"]), int(tag["seed"]))
            if key not in self._duplicates:
                self._duplicates[key] = duplicate_runs(*key)
            script = self._duplicates[key][int(run)]
        elif kind == "w4":
            if turn == 0 and run not in self.first_requests:
                self.first_requests[run] = {"received_at": request.received_at, "body": body}
            return self._many_tools(int(tag["tools"]), body, messages)
        else:
            return Reply(text=f"fake server: no bench tag in the task ({tag})")
        if turn < len(script):
            return Reply(tool_calls=[ToolCall(n, a) for n, a in script[turn]], latency=latency)
        return Reply(text=FINAL_TEXT, latency=latency)

    def _many_tools(self, n: int, body: dict[str, Any], messages: list[Any]) -> Reply:
        """Call the three needed functions, loading them first the way the request allows."""
        need = needed_tools(n)
        wanted = [function_name(i) for i in need]
        if any(b.get("name") in wanted for b in _blocks(messages, "assistant", "tool_use")):
            return Reply(text=FINAL_TEXT)
        tools = {t.get("name"): t for t in body.get("tools", []) if isinstance(t, dict)}
        calls = [{"type": "tool_use", "id": "toolu_01" + secrets.token_hex(11), "name": f,
                  "input": {"query": f"overdue {TOPICS[i % len(TOPICS)]}"}}
                 for f, i in zip(wanted, need, strict=True)]
        if all(f in tools for f in wanted):
            search = next((t for t in tools.values()
                           if str(t.get("type", "")).startswith("tool_search_tool_")), None)
            deferred = any(tools[f].get("defer_loading") for f in wanted)
            if deferred and search is not None:
                use_id = "srvtoolu_01" + secrets.token_hex(11)
                found = {"type": "tool_search_tool_search_result",
                         "tool_references": [{"type": "tool_reference", "tool_name": f}
                                             for f in wanted]}
                return Reply(content=[
                    {"type": "server_tool_use", "id": use_id, "name": search["name"],
                     "input": {"query": "overdue search"}},
                    {"type": "tool_search_tool_result", "tool_use_id": use_id, "content": found},
                    *calls])
            return Reply(content=calls)
        if "initialize_tools" in tools:
            names = [tool_name(i) for i in need]
            return Reply(tool_calls=[ToolCall("initialize_tools", {"tool_names": names})])
        return Reply(text="fake server: the needed tools are not in the request")


async def serve(port: int) -> None:
    responder = Responder()
    server = FakeAnthropicServer(Script(responder), port=port)
    responder.server = server
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            sys.stdout.write(f"AGENTRT_FAKE_BASE_URL={server.base_url}\n")
            sys.stdout.flush()
            async for _ in signals:
                return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    anyio.run(serve, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
