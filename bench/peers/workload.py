"""What every contender runs: the tool functions, the tasks, and the scripted conversations.

The fake server (``server.py``, its own process) decides every reply from the request alone:
the task carries a tag (``[bench w=w1 run=17 ...]``) naming the workload and the run, and the
number of assistant messages already in the history is the turn. So each contender, whatever
it sends, gets the same tool calls in the same order, and nothing here depends on a framework.

Imported by the server and by every contender process; it imports no framework.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from catalog import Catalog

MODEL = "claude-haiku-5-5"
MAX_TOKENS = 4096
SYSTEM = "You are a shop assistant. Use the tools to answer."
FINAL_TEXT = "All checked: the products are in stock and the users are active."

Call = tuple[str, dict[str, Any]]
Turn = list[Call]


# -- the tools (same functions for every contender) -----------------------------------

class Upstream:
    """The simulated backend every tool reaches: counts calls and distinct keys."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.calls = 0
        self.keys: set[str] = set()

    async def __call__(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        self.keys.add(f"{name}:{json.dumps(args, sort_keys=True)}")
        if self.latency:
            await asyncio.sleep(self.latency)
        return {"fn": name, **args, "price": 9.99, "stock": 3}


UPSTREAM = Upstream()


async def get_product(product_id: int) -> dict[str, Any]:
    """Fetch a product's name, price and stock.

    Args:
        product_id: The numeric product id.
    """
    return await UPSTREAM("get_product", {"product_id": product_id})


async def get_user(user_id: str) -> dict[str, Any]:
    """Fetch a user's name and account status.

    Args:
        user_id: The user id, like "u-3".
    """
    return await UPSTREAM("get_user", {"user_id": user_id})


SHOP_FUNCTIONS = (get_product, get_user)

# The schemas a hand-written loop writes by hand (the floor sends exactly these).
SHOP_SCHEMAS: list[dict[str, Any]] = [
    {"name": "get_product", "description": "Fetch a product's name, price and stock.",
     "input_schema": {"type": "object", "properties": {
         "product_id": {"type": "integer", "description": "The numeric product id."}},
         "required": ["product_id"]}},
    {"name": "get_user", "description": "Fetch a user's name and account status.",
     "input_schema": {"type": "object", "properties": {
         "user_id": {"type": "string", "description": 'The user id, like "u-3".'}},
         "required": ["user_id"]}},
]


# -- tasks ------------------------------------------------------------------------------

_TAG = re.compile(r"\[bench ([^\]]+)\]")


def task(workload: str, run: int, **params: Any) -> str:
    extra = "".join(f" {k}={v}" for k, v in params.items())
    return f"[bench w={workload} run={run}{extra}] Check the products and users I ask about."


def parse_task(text: str) -> dict[str, str]:
    found = _TAG.search(text)
    if found is None:
        return {}
    return dict(pair.split("=", 1) for pair in found.group(1).split())


# -- scripted conversations ---------------------------------------------------------------

def unique_turns(run: int, turns: int = 5, calls: int = 2) -> list[Turn]:
    """Workloads 1 and 3: ``turns`` model turns of ``calls`` tool calls, no call repeated."""
    script: list[Turn] = []
    for t in range(turns):
        turn: Turn = []
        for c in range(calls):
            if c % 2 == 0:
                turn.append(("get_product", {"product_id": run * 1000 + t * 10 + c}))
            else:
                turn.append(("get_user", {"user_id": f"u-{run}-{t}-{c}"}))
        script.append(turn)
    return script


def duplicate_runs(runs: int, seed: int) -> list[list[Turn]]:
    """Workload 2, the seed's symptom, drawn as bench/pipeline.py draws it: each run repeats
    a few favourite reads (two products, one user) 5-20 times in turns of 1-4 calls."""
    rng = random.Random(seed)
    result = []
    for _ in range(runs):
        favourites: list[Call] = [("get_product", {"product_id": rng.randint(1, 12)}),
                                  ("get_product", {"product_id": rng.randint(1, 12)}),
                                  ("get_user", {"user_id": f"u-{rng.randint(1, 6)}"})]
        calls = [rng.choice(favourites) for _ in range(rng.randint(5, 20))]
        turns: list[Turn] = []
        while calls:
            size = rng.randint(1, 4)
            turns.append(calls[:size])
            calls = calls[size:]
        result.append(turns)
    return result


def distinct_keys(runs: list[list[Turn]]) -> int:
    return len({(n, json.dumps(a, sort_keys=True)) for run in runs for t in run for n, a in t})


# -- workload 4: many tools ----------------------------------------------------------------

TOPICS = ("invoice", "customer", "ticket", "shipment", "contract", "sensor", "article",
          "calendar", "repository", "payment")


def needed_tools(n: int) -> list[int]:
    """The three catalog entries the workload-4 task needs."""
    return [n // 4, n // 2, (3 * n) // 4]


def tool_name(i: int) -> str:
    return f"tool_{i:04d}"


def function_name(i: int) -> str:
    return f"tool_{i:04d}_search"


# -- what a contender module provides -------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    """How to build a contender. ``cache``: its own best tool-result cache (workload 2);
    ``variant``: a contender-specific switch (agentrt: "off" for no pipeline, "stream");
    ``catalog``: workload 4's many tools instead of the shop tools; ``search``: register
    the catalog deferred behind the API's tool search, where the contender can."""

    base_url: str
    cache: bool = False
    variant: str = ""
    catalog: Catalog | None = None
    search: bool = False
    api_key: str = "bench-key"


@dataclass
class Outcome:
    """One finished run: model requests made, the final text, and the conversation state the
    application keeps to continue it (measured as memory per idle conversation)."""

    turns: int
    text: str
    keep: object = None


class Runner(Protocol):
    async def run(self, task: str) -> Outcome: ...

    async def aclose(self) -> None: ...


# The search tool the API offers (section 4 of the API reference); deferred tools join it.
TOOL_SEARCH: dict[str, Any] = {"type": "tool_search_tool_regex_20251119",
                               "name": "tool_search_tool_regex"}
