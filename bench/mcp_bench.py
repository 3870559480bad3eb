"""MCP tools through agentrt: per-call overhead, upstream calls saved, start-up cost.

(Not ``bench/mcp.py``: run as a script, that name would shadow the ``mcp`` package.)

(a) Overhead per call against a bare ``mcp`` ``ClientSession.call_tool`` to the same
    stdio server (``mcp-server-git``, ``git_log``), samples interleaved in one run: an
    agentrt miss (a new key each time, through every stage, the server's reply mapped to
    blocks) at most 1.15x the bare call; a hit (the local cache) at least 50x faster.
(b) The git scenario (reads repeated in a reply and across turns, a git_add and a
    git_commit between them), 20 conversations, pipeline on and off: with it on, the
    upstream MCP calls are the writes plus the distinct read keys per invalidation.
(c) Start-up of an agent with 10 configured servers, none used: no child process is
    started, ``mcp`` is not imported, and start-up is within 1.2x of the same agent with
    no servers (the ratio of medians), for the first agent of a fresh process, the first
    of a fresh Runtime in a process that built agents before, and the next agent on
    that Runtime.

    python bench/mcp_bench.py [--samples 200] [--conversations 20] [--processes 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from agentrt import Agent, RunContext, Runtime, load_settings
from agentrt.jit.manifest import render_manifest
from agentrt.log import configure_logging
from agentrt.mcp import StdioServer
from agentrt.mcp._catalog import tool_class
from agentrt.mcp._describe import describe_servers
from agentrt.mcp._session import MCPServers
from agentrt.pipeline import (
    CallContext,
    Execute,
    PipelineResources,
    ResponseProcessor,
    StatsRecorder,
    TurnOutcomes,
    build_pipeline,
    configured_stages,
)
from agentrt.testing import Reply, ScriptedModel, ToolUse
from agentrt.tools import ToolRegistry

GIT = StdioServer(command=shutil.which("mcp-server-git") or str(
    Path(sys.executable).with_name("mcp-server-git")))


def make_repo(path: Path) -> str:
    path.mkdir(parents=True)
    for args in (["init", "-q"], ["config", "user.email", "b@example.com"],
                 ["config", "user.name", "Bench"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    (path / "a.txt").write_text("a\n")
    subprocess.run(["git", "add", "a.txt"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=path, check=True)
    (path / "b.txt").write_text("b\n")
    return str(path)


def _ctx(thread: str) -> CallContext:
    return CallContext(RunContext(thread_id=thread, run_id=thread, agent="bench",
                                  identity={"account": "acme"}),
                       StatsRecorder())


async def overhead(entry: dict[str, Any], repo: str, samples: int) -> tuple[float, ...]:
    """Median ms: bare call, agentrt miss, agentrt hit."""
    servers = MCPServers()
    tool = tool_class("git", GIT, entry)()
    tool.servers = servers  # what the runtime's JIT loader constructs it with
    settings = load_settings(thread_store="memory")
    handler = build_pipeline(configured_stages(settings),
                             PipelineResources.from_settings(settings),
                             Execute(timeout=30, max_result_chars=100_000))
    processor, tools = ResponseProcessor(handler), ToolRegistry([tool])
    bare, miss, hit = [], [], []

    def block(n: int) -> list[dict[str, Any]]:
        return [{"type": "tool_use", "id": f"t{n}", "name": "git_log",
                 "input": {"repo_path": repo, "max_count": n}}]

    try:
        await processor.process(TurnOutcomes(block(1)), _ctx("warm"), tools)  # start it
        # the bare call on the very session (and server process) agentrt calls through
        session = servers.connection("git", GIT, {}).session
        if True:
            for i in range(2, samples + 2):
                started = time.perf_counter()
                await session.call_tool("git_log", {"repo_path": repo, "max_count": i})
                bare.append(time.perf_counter() - started)
                turn = TurnOutcomes(block(i))
                started = time.perf_counter()
                await processor.process(turn, _ctx(f"miss{i}"), tools)
                miss.append(time.perf_counter() - started)
                assert turn.outcomes[0] is not None and not turn.outcomes[0].is_error
                turn = TurnOutcomes(block(i))
                started = time.perf_counter()
                await processor.process(turn, _ctx(f"hit{i}"), tools)  # a new thread: no memo
                hit.append(time.perf_counter() - started)
                assert turn.outcomes[0] is not None and turn.outcomes[0].source == "local_cache"
    finally:
        await servers.aclose()
    return tuple(statistics.median(v) * 1000 for v in (bare, miss, hit))


def scenario(repo: str) -> tuple[list[Reply], int]:
    """The git conversation, and its upstream floor: writes + distinct reads per epoch."""
    def r(name: str, **extra: Any) -> tuple[str, dict[str, Any]]:
        return name, {"repo_path": repo, **extra}

    turns = [[r("git_status"), r("git_status"), r("git_log")],
             [r("git_diff_unstaged"), r("git_status")],
             [r("git_add", files=["b.txt"])],
             [r("git_commit", message="b")],
             [r("git_log"), r("git_status"), r("git_log")],
             [r("git_status")]]
    floor, seen = 0, set()
    for turn in turns:
        for name, args in turn:
            if name in ("git_add", "git_commit"):
                floor, seen = floor + 1, set()
            elif (key := json.dumps([name, args], sort_keys=True)) not in seen:
                seen.add(key)
                floor += 1
    steps = [Reply(tool_calls=[ToolUse(n, a) for n, a in turn]) for turn in turns]
    return [*steps, Reply(text="done")], floor


async def duplicate_heavy(manifest: Path, base: Path, conversations: int,
                          pipeline_on: bool) -> tuple[int, int, int]:
    """(tool calls, upstream calls, floor) over the conversations, each on its own repo."""
    class GitAgent(Agent):
        mcp_servers = {"git": GIT}
        tool_config = {"manifest": str(manifest), "tool_loading": "append"}
        pipeline = None if pipeline_on else []

    calls = upstream = floor = 0
    for n in range(conversations):
        steps, least = scenario(make_repo(base / f"{'on' if pipeline_on else 'off'}{n}"))
        async with Runtime(load_settings(thread_store="memory"),
                           model=ScriptedModel(steps)) as runtime:
            result = await GitAgent(runtime).run("commit b")
        calls += result.stats.tool_calls
        upstream += result.stats.executed
        floor += least
    return calls, upstream, floor


def children() -> int:
    me = str(os.getpid())
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            count += stat.rpartition(")")[2].split()[1] == me
    return count


# The first agent of a fresh process, timed inside it from before ``import agentrt`` to
# the agent built (what an application pays at start-up, the interpreter's own start
# left out: the same for both), then whether it imported ``mcp`` or started a child.
_PROCESS = """
import json, sys, time
started = time.perf_counter()
import anyio
from agentrt import Agent, Runtime, load_settings
from agentrt.testing import ScriptedModel
spec = json.loads(sys.argv[1])
attrs = {}
if spec["servers"]:
    from agentrt.mcp import StdioServer
    attrs["mcp_servers"] = {name: StdioServer(**s) for name, s in spec["servers"].items()}

async def main():
    async with Runtime(load_settings(thread_store="memory"), model=ScriptedModel([])) as rt:
        type("A", (Agent,), {"tool_config": {"manifest": spec["manifest"]}, **attrs})(rt)
        built = time.perf_counter()
    me = str(__import__("os").getpid())
    kids = sum(open(f"/proc/{p}/stat").read().rpartition(")")[2].split()[1] == me
               for p in __import__("os").listdir("/proc") if p.isdigit()
               and __import__("os").path.exists(f"/proc/{p}/stat"))
    print(json.dumps({"ms": (built - started) * 1000, "mcp": "mcp" in sys.modules,
                      "children": kids}))

anyio.run(main)
"""


def first_of_process(manifest: Path, servers: dict[str, StdioServer] | None) -> dict[str, Any]:
    spec = {"manifest": str(manifest), "servers": {
        name: server.model_dump(include={"command", "args", "prefix"})
        for name, server in (servers or {}).items()}}
    out = subprocess.run([sys.executable, "-c", _PROCESS, json.dumps(spec)],
                         capture_output=True, text=True, check=True).stdout
    found: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return found


async def startup(entry: dict[str, Any], base: Path, samples: int,
                  processes: int) -> dict[str, tuple[float, float]]:
    """Median ms to define and build an agent, 10 servers none used vs no servers (the
    same agent, manifest and config otherwise), samples interleaved: the first agent of
    a fresh process (``processes`` of each), the first agent of a fresh Runtime in a
    process that built agents before, and the next agent on that Runtime. Also the
    children started and whether ``mcp`` was imported (``mcp`` and ``children``)."""
    entries = []
    servers = {}
    for i in range(10):
        name = f"git{i}"
        servers[name] = GIT.model_copy(update={"prefix": f"r{i}_", "args": (f"-v{i}",)})
        entries.append({**entry, "name": name, "server": name,
                        "config": servers[name].digest(name)})
    manifest = base / "ten.manifest.json"
    manifest.write_text(render_manifest(entries))
    before = children()
    times: dict[tuple[str, bool], list[float]] = {}
    imported = started = 0
    for n in range(processes):
        for with_servers in (n % 2 == 0, n % 2 == 1):  # either goes first as often
            found = first_of_process(manifest, servers if with_servers else None)
            times.setdefault(("process", with_servers), []).append(found["ms"] / 1000)
            imported += found["mcp"]
            started += found["children"]
    for n in range(samples):
        for with_servers in (n % 2 == 0, n % 2 == 1):
            attrs = {"mcp_servers": servers} if with_servers else {}
            async with Runtime(load_settings(thread_store="memory"),
                               model=ScriptedModel([])) as runtime:
                for kind in ("runtime", "next"):
                    began = time.perf_counter()
                    cls = type("A", (Agent,), {"tool_config": {"manifest": str(manifest)},
                                               **attrs})
                    cls(runtime)
                    times.setdefault((kind, with_servers), []).append(
                        time.perf_counter() - began)
    result = {kind: (statistics.median(times[kind, False]) * 1000,
                     statistics.median(times[kind, True]) * 1000)
              for kind in ("process", "runtime", "next")}
    result.update({f"{kind}_min": (min(times[kind, False]) * 1000, min(times[kind, True]) * 1000)
                   for kind in ("process", "runtime", "next")})
    result["mcp"] = (imported, 0)
    result["children"] = (started + children() - before, 0)
    return result


async def main(samples: int, conversations: int, processes: int) -> None:
    configure_logging(level="error")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (entry,) = await describe_servers({"git": GIT})
        manifest = base / "tools.manifest.json"
        manifest.write_text(render_manifest([entry]))
        repo = make_repo(base / "overhead")
        bare, miss, hit = await overhead(entry, repo, samples)
        print(f"(a) per call, median of {samples}, git_log on mcp-server-git (stdio):")
        print("| path                          | ms      | vs bare | target        |")
        print("|-------------------------------|---------|---------|---------------|")
        print(f"| bare ClientSession.call_tool  | {bare:7.3f} | 1.000   |               |")
        print(f"| agentrt miss (every stage)    | {miss:7.3f} | {miss / bare:5.3f}   | <= 1.15x: "
              f"{'met' if miss / bare <= 1.15 else 'NOT met'} |")
        print(f"| agentrt hit (local cache)     | {hit:7.3f} | {hit / bare:5.3f}   | "
              f"{bare / hit:.0f}x faster, >= 50x: {'met' if bare / hit >= 50 else 'NOT met'} |")
        print(f"\n(b) the git scenario, {conversations} conversations:")
        print("| pipeline | tool calls | upstream MCP calls | floor (writes + reads/epoch) |")
        print("|----------|------------|--------------------|------------------------------|")
        for on in (False, True):
            calls, upstream, floor = await duplicate_heavy(manifest, base, conversations, on)
            print(f"| {'on ' if on else 'off'}      | {calls:10} | {upstream:18} | {floor:28} |")
        rows = await startup(entry, base, max(200, samples), processes)
        print("\n(c) start-up (define + build the agent), 10 servers configured, none used; "
              "median (and minimum), samples interleaved, either first as often:")
        print("| agent                                  | no servers ms | 10 servers ms | "
              "ratio | target <= 1.2x | ratio of minimums |")
        print("|----------------------------------------|---------------|---------------|"
              "-------|----------------|-------------------|")
        labels = {"process": f"first of a fresh process (n={processes})",
                  "runtime": "first of a fresh Runtime (in-process)",
                  "next": "next agent on the same Runtime"}
        for kind, label in labels.items():
            plain, with_servers = rows[kind]
            ratio = with_servers / plain
            least = rows[f"{kind}_min"][1] / rows[f"{kind}_min"][0]
            print(f"| {label:38} | {plain:13.2f} | {with_servers:13.2f} | {ratio:5.2f} | "
                  f"{'met' if ratio <= 1.2 else 'NOT met':14} | {least:17.2f} |")
        print(f"child processes started: {rows['children'][0]} (target 0); processes that "
              f"imported mcp: {rows['mcp'][0]} of {processes} (target 0)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--processes", type=int, default=16)
    args = parser.parse_args()
    anyio.run(main, args.samples, args.conversations, args.processes)
