"""What OpenTelemetry costs a turn: tracing off, on, and the code from before it existed.

Per-turn CPU (``time.process_time``: every thread of the process, so the batch span
processor's export thread counts too) of runs of the shop conversation (4 model turns,
6 tool calls of which 4 are answered by the pipeline), the tools instant, with two models:

- ``http``: the real SDK over HTTP to ``agentrt.testing``'s fake Messages API server in
  another process (its CPU is not counted): what a turn costs in production, less the
  network;
- ``scripted``: ``agentrt.testing.ScriptedModel`` in process, no HTTP: the loop and
  pipeline alone, the harshest denominator for a ratio.

Each figure comes from a fresh interpreter; the modes take turns (baseline, off, on,
...) so that a change in the machine's load falls on all of them alike:

- ``baseline``: the code before issue 18 (``git archive`` of ``--base`` unpacked in a
  temporary directory, first on ``sys.path``);
- ``off``: this code, no tracer or meter provider (the default);
- ``traces``: the OpenTelemetry SDK, a batch span processor, an exporter that drops
  everything (so only agentrt's and the SDK's own work is measured);
- ``traces+metrics``: the same and a meter provider (an in-memory reader).

Targets (issue 18): ``off`` at most 1.01x ``baseline``, ``traces`` at most 1.10x ``off``.

    python bench/otel.py [--runs 300] [--repeat 5] [--base c2b953a] [--models http,scripted]
"""

from __future__ import annotations

import argparse
import json
import os
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
MODES = ("baseline", "off", "traces", "traces+metrics")

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


def worker(mode: str, runs: int, url: str | None = None) -> dict[str, Any]:
    """Runs the conversation ``runs`` times (after a warm-up); CPU seconds per turn.
    ``url``: the fake server's (the SDK over HTTP), else ScriptedModel."""
    import anyio

    import agentrt
    from agentrt import Agent, Runtime, Tool, function, load_settings
    from agentrt.testing import RecordedRequest, Reply, Script, ScriptedModel, Step

    class ShopAPI(Tool):
        name = "shop_api"

        @function(read_only=True, ttl=300, public=True)
        async def get_product(self, product_id: int) -> dict[str, object]:
            """A product."""
            return {"id": product_id, "price": 199.0, "stock": 3}

        @function(read_only=True, ttl=300)
        async def get_user(self, user_id: str) -> dict[str, object]:
            """A user."""
            return {"id": user_id, "discount": 0.1}

    class ShopAgent(Agent):
        system = "You are a shop assistant."
        tools = (ShopAPI,)

    async def answer(request: RecordedRequest) -> Step:
        n = sum(1 for m in request.body.get("messages", []) if m.get("role") == "assistant")
        step = await Script.from_json({"replies": [REPLIES[n]]}).next_step(request)
        assert step is not None and isinstance(step, Reply)
        return step

    async def main() -> tuple[float, int]:
        if url is None:
            settings = load_settings(thread_store="memory", stream=False)
            model: dict[str, Any] = {"model": ScriptedModel(Script(answer))}
        else:
            settings = load_settings(thread_store="memory", stream=False,
                                     anthropic_base_url=url, anthropic_api_key="bench")
            model = {}
        async with Runtime(settings, **model, **_providers(mode)) as runtime:
            agent = ShopAgent(runtime, identity={"account": "a"})
            for _ in range(warmup(runs)):  # warm-up: imports, caches, pydantic's schemas
                await agent.run("stock?")
            turns = 0
            started = time.process_time()
            for _ in range(runs):
                turns += (await agent.run("stock?")).iterations
            spent = time.process_time() - started
        return spent, turns

    spent, turns = anyio.run(main)
    return {"mode": mode, "cpu_per_turn_us": spent / turns * 1e6, "turns": turns,
            "agentrt": str(Path(agentrt.__file__).parent)}


def _baseline_tree(base: str, into: Path) -> Path | None:
    """The package as it was at ``base``, unpacked under ``into`` (None without git)."""
    into.mkdir()
    try:
        archive = subprocess.run(["git", "archive", base, "agentrt"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return into


def _spawn(mode: str, runs: int, baseline: Path | None, replay: Path | None) -> dict[str, Any]:
    """One worker process; with ``replay``, beside a fake server process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTRT_", "ANTHROPIC_"))}
    if mode == "baseline":
        assert baseline is not None
        env["PYTHONPATH"] = os.pathsep.join([str(baseline), env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--worker", mode, "--runs", str(runs)]
    server = None
    try:
        if replay is not None:
            server = subprocess.Popen([sys.executable, "-m", "agentrt.testing", "--replay",
                                       str(replay)], cwd=ROOT, stdout=subprocess.PIPE,
                                      text=True)
            assert server.stdout is not None
            ready = server.stdout.readline().strip()
            command += ["--url", ready.partition("=")[2]]
        out = subprocess.run(command, cwd=baseline if mode == "baseline" else ROOT, env=env,
                             check=True, capture_output=True, text=True).stdout
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
    return dict(json.loads(out))


def ten_million_loop() -> float:
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="runs per process")
    parser.add_argument("--repeat", type=int, default=5, help="processes per mode")
    parser.add_argument("--models", default="http,scripted", help="http, scripted or both")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--base", default=BEFORE, help="git revision of the baseline")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        sys.stdout.write(json.dumps(worker(args.worker, args.runs, args.url)) + "\n")
        return 0
    loop = ten_million_loop()
    print(f"Per-turn CPU, median of {args.repeat} processes x {args.runs} runs (4 turns, 6 "
          f"tool calls each); a 10M-iteration loop took {loop:.2f} s at the start")
    with tempfile.TemporaryDirectory(prefix="agentrt-baseline-") as tmp:
        baseline = _baseline_tree(args.base, Path(tmp) / "tree")
        replay = Path(tmp) / "replay.json"
        replay.write_text(json.dumps({"replies": REPLIES * (args.runs + warmup(args.runs))}),
                          encoding="utf-8")
        for model in args.models.split(","):
            _table(model, args, baseline, replay if model == "http" else None)
    if baseline is None:
        print(f"\n(no baseline: `git archive {args.base}` failed; run from a git checkout)")
    return 0


def _table(model: str, args: argparse.Namespace, baseline: Path | None,
           replay: Path | None) -> None:
    modes = [m for m in MODES if m != "baseline" or baseline is not None]
    found: dict[str, list[float]] = {m: [] for m in modes}
    for turn in range(args.repeat):
        order = modes[turn % len(modes):] + modes[:turn % len(modes)]
        for mode in order:
            result = _spawn(mode, args.runs, baseline, replay)
            expected = (baseline if mode == "baseline" and baseline else ROOT) / "agentrt"
            assert Path(result["agentrt"]) == expected.resolve(), result
            found[mode].append(result["cpu_per_turn_us"])
    median = {m: statistics.median(v) for m, v in found.items()}
    least = {m: min(v) for m, v in found.items()}

    def ratios(of: dict[str, float], mode: str) -> str:
        base = f"{of[mode] / of['baseline']:.3f}x" if "baseline" in of else "n/a"
        return f"{of[mode] / of['off']:.3f}x | {base}"

    # The minimum is the figure least disturbed by other work on the machine (CPU time
    # only grows with contention: caches, frequency); the median shows the spread.
    print(f"\nModel: {model}\n")
    print("| mode | µs/turn min | vs off | vs baseline | µs/turn median | vs off | "
          "vs baseline |")
    print("|------|------------:|-------:|------------:|---------------:|-------:|"
          "------------:|")
    for mode in modes:
        print(f"| {mode} | {least[mode]:.1f} | {ratios(least, mode)} | {median[mode]:.1f} | "
              f"{ratios(median, mode)} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
