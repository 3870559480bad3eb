"""A counting upstream and a small harness to drive the pipeline without the loop."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import anyio

from agentrt import RunContext, Tool, ToolError, function, load_settings
from agentrt.pipeline import (
    DEFAULT_STAGES,
    CallContext,
    Execute,
    PipelineResources,
    ResponseProcessor,
    StatsRecorder,
    TurnOutcomes,
    build_pipeline,
)

if TYPE_CHECKING:
    from agentrt.tools import ToolRegistry

_ids = itertools.count()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Upstream(Tool):
    name = "upstream"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.gate: anyio.Event | None = None
        self.entered = anyio.Event()
        self.returning = anyio.Event()
        self.fail_next = False
        self.fail_on: set[str] = set()  # what of _hit fails every time
        self.cancelled = 0
        self.last_product: dict[str, Any] = {}

    async def _hit(self, what: str, arg: Any) -> None:
        self.calls.append((what, arg))
        self.entered.set()
        if self.gate is not None:
            try:
                await self.gate.wait()
            except anyio.get_cancelled_exc_class():
                self.cancelled += 1
                raise
        self.returning.set()
        if self.fail_next or what in self.fail_on:
            raise RuntimeError(f"upstream down for {arg}")

    def count(self, what: str) -> int:
        return sum(1 for w, _ in self.calls if w == what)

    @function(read_only=True, ttl=60)
    async def get_weather(self, city: str, unit: str = "C") -> dict[str, Any]:
        """Weather for a city."""
        await self._hit("weather", city)
        return {"city": city, "temp": 15, "unit": unit}

    @function(read_only=True, ttl=60)
    async def get_quote(self, symbol: str) -> dict[str, Any]:
        """A stock quote."""
        await self._hit("quote", symbol)
        return {"symbol": symbol, "price": 190.5}

    @function(read_only=True, ttl=60, cache_tags=("products",), batch="get_products")
    async def get_product(self, product_id: int) -> dict[str, Any]:
        """One product."""
        await self._hit("product", product_id)
        self.last_product = {"id": product_id, "price": 10}
        return self.last_product

    async def get_products(self, product_ids: list[int]) -> dict[int, dict[str, Any]]:
        await self._hit("products", list(product_ids))
        return {pid: {"id": pid, "price": 10} for pid in product_ids if pid != 404}

    @function(invalidates=("products",))
    async def set_price(self, product_id: int, price: float) -> str:
        """Writes: never cached, invalidates products."""
        await self._hit("set_price", (product_id, price))
        return "ok"

    @function(read_only=True, ttl=60, error_ttl=30)
    async def lookup(self, name: str) -> str:
        """Deterministic not-found errors may be cached."""
        await self._hit("lookup", name)
        raise ToolError(f"no such name {name!r}")

    @function(read_only=True, scope="thread")
    async def thread_note(self, ctx: RunContext) -> str:
        """Thread-scoped."""
        await self._hit("note", ctx.thread_id)
        return ctx.thread_id

    @function(read_only=True, public=True)
    async def get_fx(self, pair: str) -> float:
        """Public: the same for every tenant."""
        await self._hit("fx", pair)
        return 1.1


def resources(clock: FakeClock | None = None, *, redis: Any = None,
              **settings: Any) -> PipelineResources:
    kwargs: dict[str, Any] = {"thread_store": "memory", **settings}
    if clock is None:
        return PipelineResources.from_settings(load_settings(**kwargs), redis=redis)
    return PipelineResources.from_settings(load_settings(**kwargs), clock=clock, redis=redis)


def processor(res: PipelineResources, stages: Any = DEFAULT_STAGES, *,
              parallel: bool = True, **overrides: Any) -> ResponseProcessor:
    pipeline = build_pipeline(list(stages), res, Execute(timeout=5, max_result_chars=10_000))
    return ResponseProcessor(pipeline, parallel=parallel, overrides=overrides)


def context(thread_id: str = "thr_1", **identity: str) -> CallContext:
    run = RunContext(thread_id=thread_id, run_id=f"run_{next(_ids)}", agent="test",
                     identity=identity or {"account": "acme"})
    return CallContext(run, StatsRecorder())


def use(name: str, /, **kwargs: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{next(_ids)}", "name": name, "input": kwargs}


async def turn(proc: ResponseProcessor, tools: ToolRegistry, ctx: CallContext,
               *blocks: dict[str, Any]) -> list[dict[str, Any]]:
    outcomes = TurnOutcomes(blocks)
    await proc.process(outcomes, ctx, tools)
    sources = [o.source if o else None for o in outcomes.outcomes]
    results = outcomes.result_blocks(missing=None)  # type: ignore[arg-type]
    for result, source in zip(results, sources, strict=True):
        result["source"] = source
    return results
