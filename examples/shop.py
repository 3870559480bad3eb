"""Shop assistant: the repeated ``GET /api/products/42`` symptom, before and after agentrt.

The scripted model (``REPLIES`` below) asks for product 42 again and again,
as real agents do: twice in one message, once more as ``"42"``, once more later.
The example runs the conversation with the pipeline (``ShopAgent``), then the same
conversation with every stage off (``ShopAgentNoPipeline``, ``pipeline = []``), and
prints the upstream calls each made and how many the pipeline saved.

Run it offline on the fake Messages API server (no API key needed)::

    python examples/shop.py            # or: make demo

With ANTHROPIC_API_KEY set, the same agents run against the real API.
"""

from __future__ import annotations

import argparse
from collections import Counter

import anyio

from agentrt import Agent, Tool, function
from agentrt.testing import runtime_or_replay, show_run

TASK = "Is product 42 in stock, and can user u-7 get their member discount on it?"

_PRODUCTS = {
    17: {"id": 17, "name": "USB-C cable", "price": 9.99, "stock": 120},
    42: {"id": 42, "name": "Noise-cancelling headphones", "price": 199.0, "stock": 3},
}
_USERS = {"u-7": {"id": "u-7", "name": "Alice", "tier": "premium", "discount": 0.1}}


class ShopAPI(Tool):
    """A slow upstream HTTP API, simulated: every call costs a round trip and is recorded."""

    name = "shop_api"
    upstream_delay = 0.02

    def __init__(self) -> None:
        self.upstream: list[str] = []

    async def _get(self, path: str) -> None:
        self.upstream.append(f"GET {path}")
        await anyio.sleep(self.upstream_delay)

    @function(read_only=True, ttl=300, public=True)  # the catalog is the same for everyone
    async def get_product(self, product_id: int) -> dict[str, object]:
        """Fetch a product's name, price and stock level.

        Args:
            product_id: The numeric product id.
        """
        await self._get(f"/api/products/{product_id}")
        product = _PRODUCTS.get(product_id)
        if product is None:
            return {"error": f"no product {product_id}"}
        return product

    @function(read_only=True, ttl=300)
    async def get_user(self, user_id: str) -> dict[str, object]:
        """Fetch a user's profile, membership tier and discount.

        Args:
            user_id: The user id, like "u-7".
        """
        await self._get(f"/api/users/{user_id}")
        return _USERS.get(user_id, {"error": f"no user {user_id}"})


class ShopAgent(Agent):
    system = ("You are a shop assistant. Use the tools to look up products and users; "
              "answer briefly with prices in dollars.")
    tools = (ShopAPI,)
    max_iterations = 8


class ShopAgentNoPipeline(ShopAgent):
    """The same agent with every stage off: each tool call goes upstream (the "before")."""

    pipeline = []


def _calls(upstream: list[str]) -> str:
    return ", ".join(f"{call} x{n}" for call, n in Counter(upstream).items()) or "none"


async def main(task: str) -> None:
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        after = ShopAgent(runtime)
        result = await show_run(after, task)
        upstream_after = after.registry.tool("shop_api").upstream
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        before = ShopAgentNoPipeline(runtime)
        baseline = await show_run(before, task, quiet=True)
        upstream_before = before.registry.tool("shop_api").upstream
    saved = len(upstream_before) - len(upstream_after)
    share = saved / len(upstream_before) if upstream_before else 0.0
    print("\nThe same conversation, before and after:")
    print(f"  pipeline off: {baseline.stats.tool_calls} tool calls, {len(upstream_before)} "
          f"upstream calls: {_calls(upstream_before)}")
    print(f"  pipeline on:  {result.stats.tool_calls} tool calls, {len(upstream_after)} "
          f"upstream calls: {_calls(upstream_after)}")
    print(f"  saved: {saved} of {len(upstream_before)} upstream calls ({share:.0%})")


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "Let me look up the product and the user.",
     "tool_calls": [{"name": "get_product", "input": {"product_id": 42}},
                    {"name": "get_user", "input": {"user_id": "u-7"}}]},
    {"text": "Let me double-check the stock level of product 42.",
     "tool_calls": [{"name": "get_product", "input": {"product_id": 42}},
                    {"name": "get_product", "input": {"product_id": "42"}}]},
    {"text": "And the price once more, to apply the discount.",
     "tool_calls": [{"name": "get_product", "input": {"product_id": 42}},
                    {"name": "get_user", "input": {"user_id": "u-7"}}]},
    {"text": "Product 42 (Noise-cancelling headphones) is in stock: 3 left. Alice (u-7) is a "
             "premium member, so her 10% discount applies: $199.00 becomes $179.10."},
]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", nargs="?", default=TASK)
    anyio.run(main, parser.parse_args().task)
