"""Products batch: four lookups of three products become one upstream request.

The scripted model (``REPLIES`` below) asks for products 10, 20,
10 and 30 in one message. ``get_product`` declares a batch form,
``@function(read_only=True, batch="get_products")``: the ``batch`` stage gathers the
calls that arrive together (this message's, and those of concurrent threads, within
``AGENTRT_BATCH_WINDOW`` seconds), ``turn_dedup`` folds the repeated 10, and one
``GET /api/products?ids=10,20,30`` answers them all.

Run it offline on the fake Messages API server (no API key needed)::

    python examples/products_batch.py

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

import anyio

from agentrt import Agent, Tool, function
from agentrt.testing import runtime_or_replay, show_run

TASK = "Compare products 10, 20 and 30 for me: which is cheapest, and is 10 in stock?"

_NAMES = {10: "Desk lamp", 20: "Office chair", 30: "Monitor arm"}
_PRICES = {10: 39.0, 20: 189.0, 30: 74.5}


class Catalog(Tool):
    """The product catalogue API, simulated: it answers many ids in one request."""

    name = "catalog"

    def __init__(self) -> None:
        self.upstream: list[str] = []

    @function(read_only=True, ttl=300, public=True, batch="get_products")
    async def get_product(self, product_id: int) -> dict[str, object]:
        """Fetch one product's name, price and stock.

        Args:
            product_id: The numeric product id.
        """
        return (await self.get_products([product_id]))[product_id]

    async def get_products(self, product_ids: list[int]) -> dict[int, dict[str, object]]:
        """The batch form: one upstream request for every id, a result per id."""
        self.upstream.append(f"GET /api/products?ids={','.join(map(str, product_ids))}")
        await anyio.sleep(0.05)
        return {pid: {"id": pid, "name": _NAMES.get(pid, "?"), "price": _PRICES.get(pid),
                      "in_stock": pid != 30} for pid in product_ids}


class CatalogAgent(Agent):
    system = "You compare products from the catalogue. Be brief; prices in dollars."
    tools = (Catalog,)
    max_iterations = 5


async def main() -> None:
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        agent = CatalogAgent(runtime)
        result = await show_run(agent, TASK)
        upstream = agent.registry.tool("catalog").upstream
    print(f"\n{result.stats.tool_calls} tool calls, {len(upstream)} upstream "
          f"call{'s' if len(upstream) != 1 else ''}: {', '.join(upstream)}")


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "Let me fetch the three products (and 10 again, for its stock).",
     "tool_calls": [{"name": "get_product", "input": {"product_id": 10}},
                    {"name": "get_product", "input": {"product_id": 20}},
                    {"name": "get_product", "input": {"product_id": 10}},
                    {"name": "get_product", "input": {"product_id": 30}}]},
    {"text": "The desk lamp (10) is cheapest at $39.00 and in stock. The monitor arm (30) "
             "costs $74.50 but is out of stock; the office chair (20) is $189.00."},
]


if __name__ == "__main__":
    anyio.run(main)
