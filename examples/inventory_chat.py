"""Inventory chat: a multi-turn conversation, its memo, and a resume after a restart.

Five user turns on one thread, split across two OS processes that share a SQLite
thread store, as when a service restarts mid-conversation:

- process 1: "how many blue?" and "red?" run the tool; "blue again?" is answered by
  the ``memo`` stage (the same call earlier in this thread);
- process 2 starts cold (no cache in memory), loads the thread from the SQLite file
  and rebuilds the memo from the stored messages: "compare blue and red" runs no
  tool at all. Then "reserve 2 blue" (a side effect, ``invalidates=("stock",)``)
  makes the stored stock stale, so the check that follows runs the tool again.

Run it offline on the fake Messages API server (no API key needed)::

    python examples/inventory_chat.py                 # both processes, a temporary db
    python examples/inventory_chat.py --db inv.db     # keep the db: agentrt threads list

The same agent works in the chat REPL: ``agentrt chat
examples/inventory_chat.py:InventoryAgent --replay ``REPLIES`` below``.
With ANTHROPIC_API_KEY set, it runs against the real API.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import anyio

from agentrt import Agent, Tool, function
from agentrt.testing import runtime_or_replay, show_run

PARTS = {
    1: ["How many blue widgets do we have?", "And red ones?",
        "Sorry, how many blue ones was it again?"],
    2: ["Compare the blue and red stock for me.",
        "Reserve 2 blue widgets for order 881, then confirm what is left."],
}

_STOCK = {"W-BLUE": 12, "W-RED": 4}


class Inventory(Tool):
    """The warehouse API, simulated per process: stock levels and reservations."""

    name = "inventory"

    def __init__(self) -> None:
        self.upstream: list[str] = []
        self.stock = dict(_STOCK)

    @function(read_only=True, ttl=600, cache_tags=("stock",))
    async def check_stock(self, sku: str) -> dict[str, object]:
        """Units in stock for a SKU.

        Args:
            sku: The stock-keeping unit, like "W-BLUE".
        """
        self.upstream.append(f"GET /stock/{sku}")
        await anyio.sleep(0.02)
        return {"sku": sku, "in_stock": self.stock.get(sku, 0)}

    @function(invalidates=("stock",))
    async def reserve(self, sku: str, quantity: int, order: str) -> dict[str, object]:
        """Reserve units of a SKU for an order (they leave the available stock).

        Args:
            sku: The stock-keeping unit.
            quantity: How many units.
            order: The order id.
        """
        self.upstream.append(f"POST /reservations {sku} x{quantity}")
        self.stock[sku] = self.stock.get(sku, 0) - quantity
        return {"reserved": quantity, "sku": sku, "order": order}


class InventoryAgent(Agent):
    system = "You answer questions about warehouse stock. Be brief."
    tools = (Inventory,)
    max_iterations = 6


async def part(number: int, thread_id: str, db: Path) -> None:
    async with runtime_or_replay(REPLIES, thread_store="sqlite", sqlite_path=db) as runtime:
        stored = await runtime.store.get_thread(thread_id)
        if number == 1:
            print(f"== process {number} (pid {os.getpid()}): new thread {thread_id} in {db}")
        elif stored is None:
            raise SystemExit(f"inventory_chat: nothing to resume: no thread {thread_id} in {db}")
        else:
            print(f"== process {number} (pid {os.getpid()}): resumed thread {thread_id} from "
                  f"{db} ({stored.message_count} messages stored, nothing cached in memory)")
        agent = InventoryAgent(runtime)
        for task in PARTS[number]:
            await show_run(agent, task, thread_id=thread_id)
        upstream = agent.registry.tool("inventory").upstream
        print(f"== process {number}: {len(upstream)} upstream calls: {', '.join(upstream)}")


def both(db: Path | None) -> int:
    """Process 1, then process 2 on the same thread and the same SQLite file."""
    with tempfile.TemporaryDirectory(prefix="agentrt-inventory-") as tmp:
        path = db or Path(tmp) / "threads.db"
        thread_id = f"thr_{uuid.uuid4().hex}"
        for number in PARTS:
            command = [sys.executable, __file__, "--part", str(number), "--thread", thread_id,
                       "--db", str(path)]
            if subprocess.run(command, check=False).returncode != 0:
                return 1
            sys.stdout.flush()
    return 0


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"tool_calls": [{"name": "check_stock", "input": {"sku": "W-BLUE"}}]},
    {"text": "We have 12 blue widgets in stock."},
    {"tool_calls": [{"name": "check_stock", "input": {"sku": "W-RED"}}]},
    {"text": "4 red widgets."},
    {"tool_calls": [{"name": "check_stock", "input": {"sku": "W-BLUE"}}]},
    {"text": "12 blue widgets."},
    {"tool_calls": [{"name": "check_stock", "input": {"sku": "W-BLUE"}},
                    {"name": "check_stock", "input": {"sku": "W-RED"}}]},
    {"text": "Blue: 12, red: 4. Blue has three times the stock of red."},
    {"tool_calls": [{"name": "reserve",
                     "input": {"sku": "W-BLUE", "quantity": 2, "order": "881"}}]},
    {"tool_calls": [{"name": "check_stock", "input": {"sku": "W-BLUE"}}]},
    {"text": "Reserved 2 blue widgets for order 881; 10 are left."},
]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="the SQLite thread store (default: temporary)")
    parser.add_argument("--part", type=int, choices=sorted(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--thread", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part is None:
        raise SystemExit(both(args.db))
    anyio.run(part, args.part, args.thread, args.db)
