"""agentrt: an ``Agent`` subclass on a ``Runtime`` with the in-memory thread store.

Variants: the default pipeline (turn dedup, memo, local cache, single-flight, batch), or
``off`` (``pipeline=[]``: every stage off), or ``bare`` (also no prompt caching and no context
management: what the loop and the store cost with every default the floor lacks off);
``stream`` uses agentrt's own default of streaming replies (the other rows send plain
requests, as every peer does by default).
The pipeline is agentrt's cache: workload 2 changes nothing else. Workload 4 builds an
eager agent (every tool module imported and constructed) or, with ``jit``, a JIT agent
from the catalog's manifest (``jit``: its default ``tool_loading``; ``jit-append`` and
``jit-server_search`` the other two). Logging is configured at ``warning``: the library emits
``llm.response`` and ``tool.executed`` at info level.
"""

from __future__ import annotations

from typing import Any

import anthropic
from workload import MAX_TOKENS, MODEL, SYSTEM, Outcome, Setup, get_product, get_user

from agentrt import (
    Agent,
    MemoryThreadStore,
    Runtime,
    Tool,
    configure_logging,
    function,
    load_settings,
)


class Shop(Tool):
    name = "shop"

    @function(read_only=True, ttl=300, public=True)
    async def get_product(self, product_id: int) -> dict[str, Any]:
        """Fetch a product's name, price and stock.

        Args:
            product_id: The numeric product id.
        """
        return await get_product(product_id)

    @function(read_only=True, ttl=300, public=True)
    async def get_user(self, user_id: str) -> dict[str, Any]:
        """Fetch a user's name and account status.

        Args:
            user_id: The user id, like "u-3".
        """
        return await get_user(user_id)


class ShopAgent(Agent):
    model = MODEL
    system = SYSTEM
    tools = (Shop,)
    max_tokens = MAX_TOKENS
    max_iterations = 100


class AgentRt:
    def __init__(self, setup: Setup) -> None:
        configure_logging(level="warning")
        variants = set(setup.variant.split(",")) - {""}
        options: dict[str, Any] = {}
        if "bare" in variants:
            options = {"prompt_caching": False, "context_strategy": "off"}
        settings = load_settings(thread_store="memory", stream="stream" in variants,
                                 pipeline=[] if variants & {"off", "bare"} else None, **options)
        self.client = anthropic.AsyncAnthropic(base_url=setup.base_url, api_key=setup.api_key)
        self.runtime = Runtime(settings, client=self.client, store=MemoryThreadStore())
        self.agent = self._agent(setup, variants)

    def _agent(self, setup: Setup, variants: set[str]) -> Agent:
        catalog = setup.catalog
        if catalog is None:
            return ShopAgent(self.runtime)
        loading = next((v for v in variants if v.startswith("jit")), None)
        if loading is not None:
            config: dict[str, Any] = {"manifest": catalog.manifest, "entry_points": False}
            if loading != "jit":  # jit-append, jit-server_search; plain jit: the default
                config["tool_loading"] = loading.removeprefix("jit-")
            paths = catalog.tool_paths()

            class JITAgent(Agent):
                model = MODEL
                system = SYSTEM
                max_tokens = MAX_TOKENS
                tool_catalog = paths
                tool_config = config

            return JITAgent(self.runtime)
        classes = catalog.tool_classes()

        class EagerAgent(Agent):
            model = MODEL
            system = SYSTEM
            max_tokens = MAX_TOKENS
            tools = [cls() for cls in classes]

        return EagerAgent(self.runtime)

    async def run(self, task: str) -> Outcome:
        result = await self.agent.run(task)
        return Outcome(result.iterations, result.text)

    async def aclose(self) -> None:
        await self.runtime.aclose()
        await self.client.close()


async def build(setup: Setup) -> AgentRt:
    runner = AgentRt(setup)
    await runner.runtime.__aenter__()
    return runner
