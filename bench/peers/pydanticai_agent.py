"""pydantic-ai: ``Agent`` on ``AnthropicModel``, the provider given the same SDK client.

Tools are the plain functions (``tools=[...]``; pydantic-ai reads their signatures and
docstrings). pydantic-ai has no tool-result cache; its best option (workload 2) is the one
its maintainers point to, a caching decorator on the function: cashews' ``@cache`` (in
memory; ``protected`` by default, so concurrent identical misses share one execution).
With ``search`` (workload 4) every tool is ``Tool(fn, defer_loading=True)`` with the
``ToolSearch`` capability (native on Anthropic where the model profile allows it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anthropic
from pydantic_ai import Agent, Tool
from pydantic_ai.messages import ModelResponse
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from workload import MAX_TOKENS, MODEL, SHOP_FUNCTIONS, SYSTEM, Outcome, Setup

if TYPE_CHECKING:
    from collections.abc import Callable


class PydanticAI:
    def __init__(self, setup: Setup) -> None:
        self.client = anthropic.AsyncAnthropic(base_url=setup.base_url, api_key=setup.api_key)
        model = AnthropicModel(MODEL, provider=AnthropicProvider(anthropic_client=self.client))
        functions: list[Callable[..., Any]] = (
            setup.catalog.functions() if setup.catalog is not None else list(SHOP_FUNCTIONS))
        if setup.cache:
            from cashews import cache

            cache.setup("mem://")
            functions = [cache(ttl="5m")(fn) for fn in functions]
        capabilities: list[Any] = []
        tools: list[Any] = functions
        if setup.search:
            from pydantic_ai.capabilities import ToolSearch

            tools = [Tool(fn, defer_loading=True) for fn in functions]
            capabilities.append(ToolSearch(strategy="regex"))
        self.agent: Agent[None, str] = Agent(
            model, system_prompt=SYSTEM, tools=tools, capabilities=capabilities,
            model_settings={"max_tokens": MAX_TOKENS})

    async def run(self, task: str) -> Outcome:
        result = await self.agent.run(task)
        messages = result.all_messages()
        turns = sum(1 for m in messages if isinstance(m, ModelResponse))
        return Outcome(turns, result.output, messages)

    async def aclose(self) -> None:
        await self.client.close()


async def build(setup: Setup) -> PydanticAI:
    return PydanticAI(setup)
