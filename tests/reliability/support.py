"""Shared pieces of the reliability suite: a shop tool that counts its side effects,
an agent harness over the fake Messages API, and the thread-consistency check."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from anyio.streams.buffered import BufferedByteReceiveStream

from agentrt import Agent, Message, Runtime, Tool, function, load_settings
from agentrt.testing import FakeAnthropicServer, Reply, ToolUse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from anyio.abc import Process

    from agentrt import ThreadStore
    from agentrt.testing import RecordedRequest, Responder, Step


class Shop(Tool):
    """Stock look-ups (read-only) and shipments (a side effect), both counted."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.shipped: list[tuple[str, int]] = []

    @function(read_only=True, ttl=60)
    async def stock(self, item: str) -> dict[str, Any]:
        """Units of an item in stock.

        Args:
            item: The item's name.
        """
        self.reads.append(item)
        return {"item": item, "units": 5}

    @function
    async def ship(self, item: str, qty: int = 1) -> str:
        """Ship units of an item: a side effect, never repeated by the runtime."""
        self.shipped.append((item, qty))
        return f"shipped {qty} x {item}"


class ShopAgent(Agent):
    model = "claude-test"
    system = "You run a shop."
    max_iterations = 6


def shop_agent(tool: Tool, **attrs: Any) -> type[Agent]:
    """A ShopAgent subclass bound to ``tool`` (tests never share class attributes)."""
    return type("ShopAgent", (ShopAgent,), {"tools": (tool,), **attrs})


@asynccontextmanager
async def harness(steps: Sequence[Step] | Responder, *, store: ThreadStore | None = None,
                  stream: bool = True, retries: int = 2, agent_attrs: dict[str, Any] | None = None,
                  **settings: Any) -> AsyncIterator[tuple[Agent, FakeAnthropicServer, Shop]]:
    from agentrt import MemoryThreadStore

    tool = Shop()
    options = {"stream": stream, "thread_store": "memory", **settings}
    async with FakeAnthropicServer(steps) as server, server.client(
            max_retries=retries) as client, Runtime(
            load_settings(**options), client=client,
            store=store if store is not None else MemoryThreadStore()) as runtime:
        yield shop_agent(tool, **(agent_attrs or {}))(runtime), server, tool


def check_thread(messages: Sequence[Message]) -> None:
    """The stored thread is one the Messages API takes back: every message whole
    (non-empty content, known roles), every tool_use answered exactly once in the
    next message, no tool_result without its tool_use."""
    asked: set[str] = set()
    for index, message in enumerate(messages):
        assert message.role in ("user", "assistant"), (index, message.role)
        blocks = message.blocks()
        assert blocks, f"message {index} is empty"
        json.dumps(message.content)  # JSON all the way down
        answered = [str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"]
        if message.role == "user":
            assert sorted(answered) == sorted(asked), (index, answered, asked)
            asked = set()
        else:
            assert not asked, f"message {index}: tool_use ids {asked} were never answered"
            uses = [b for b in blocks if b.get("type") == "tool_use"]
            for use in uses:
                assert isinstance(use.get("input"), dict), use
            asked = {str(b.get("id")) for b in uses}
            assert len(asked) == len(uses), "duplicate tool_use ids"
    # a dangling last assistant message is allowed: the next run answers it


def tool_results(request_body: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in request_body["messages"][-1]["content"] if b["type"] == "tool_result"]


class Child:
    """A child process of a cross-process test (claim_child.py, approval_child.py) that
    speaks one JSON value per line on stdout, and a reader over it."""

    def __init__(self, process: Process) -> None:
        assert process.stdout is not None
        self.process = process
        self.lines = BufferedByteReceiveStream(process.stdout)

    async def read(self) -> Any:
        return json.loads(await self.lines.receive_until(b"\n", 1 << 20))

    async def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line)


def warehouse_model(request: RecordedRequest) -> Reply:
    """A model that ships each listed item once, checking the status of a shipment
    whose outcome is unknown before shipping it again."""
    messages = request.body["messages"]
    first = messages[0]["content"]
    task = first if isinstance(first, str) else first[0]["text"]
    items = task.removeprefix("Ship: ").split(", ")
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    state: dict[str, str] = {}
    for message in messages:
        content = message["content"]
        for block in content if isinstance(content, list) else []:
            if block["type"] == "tool_use":
                calls[block["id"]] = (block["name"], block["input"])
            elif block["type"] == "tool_result":
                name, args = calls[block["tool_use_id"]]
                failed = block.get("is_error", False)
                if name == "ship":
                    state[args["item"]] = "unknown" if failed else "done"
                elif name == "order_status" and not failed:
                    state[args["item"]] = "done" if block["content"] == "shipped" else "todo"
    for item in items:
        if state.get(item) == "unknown":
            return Reply(text=f"Checking {item}.",
                         tool_calls=[ToolUse("order_status", {"item": item})])
        if state.get(item) != "done":
            return Reply(text=f"Shipping {item}.", tool_calls=[
                ToolUse("stock", {"item": item}), ToolUse("ship", {"item": item})])
    return Reply(text="All shipped: " + ", ".join(items))
