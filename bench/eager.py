"""Eager execution: the tool latency hidden behind the stream, eager_tools on vs off.

Every case runs on agentrt.testing's fake Messages API over real HTTP (the real SDK),
its reply paced at ``--rate`` tokens per second: a short text, ``k`` read-only calls
of a tool with ``L`` ms of latency, about 800 ms more of text, then one more read
(a quick one: its latency cannot hide, the message ends right after it). Turn
latency is measured from the first request's arrival at the server (it answers at
once) to the next request's arrival: the stream, the tools, storing, building the
next request. Each case runs with eager_tools off and on, alternating, in this one
process; medians of ``--repeat`` runs.

- ``stream``: the same reply with tools of 0 ms, eager off: what the turn costs
  without tool latency; the best eager can do is stream + what could not start
  early (the quick read; for the write-before-read case the write and the read,
  which wait for the end of the message).
- ``recovered``: (off - on) / (off - stream - what could not start early): the
  share of the achievable overlap eager recovered (target >= 90%).
- ``on / (stream + late)``: target <= 1.1.

Then CPU per turn for a reply with no tool calls (process time of the whole
process, fake server included, over ``--cpu-turns`` turns each way).

    python bench/eager.py [--repeat 3] [--rate 50] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from typing import Any

import anyio

from agentrt import Agent, MemoryThreadStore, Runtime, Tool, function, load_settings
from agentrt.testing import FakeAnthropicServer, RecordedRequest, Reply

TEXT_MS = 800  # the text streamed after the early calls


class Upstream(Tool):
    """Reads with a set latency, a quick read, and a write with the same latency."""

    latency = 0.0

    @function(read_only=True)
    async def lookup(self, q: str) -> dict[str, Any]:
        """Looks a thing up (slow)."""
        await anyio.sleep(self.latency)
        return {"q": q}

    @function(read_only=True)
    async def quick(self, q: str) -> dict[str, Any]:
        """Looks a thing up (fast)."""
        return {"q": q}

    @function
    async def save(self, q: str) -> str:
        """Saves a thing (slow; a side effect)."""
        await anyio.sleep(self.latency)
        return "saved"


def _use(name: str, run: int, index: int) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{run}_{index}", "name": name,
            "input": {"q": f"run-{run}-item-{index}"}}


def reply(case: str, k: int, rate: float, run: int) -> Reply:
    """The scripted reply of ``case`` (``reads``, ``write_then_read`` or ``text``)."""
    filler = {"type": "text", "text": "x" * int(TEXT_MS / 1000 * rate * 4)}
    if case == "text":
        return Reply(content=[{"type": "text", "text": "Answer: " + "y" * 800}],
                     tokens_per_second=rate * 100)
    head: list[dict[str, Any]] = [{"type": "text", "text": "Let me look."}]
    if case == "write_then_read":
        calls = [_use("save", run, 0), _use("lookup", run, 1)]
    else:
        calls = [_use("lookup", run, i) for i in range(k)]
    return Reply(content=[*head, *calls, filler, _use("quick", run, 99)],
                 tokens_per_second=rate)


async def turn_seconds(case: str, k: int, latency: float, eager: bool, rate: float,
                       run: int) -> float:
    """One run of two turns; the first turn's latency (request to next request)."""
    steps = [reply(case, k, rate, run), Reply(text="done")]
    tool = Upstream()
    tool.latency = latency
    agent_class = type("Bench", (Agent,), {"tools": (tool,)})
    settings = load_settings(thread_store="memory", eager_tools=eager, log_level="warning")
    async with FakeAnthropicServer(steps) as server, server.client() as client, \
            Runtime(settings, client=client, store=MemoryThreadStore()) as rt:
        await agent_class(rt).run("go")
    first, second = server.requests[0], server.requests[1]
    return _gap(first, second)


def _gap(first: RecordedRequest, second: RecordedRequest) -> float:
    return second.received_at - first.received_at


async def cpu_per_turn(eager: bool, turns: int, rate: float) -> float:
    """Process seconds per turn of a text-only reply (no tool calls), fake server included."""
    steps = [reply("text", 0, rate, i) for i in range(turns)]
    settings = load_settings(thread_store="memory", eager_tools=eager, log_level="warning")
    agent_class = type("Bench", (Agent,), {"tools": (Upstream(),)})
    async with FakeAnthropicServer(steps) as server, server.client() as client, \
            Runtime(settings, client=client, store=MemoryThreadStore()) as rt:
        agent = agent_class(rt)
        started = time.process_time()
        for _ in range(turns):
            await agent.run("go")
        return (time.process_time() - started) / turns


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)
    latencies = [0.05, 0.2, 0.8]
    counts = [1, 4] if args.quick else [1, 2, 3, 4]
    cases = [("reads", k, latency) for latency in latencies for k in counts]
    cases += [("write_then_read", 1, 0.2)]
    run = 0
    await turn_seconds("reads", 1, 0.0, True, args.rate, 0)  # warm-up: imports, first connect
    print(f"rate {args.rate:g} tokens/s, {TEXT_MS} ms of text after the early calls, "
          f"median of {args.repeat}")
    print("| case | calls | tool ms | stream ms | off ms | on ms | saving | recovered "
          "| on / (stream + late) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case, k, latency in cases:
        streams, offs, ons = [], [], []
        for _ in range(args.repeat):
            run += 1
            streams.append(await turn_seconds(case, k, 0.0, False, args.rate, run))
            offs.append(await turn_seconds(case, k, latency, False, args.rate, run))
            ons.append(await turn_seconds(case, k, latency, True, args.rate, run))
        stream, off, on = (statistics.median(x) for x in (streams, offs, ons))
        late = 2 * latency if case == "write_then_read" else 0.0  # cannot start early
        achievable = off - stream - late
        recovered = (f"{(off - on) / achievable:.0%}" if case == "reads" else
                     "n/a (no overlap allowed)")
        calls = f"{k} read + quick" if case == "reads" else "write, read + quick"
        print(f"| {case} | {calls} | {latency * 1000:.0f} | {stream * 1000:.0f} "
              f"| {off * 1000:.0f} | {on * 1000:.0f} | {(off - on) / off:.1%} "
              f"| {recovered} | {on / (stream + late):.3f} |")
    cpu_off, cpu_on = [], []
    for _ in range(args.repeat):
        cpu_off.append(await cpu_per_turn(False, args.cpu_turns, args.rate))
        cpu_on.append(await cpu_per_turn(True, args.cpu_turns, args.rate))
    off_ms, on_ms = statistics.median(cpu_off) * 1000, statistics.median(cpu_on) * 1000
    print()
    print("| CPU per turn, text-only reply (~200 tokens) | ms | vs off |")
    print("|---|---|---|")
    print(f"| eager_tools off | {off_ms:.2f} | 1.000 |")
    print(f"| eager_tools on | {on_ms:.2f} | {on_ms / off_ms:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    parser.add_argument("--cpu-turns", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="fewer cases")
    anyio.run(main, parser.parse_args())
