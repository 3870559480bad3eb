"""Shop assistant: the repeated ``GET /api/products/42`` symptom, on agentrt.

The scripted model (examples/shop.replay.json) asks for product 42 again and again,
as real agents do. The run's stats show tool calls against real upstream calls.

Run it offline on the fake Messages API server (no API key needed)::

    python examples/shop.py            # or: make demo

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from agentrt import Agent, Tool, function

REPLAY = Path(__file__).with_name("shop.replay.json")
TASK = "Is product 42 in stock, and can user u-7 get their member discount on it?"

_PRODUCTS = {
    17: {"id": 17, "name": "USB-C cable", "price": 9.99, "stock": 120},
    42: {"id": 42, "name": "Noise-cancelling headphones", "price": 199.0, "stock": 3},
}
_USERS = {"u-7": {"id": "u-7", "name": "Alice", "tier": "premium", "discount": 0.1}}


class ShopAPI(Tool):
    """A slow upstream HTTP API, simulated: every call costs a round trip and is counted."""

    name = "shop_api"
    upstream_delay = 0.02

    def __init__(self) -> None:
        self.upstream_calls: list[str] = []

    async def _get(self, path: str) -> None:
        self.upstream_calls.append(f"GET {path}")
        await anyio.sleep(self.upstream_delay)

    @function(read_only=True, ttl=300)
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


if __name__ == "__main__":
    from agentrt.cli import main

    argv = ["run", f"{__file__}:ShopAgent", sys.argv[1] if len(sys.argv) > 1 else TASK]
    if not os.environ.get("ANTHROPIC_API_KEY"):
        argv += ["--replay", str(REPLAY)]
    raise SystemExit(main(argv))
