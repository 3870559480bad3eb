"""The floor: the tool-use loop a person writes on ``anthropic.AsyncAnthropic`` by hand.

Hand-written schemas, a dict from name to function, the calls of one reply run concurrently,
results sent back as JSON text. Its best cache (workload 2) is async-lru's ``alru_cache``
around each function (single-flight: concurrent identical calls share one execution).
With ``search`` (workload 4) it registers every tool with ``defer_loading`` behind the API's
regex tool search. The ``stream`` variant streams each reply (``messages.stream`` and
``get_final_message``), the floor for agentrt's streaming default; ``pool`` gives the SDK
client a pool that keeps 1,000 idle connections alive (the default keeps 100).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import anthropic
from workload import (
    MAX_TOKENS,
    MODEL,
    SHOP_FUNCTIONS,
    SHOP_SCHEMAS,
    SYSTEM,
    TOOL_SEARCH,
    Outcome,
    Setup,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class HandWritten:
    def __init__(self, setup: Setup) -> None:
        options: dict[str, Any] = {}
        if setup.variant == "pool":  # keep every connection alive: no churn past 100
            import httpx2

            limits = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)
            options["http_client"] = anthropic.DefaultAsyncHttpxClient(limits=limits)
        self.client = anthropic.AsyncAnthropic(base_url=setup.base_url, api_key=setup.api_key,
                                               **options)
        if setup.catalog is not None:
            functions = setup.catalog.functions()
            schemas = setup.catalog.schemas()
        else:
            functions, schemas = list(SHOP_FUNCTIONS), SHOP_SCHEMAS
        if setup.cache:
            from async_lru import alru_cache

            functions = [alru_cache(maxsize=10_000, ttl=300)(fn) for fn in functions]
        if setup.search:
            schemas = [TOOL_SEARCH, *({**s, "defer_loading": True} for s in schemas)]
        self.schemas: list[Any] = schemas
        self.functions: dict[str, Callable[..., Awaitable[Any]]] = {
            fn.__name__: fn for fn in functions}
        self.stream = setup.variant == "stream"

    async def _request(self, messages: list[Any]) -> Any:
        params: dict[str, Any] = {"model": MODEL, "max_tokens": MAX_TOKENS, "system": SYSTEM,
                                  "tools": self.schemas, "messages": messages}
        if not self.stream:
            return await self.client.messages.create(**params)
        async with self.client.messages.stream(**params) as stream:
            return await stream.get_final_message()

    async def _call(self, block: Any) -> dict[str, Any]:
        try:
            result = await self.functions[block.name](**block.input)
        except Exception as exc:
            return {"type": "tool_result", "tool_use_id": block.id, "content": repr(exc),
                    "is_error": True}
        return {"type": "tool_result", "tool_use_id": block.id, "content": json.dumps(result)}

    async def run(self, task: str) -> Outcome:
        messages: list[Any] = [{"role": "user", "content": task}]
        turns = 0
        while True:
            reply = await self._request(messages)
            turns += 1
            messages.append({"role": "assistant", "content": reply.content})
            calls = [b for b in reply.content if b.type == "tool_use"]
            if reply.stop_reason != "tool_use" or not calls:
                text = "".join(b.text for b in reply.content if b.type == "text")
                return Outcome(turns, text, messages)
            if len(calls) == 1:
                results = [await self._call(calls[0])]
            else:
                results = list(await asyncio.gather(*(self._call(b) for b in calls)))
            messages.append({"role": "user", "content": results})

    async def aclose(self) -> None:
        await self.client.close()


async def build(setup: Setup) -> HandWritten:
    return HandWritten(setup)
