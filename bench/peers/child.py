"""One contender, one measurement, in a fresh interpreter (so its CPU time, its memory and its
imports are its own). ``compare.py`` starts it; it prints one ``RESULT {json}`` line.

    python bench/peers/child.py MODE --contender MODULE --base-url URL [options]

Modes: ``turns`` (workloads 1 and 3: CPU and wall time, throughput, peak RSS),
``duplicates`` (workload 2: upstream calls), ``idle`` (memory kept per finished
conversation, by tracemalloc), ``startup`` (workload 4: time to the first request and its size).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import resource
import sys
import time
import traceback
import tracemalloc
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workload
from workload import FINAL_TEXT, UPSTREAM, Outcome, Setup, task

if TYPE_CHECKING:
    from types import ModuleType

    import anthropic
    from workload import Runner


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _control(client: anthropic.AsyncAnthropic, kind: str, run: int = 0) -> Any:
    reply = await client.messages.create(model=workload.MODEL, max_tokens=16,
                                         messages=[{"role": "user", "content": task(kind, run)}])
    return json.loads("".join(b.text for b in reply.content if b.type == "text"))


async def _many(runner: Runner, tasks: list[str], concurrency: int) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(tasks)
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(tasks):
            index, position = position, position + 1
            outcomes[index] = await runner.run(tasks[index])

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(tasks)))))
    return [o for o in outcomes if o is not None]


def _check(outcomes: list[Outcome], turns: int | None) -> str | None:
    wrong = [o for o in outcomes if o.text != FINAL_TEXT or (turns and o.turns != turns)]
    if not wrong:
        return None
    return (f"{len(wrong)} of {len(outcomes)} runs did not finish as scripted "
            f"(e.g. {wrong[0].turns} turns, text {wrong[0].text[:80]!r})")


async def turns(module: ModuleType, setup: Setup, args: argparse.Namespace,
                client: anthropic.AsyncAnthropic) -> dict[str, Any]:
    runner = await module.build(setup)
    params = {"turns": args.turns, "calls": args.calls, "latency": args.latency}
    warm = [task(args.workload, 900_000 + i, **params) for i in range(args.warmup)]
    await _many(runner, warm, max(1, min(args.concurrency, args.warmup)))
    tasks = [task(args.workload, i, **params) for i in range(args.runs)]
    UPSTREAM.calls = 0
    gc.collect()
    rss_before = _rss_kb()
    server_cpu = (await _control(client, "cpu"))["cpu"]
    cpu, wall = time.process_time(), time.perf_counter()
    outcomes = await _many(runner, tasks, args.concurrency)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server_cpu = (await _control(client, "cpu"))["cpu"] - server_cpu
    await runner.aclose()
    return {"cpu": cpu, "wall": wall, "turns": sum(o.turns for o in outcomes),
            "tool_calls": UPSTREAM.calls, "server_cpu": server_cpu, "rss_before_kb": rss_before,
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "error": _check(outcomes, args.turns + 1)}


async def duplicates(module: ModuleType, setup: Setup, args: argparse.Namespace,
                     client: anthropic.AsyncAnthropic) -> dict[str, Any]:
    runner = await module.build(setup)
    await runner.run(task("w1", 900_000, turns=1, calls=2))  # warm-up: imports, connections
    UPSTREAM.calls, UPSTREAM.keys, UPSTREAM.latency = 0, set(), args.upstream_latency
    tasks = [task("w2", i, runs=args.runs, seed=args.seed) for i in range(args.runs)]
    cpu, wall = time.process_time(), time.perf_counter()
    outcomes = await _many(runner, tasks, args.concurrency)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await runner.aclose()
    return {"cpu": cpu, "wall": wall, "turns": sum(o.turns for o in outcomes),
            "upstream_calls": UPSTREAM.calls, "distinct_keys": len(UPSTREAM.keys),
            "error": _check(outcomes, None)}


async def idle(module: ModuleType, setup: Setup, args: argparse.Namespace,
               client: anthropic.AsyncAnthropic) -> dict[str, Any]:
    runner = await module.build(setup)
    params = {"turns": args.turns, "calls": args.calls}
    await _many(runner, [task("w1", 900_000 + i, **params) for i in range(3)], 1)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = await _many(runner, [task("w1", i, **params) for i in range(args.runs)], 1)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    await runner.aclose()
    return {"bytes_per_conversation": retained / len(kept), "conversations": len(kept),
            "error": _check(kept, args.turns + 1)}


async def startup(module: ModuleType, setup: Setup, args: argparse.Namespace,
                  client: anthropic.AsyncAnthropic) -> dict[str, Any]:
    from catalog import Catalog

    catalog = Catalog(args.catalog_root, args.tools)
    sys.path.insert(0, catalog.root)  # where an application's tool packages are installed
    await _control(client, "cpu")  # the SDK's own first-request work, outside the timing
    started = time.monotonic()
    runner = await module.build(Setup(**{**setup.__dict__, "catalog": catalog}))
    outcome = await runner.run(task("w4", args.run_id, tools=args.tools))
    finished = time.monotonic()
    await runner.aclose()
    first = await _control(client, "stats", args.run_id)
    body = first["body"]
    shown = [t for t in body.get("tools", []) if not t.get("defer_loading")]
    counted = {}
    for label, tools in (("tokens", body.get("tools", [])), ("context_tokens", shown)):
        kwargs: dict[str, Any] = {"tools": tools} if tools else {}
        if body.get("system"):
            kwargs["system"] = body["system"]
        reply = await client.messages.count_tokens(model=body["model"],
                                                   messages=body["messages"], **kwargs)
        counted[label] = reply.input_tokens
    return {"first_request_ms": (first["received_at"] - started) * 1000,
            "run_ms": (finished - started) * 1000, "tools_sent": len(body.get("tools", [])),
            "tools_shown": len(shown), "turns": first["requests"],
            "run_tokens": first["run_tokens"],
            "chars": len(json.dumps({"tools": body.get("tools"), "system": body.get("system")})),
            **counted, "error": _check([outcome], None)}


MODES = {"turns": turns, "duplicates": duplicates, "idle": idle, "startup": startup}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    import anthropic

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module(args.contender)
    imported = time.perf_counter() - started
    setup = Setup(args.base_url, cache=args.cache, variant=args.variant, search=args.search)
    async with anthropic.AsyncAnthropic(base_url=args.base_url, api_key="bench-key") as client:
        result = await MODES[args.mode](module, setup, args, client)
    return {"import_ms": imported * 1000, **result}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--contender", required=True, help="module name in bench/peers")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--variant", default="")
    parser.add_argument("--cache", action="store_true")
    parser.add_argument("--search", action="store_true")
    parser.add_argument("--workload", default="w1")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.0, help="model latency, s")
    parser.add_argument("--upstream-latency", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--catalog-root")
    parser.add_argument("--tools", type=int, default=100)
    parser.add_argument("--run-id", type=int, default=0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    try:
        outcome = asyncio.run(main(arguments))
    except Exception as exc:
        traceback.print_exc()
        outcome = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    print("RESULT " + json.dumps(outcome))
