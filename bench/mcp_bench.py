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
    started, and start-up is within 1.2x of the same agent with no servers.

    python bench/mcp_bench.py [--samples 200] [--conversations 20]
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
    cls = tool_class(servers, "git", GIT, entry)
    settings = load_settings(thread_store="memory")
    handler = build_pipeline(configured_stages(settings),
                             PipelineResources.from_settings(settings),
                             Execute(timeout=30, max_result_chars=100_000))
    processor, tools = ResponseProcessor(handler), ToolRegistry([cls()])
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


async def startup(entry: dict[str, Any], base: Path,
                  samples: int) -> tuple[float, float, float, float, int]:
    """Median ms to define and build an agent, 10 servers none used vs no servers: cold
    (the first agent of a Runtime) and warm (the next one on that Runtime)."""
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
    times: dict[tuple[bool, bool], list[float]] = {}
    for _ in range(samples):
        for with_servers in (True, False):
            attrs = {"mcp_servers": servers} if with_servers else {}
            async with Runtime(load_settings(thread_store="memory"),
                               model=ScriptedModel([])) as runtime:
                for warm in (False, True):
                    started = time.perf_counter()
                    cls = type("A", (Agent,), {"tool_config": {"manifest": str(manifest)},
                                               **attrs})
                    cls(runtime)
                    times.setdefault((with_servers, warm), []).append(
                        time.perf_counter() - started)
    ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return (ms[True, False], ms[False, False], ms[True, True], ms[False, True],
            children() - before)


async def main(samples: int, conversations: int) -> None:
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
        cold, cold_base, warm, warm_base, started = await startup(
            entry, base, max(10, samples // 10))
        print("\n(c) start-up (define + build the agent), 10 servers configured, none used:")
        print("| agent                          | no servers ms | 10 servers ms | ratio  |")
        print("|--------------------------------|---------------|---------------|--------|")
        print(f"| cold (first agent of Runtime)  | {cold_base:13.2f} | {cold:13.2f} | "
              f"{cold / cold_base:6.2f} |")
        print(f"| warm (next agent, same Runtime)| {warm_base:13.2f} | {warm:13.2f} | "
              f"{warm / warm_base:6.2f} |")
        print(f"child processes started: {started}; target <= 1.2x and no child: warm "
              f"{'met' if warm / warm_base <= 1.2 and started == 0 else 'NOT met'}, cold "
              f"{'met' if cold / cold_base <= 1.2 and started == 0 else 'NOT met'}")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=20)
    args = parser.parse_args()
    anyio.run(main, args.samples, args.conversations)
