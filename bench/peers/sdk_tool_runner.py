"""The anthropic SDK's own loop: ``client.beta.messages.tool_runner`` with ``@beta_async_tool``.

``thread=False``: SDK 2.x threads conversations by default (a beta the fake server does not
implement); without threads it sends the full history every turn, like every other contender.
Runner tools must return text or content blocks, so each function is wrapped to return its
result as JSON (what the SDK's examples do). The runner runs one reply's calls one after the
other. It has no result cache; its best option (workload 2) is cashews' ``@cache`` on the
function, as for pydantic-ai. With ``search`` (workload 4) every tool is declared with
``defer_loading=True`` next to the API's regex tool search.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

import anthropic
from anthropic import beta_async_tool
from workload import MAX_TOKENS, MODEL, SHOP_FUNCTIONS, SYSTEM, TOOL_SEARCH, Outcome, Setup

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine


def _as_text(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Coroutine[Any, Any, str]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> str:
        return json.dumps(await fn(*args, **kwargs))

    wrapper.__annotations__ = {**fn.__annotations__, "return": "str"}
    return wrapper


class SdkToolRunner:
    def __init__(self, setup: Setup) -> None:
        self.client = anthropic.AsyncAnthropic(base_url=setup.base_url, api_key=setup.api_key)
        functions: list[Callable[..., Any]] = (
            setup.catalog.functions() if setup.catalog is not None else list(SHOP_FUNCTIONS))
        if setup.cache:
            from cashews import cache

            cache.setup("mem://")
            functions = [cache(ttl="5m")(fn) for fn in functions]
        if setup.search:
            self.tools: list[Any] = [TOOL_SEARCH, *(
                beta_async_tool(defer_loading=True)(_as_text(fn)) for fn in functions)]
        else:
            self.tools = [beta_async_tool(_as_text(fn)) for fn in functions]

    async def run(self, task: str) -> Outcome:
        runner = self.client.beta.messages.tool_runner(
            model=MODEL, max_tokens=MAX_TOKENS, system=SYSTEM, tools=self.tools,
            messages=[{"role": "user", "content": task}], thread=False, max_iterations=100)
        turns, last = 0, None
        async for message in runner:
            turns += 1
            last = message
        text = "".join(b.text for b in last.content if b.type == "text") if last else ""
        return Outcome(turns, text, runner)

    async def aclose(self) -> None:
        await self.client.close()


async def build(setup: Setup) -> SdkToolRunner:
    return SdkToolRunner(setup)
