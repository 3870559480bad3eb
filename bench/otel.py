"""What OpenTelemetry costs a turn: tracing off, on, and the code from before it existed.

Per-turn CPU of runs of the shop conversation (4 model turns, 6 tool calls of which 4
are answered by the pipeline), the tools instant, with two models:

- ``http``: the real SDK over HTTP to ``agentrt.testing``'s fake Messages API server in
  another process (its CPU is not counted): what a turn costs in production, less the
  network;
- ``scripted``: ``agentrt.testing.ScriptedModel`` in process, no HTTP: the loop and
  pipeline alone, the harshest denominator for a ratio.

Five contenders live in one process and take turns run by run, so that whatever else
the machine does falls on all of them alike (on a busy 2-core box, separate processes
differ by more than the 1% to be measured):

- ``baseline``: the code before issue 18 (``git archive`` of ``--base``, imported as
  the package ``agentrt_before``);
- ``off``: this code, no tracer or meter provider (the default);
- ``off-again``: the same as ``off``, a control: how far two identical contenders
  differ on this machine is the precision of every ratio in the table;
- ``traces``: the OpenTelemetry SDK, a batch span processor, an exporter that drops
  everything (so only agentrt's and the SDK's own work is measured);
- ``traces+metrics``: the same and a meter provider (an in-memory reader).

CPU is ``time.thread_time`` around each run (the batch processor's export thread is
left out: with this exporter it does nothing); each run's thread is deleted after it,
untimed, so the heap (and the cost of a GC pass) stays the same from run to run. Each
process reports CPU per turn per contender; the table gives the median over
``--repeat`` processes and the mean of the per-process ratios (each contender is built
in each place equally often, and each process takes its own random order). Targets
(issue 18): ``off`` at most 1.01x ``baseline``, ``traces`` at most 1.10x ``off``.

    python bench/otel.py [--runs 300] [--repeat 10] [--base c2b953a] [--models http,scripted]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The last commit before issue 18 (OpenTelemetry) on the otel branch.
BEFORE = "c2b953a"
MODES = ("baseline", "off", "off-again", "traces", "traces+metrics")
RUN_TURNS = 4

REPLIES: list[dict[str, Any]] = [
    {"text": "Let me look up the product and the user.",
     "tool_calls": [{"name": "get_product", "input": {"product_id": 42}},
                    {"name": "get_user", "input": {"user_id": "u-7"}}]},
    {"text": "Let me double-check.",
     "tool_calls": [{"name": "get_product", "input": {"product_id": 42}},
                    {"name": "get_product", "input": {"product_id": "42"}}]},
    {"text": "And once more.",
     "tool_calls": [{"name": "get_product", "input": {"product_id": 42}},
                    {"name": "get_user", "input": {"user_id": "u-7"}}]},
    {"text": "Product 42 is in stock."},
]


def _providers(mode: str) -> dict[str, Any]:
    if mode not in ("traces", "traces+metrics"):
        return {}
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropped()))
    found: dict[str, Any] = {"tracer_provider": tracer_provider}
    if mode == "traces+metrics":
        found["meter_provider"] = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return found


def warmup(runs: int) -> int:
    return max(20, runs // 10)


def _contender(package: str, mode: str, url: str | None) -> tuple[Any, Any]:
    """(runtime, agent) of ``package`` (agentrt, or agentrt_before) for ``mode``."""
    agentrt = importlib.import_module(package)
    testing = importlib.import_module(f"{package}.testing")

    class ShopAPI(agentrt.Tool):  # type: ignore[name-defined,misc]
        name = "shop_api"

        @agentrt.function(read_only=True, ttl=300, public=True)
        async def get_product(self, product_id: int) -> dict[str, object]:
            """A product."""
            return {"id": product_id, "price": 199.0, "stock": 3}

        @agentrt.function(read_only=True, ttl=300)
        async def get_user(self, user_id: str) -> dict[str, object]:
            """A user."""
            return {"id": user_id, "discount": 0.1}

    class ShopAgent(agentrt.Agent):  # type: ignore[name-defined,misc]
        system = "You are a shop assistant."
        tools = (ShopAPI,)

    async def answer(request: Any) -> Any:
        n = sum(1 for m in request.body.get("messages", []) if m.get("role") == "assistant")
        return await testing.Script.from_json({"replies": [REPLIES[n]]}).next_step(request)

    options: dict[str, Any] = {"thread_store": "memory", "stream": False}
    model: dict[str, Any] = {}
    if url is None:
        model["model"] = testing.ScriptedModel(testing.Script(answer))
    else:
        options.update(anthropic_base_url=url, anthropic_api_key="bench")
    extra = _providers(mode) if package == "agentrt" else {}
    runtime = agentrt.Runtime(agentrt.load_settings(**options), **model, **extra)
    return runtime, ShopAgent(runtime, identity={"account": "a"})


def worker(runs: int, url: str | None, modes: list[str], slot: int = 0) -> dict[str, Any]:
    """Every contender runs the conversation in turn, ``runs`` times each (after a
    warm-up); thread CPU per turn of each. ``slot``: the contenders are built in the
    order of ``modes`` rotated by it (the last one built runs a few % slower: measured
    with identical contenders), so that over processes each takes each place."""
    import anyio

    async def main() -> dict[str, float]:
        spare = _contender("agentrt", "off", url)  # never timed: the first built
        built = modes[slot % len(modes):] + modes[:slot % len(modes)]
        contenders = {m: _contender("agentrt_before" if m == "baseline" else "agentrt", m,
                                    url) for m in built}
        rng = random.Random(slot)  # another order in each process
        spent = dict.fromkeys(modes, 0.0)
        turns = dict.fromkeys(modes, 0)
        for round_ in range(warmup(runs) + runs):
            timed = round_ >= warmup(runs)
            if round_ == warmup(runs):  # what the warm-up made is no longer the GC's work
                gc.collect()
                gc.freeze()
            order = list(modes)
            rng.shuffle(order)  # no contender always follows the same one
            for mode in order:
                runtime, agent = contenders[mode]
                started = time.thread_time()
                result = await agent.run("stock?")
                if timed:
                    spent[mode] += time.thread_time() - started
                    turns[mode] += result.iterations
                # untimed: the heap stays the same size (so GC passes cost alike)
                await runtime.store.delete_thread(result.thread_id)
        for runtime, _ in [spare, *contenders.values()]:
            await runtime.aclose()
        return {m: spent[m] / turns[m] * 1e6 for m in modes}

    return {"cpu_per_turn_us": anyio.run(main)}


def _baseline_tree(base: str, into: Path) -> Path | None:
    """The package as it was at ``base``, as ``agentrt_before`` under ``into`` (None
    without git)."""
    into.mkdir()
    try:
        archive = subprocess.run(["git", "archive", base, "agentrt"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    package = into / "agentrt"
    for path in package.rglob("*.py"):  # its few absolute imports of itself
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\b(from|import) agentrt\b", r"\1 agentrt_before", text),
                        encoding="utf-8")
    package.rename(into / "agentrt_before")
    return into


def _spawn(runs: int, modes: list[str], slot: int, baseline: Path | None,
           replay: Path | None) -> dict[str, float]:
    """One worker process; with ``replay``, beside a fake server process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTRT_", "ANTHROPIC_"))}
    if baseline is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(baseline), env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--worker", ",".join(modes), "--runs", str(runs),
               "--slot", str(slot)]
    server = None
    try:
        if replay is not None:
            server = subprocess.Popen([sys.executable, "-m", "agentrt.testing", "--replay",
                                       str(replay)], cwd=ROOT, stdout=subprocess.PIPE,
                                      text=True)
            assert server.stdout is not None
            command += ["--url", server.stdout.readline().strip().partition("=")[2]]
        out = subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True,
                             text=True).stdout
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
    return dict(json.loads(out)["cpu_per_turn_us"])


def ten_million_loop() -> float:
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="runs per contender and process")
    parser.add_argument("--repeat", type=int, default=10,
                        help="processes (a multiple of 5: each contender built in each place)")
    parser.add_argument("--base", default=BEFORE, help="git revision of the baseline")
    parser.add_argument("--models", default="http,scripted", help="http, scripted or both")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.runs, args.url, args.worker.split(","), args.slot)
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    loop = ten_million_loop()
    print(f"Per-turn CPU: {args.repeat} processes, each running the contenders in turn, "
          f"{args.runs} runs each (4 turns, 6 tool calls a run); a 10M-iteration loop took "
          f"{loop:.2f} s at the start")
    with tempfile.TemporaryDirectory(prefix="agentrt-baseline-") as tmp:
        baseline = _baseline_tree(args.base, Path(tmp) / "tree")
        modes = [m for m in MODES if m != "baseline" or baseline is not None]
        replay = Path(tmp) / "replay.json"
        total = (args.runs + warmup(args.runs)) * len(modes)
        replay.write_text(json.dumps({"replies": REPLIES * total}), encoding="utf-8")
        for model in args.models.split(","):
            found = [_spawn(args.runs, modes, slot, baseline,
                            replay if model == "http" else None)
                     for slot in range(args.repeat)]
            _table(model, modes, found)
    if baseline is None:
        print(f"\n(no baseline: `git archive {args.base}` failed; run from a git checkout)")
    return 0


def _table(model: str, modes: list[str], found: list[dict[str, float]]) -> None:
    print(f"\nModel: {model}\n")
    print("| contender | µs per turn (median) | min - max | vs off (mean, range) | "
          "vs baseline (mean, range) |")
    print("|-----------|---------------------:|-----------|----------------------|"
          "---------------------------|")

    def ratio(mode: str, to: str) -> str:
        if to not in modes:
            return "n/a"
        found_ratios = [f[mode] / f[to] for f in found]
        return (f"{statistics.mean(found_ratios):.3f}x ({min(found_ratios):.3f} - "
                f"{max(found_ratios):.3f})")

    for mode in modes:
        values = [f[mode] for f in found]
        print(f"| {mode} | {statistics.median(values):.1f} | {min(values):.1f} - "
              f"{max(values):.1f} | {ratio(mode, 'off')} | {ratio(mode, 'baseline')} |",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
