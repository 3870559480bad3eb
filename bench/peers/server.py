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

from agentrt.testing import FakeAnthropicServer, Reply, Script, ToolUse
from agentrt.testing._cache_sim import parse_prompt  # the estimate behind count_tokens

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


def _referenced(body: dict[str, Any]) -> set[str]:
    """Tool names a ``tool_reference`` block names anywhere in the conversation: in a tool
    search result, or in a tool result's content (client-side search, agentrt JIT)."""
    names: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "tool_reference":
                names.add(str(value.get("tool_name")))
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(body.get("messages", []))
    return names


def _context_tokens(body: dict[str, Any]) -> int:
    """The request's input tokens as the API counts them with deferred loading: a deferred
    definition stays out of the context until a ``tool_reference`` brings it in.
    (The same estimate as the fake's count_tokens, which itself counts every definition.)"""
    referenced = _referenced(body)
    tools = [t for t in body.get("tools", []) if isinstance(t, dict)
             and (not t.get("defer_loading") or t.get("name") in referenced)]
    return parse_prompt({**body, "tools": tools}).total_tokens


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
            if turn == 0:
                self.first_requests[run] = {"received_at": request.received_at, "body": body,
                                            "run_tokens": 0, "requests": 0}
            self.first_requests[run]["run_tokens"] += _context_tokens(body)
            self.first_requests[run]["requests"] += 1
            return self._many_tools(int(tag["tools"]), body, messages)
        else:
            return Reply(text=f"fake server: no bench tag in the task ({tag})")
        if turn < len(script):
            return Reply(tool_calls=[ToolUse(n, a) for n, a in script[turn]], latency=latency)
        return Reply(text=FINAL_TEXT, latency=latency)

    def _many_tools(self, n: int, body: dict[str, Any], messages: list[Any]) -> Reply:
        """Call the three needed functions, finding them first the way the request allows.

        As with the API, a deferred definition is invisible until a ``tool_reference``
        (from the server's tool search or in a tool result) names it."""
        need = needed_tools(n)
        wanted = [function_name(i) for i in need]
        if any(b.get("name") in wanted for b in _blocks(messages, "assistant", "tool_use")):
            return Reply(text=FINAL_TEXT)
        tools = {t.get("name"): t for t in body.get("tools", []) if isinstance(t, dict)}
        referenced = _referenced(body)
        visible = {name for name, t in tools.items()
                   if not t.get("defer_loading") or name in referenced}
        calls = [{"type": "tool_use", "id": "toolu_01" + secrets.token_hex(11), "name": f,
                  "input": {"query": f"overdue {TOPICS[i % len(TOPICS)]}"}}
                 for f, i in zip(wanted, need, strict=True)]
        if all(f in visible for f in wanted):
            return Reply(content=calls)
        search = next((t for t in tools.values()
                       if str(t.get("type", "")).startswith("tool_search_tool_")), None)
        if search is not None and all(f in tools for f in wanted):
            use_id = "srvtoolu_01" + secrets.token_hex(11)
            found = {"type": "tool_search_tool_search_result",
                     "tool_references": [{"type": "tool_reference", "tool_name": f}
                                         for f in wanted]}
            return Reply(content=[
                {"type": "server_tool_use", "id": use_id, "name": search["name"],
                 "input": {"pattern": "overdue|search"}},
                {"type": "tool_search_tool_result", "tool_use_id": use_id, "content": found},
                *calls])
        if "initialize_tools" in visible:
            names = [tool_name(i) for i in need]
            return Reply(tool_calls=[ToolUse("initialize_tools", {"tool_names": names})])
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
