"""LangGraph: the prebuilt ReAct agent (``langgraph.prebuilt.create_react_agent``) on
langchain-anthropic's ``ChatAnthropic`` pointed at the fake server by ``base_url``.

Tools are the plain functions through ``langchain_core.tools.tool`` (docstring parsed for
argument descriptions); the tool node runs one reply's calls concurrently. LangGraph's own
cache (``CachePolicy`` on a node, keyed by the node's input) cannot serve a repeated call:
the tool node's input carries the fresh tool-call id. Its best option (workload 2) is
therefore the same as the other frameworks', cashews' ``@cache`` on the function.
ChatAnthropic builds its own SDK client (the SDK's default HTTP client and limits, as for
the others). Workload 4 registers every tool eagerly: the prebuilt agent has no deferred
loading (``LLMToolSelectorMiddleware`` is in ``langchain.agents`` and costs a model call).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from pydantic import SecretStr
from workload import MAX_TOKENS, MODEL, SHOP_FUNCTIONS, SYSTEM, Outcome, Setup

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # create_react_agent is deprecated for langchain's create_agent
    from langgraph.prebuilt import create_react_agent

if TYPE_CHECKING:
    from collections.abc import Callable


class LangGraphReAct:
    def __init__(self, setup: Setup) -> None:
        self.model = ChatAnthropic(model_name=MODEL, base_url=setup.base_url,
                                   api_key=SecretStr(setup.api_key), max_tokens=MAX_TOKENS,
                                   timeout=None, stop=None)  # type: ignore[call-arg]
        functions: list[Callable[..., Any]] = (
            setup.catalog.functions() if setup.catalog is not None else list(SHOP_FUNCTIONS))
        if setup.cache:
            from cashews import cache

            cache.setup("mem://")
            functions = [cache(ttl="5m")(fn) for fn in functions]
        tools = [tool(fn, parse_docstring=True) for fn in functions]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.graph: Any = create_react_agent(self.model, tools, prompt=SYSTEM)

    async def run(self, task: str) -> Outcome:
        state = await self.graph.ainvoke({"messages": [("user", task)]},
                                         config={"recursion_limit": 200})
        messages = state["messages"]
        turns = sum(1 for m in messages if isinstance(m, AIMessage))
        return Outcome(turns, str(messages[-1].content), messages)

    async def aclose(self) -> None:
        pass


async def build(setup: Setup) -> LangGraphReAct:
    return LangGraphReAct(setup)
