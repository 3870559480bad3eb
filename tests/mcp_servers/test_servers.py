"""MCP servers nobody here wrote (mcp-server-git, mcp-server-time) and the project's own
(stdio and streamable HTTP), each a real child process, through the real SDK against the
fake Messages API: the annotations drive the pipeline, servers start just in time, and
no server outlives its runtime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import processes
import pytest

from agentrt import Agent, Runtime, load_settings
from agentrt.mcp import HTTPServer, StdioServer
from agentrt.testing import FakeAnthropicServer, Reply, ScriptedModel, ToolUse, capture_events

from .support import GIT, TIME, alive, git_repo, own, server_children, until, wait_gone

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


def agent_class(manifest: Path, servers: Mapping[str, StdioServer | HTTPServer],
                **config: Any) -> type[Agent]:
    class McpAgent(Agent):
        mcp_servers = servers
        tool_config = {"manifest": str(manifest), **config}
        tool_timeout = 10.0

    return McpAgent


@asynccontextmanager
async def running(agent_cls: type[Agent], steps: list[Any], *, sdk: bool = True,
                  **settings: Any) -> AsyncIterator[tuple[Agent, Any]]:
    """The agent on a Runtime that is closed (every server stopped) however the test ends."""
    base = load_settings(thread_store="memory", llm_max_retries=0, **settings)
    if not sdk:
        model = ScriptedModel(steps)
        async with Runtime(base, model=model) as runtime:
            yield agent_cls(runtime), model
        return
    async with FakeAnthropicServer(steps) as fake, fake.client() as client, \
            Runtime(base, client=client) as runtime:
        yield agent_cls(runtime), fake


def calls(*uses: tuple[str, dict[str, Any]]) -> Reply:
    return Reply(tool_calls=[ToolUse(name, args) for name, args in uses])


def results(request: Any) -> list[dict[str, Any]]:
    return [b for b in request.body["messages"][-1]["content"] if b["type"] == "tool_result"]


def text(block: dict[str, Any]) -> str:
    content = block["content"]
    return content if isinstance(content, str) else "".join(
        b.get("text", "") for b in content)


async def test_git_status_twice_in_a_reply_and_two_turns_later_executes_once(
        manifest: Path, tmp_path: Path) -> None:
    repo = str(git_repo(tmp_path / "repo"))
    status = ("git_status", {"repo_path": repo})
    steps = [calls(status, status), calls(("get_current_time", {"timezone": "UTC"})),
             calls(status), Reply(text="done")]
    with capture_events("agentrt") as events:
        async with running(agent_class(manifest, {"git": GIT, "time": TIME}), steps) as (
                agent, fake):
            result = await agent.run("status?")
    assert result.stats.executed == 2  # git_status once, get_current_time once
    assert result.stats.hits == {"turn_dedup": 1, "memo": 1}
    first = results(fake.requests[1])
    assert "working tree clean" in text(first[0]) and text(first[0]) == text(first[1])
    assert text(results(fake.requests[3])[0]) == text(first[0])
    started = [e for e in events if e["event"] == "mcp.server_started"]
    assert sorted(e["server"] for e in started) == ["git", "time"]


async def test_a_commit_between_two_logs_makes_the_second_run_again(
        manifest: Path, tmp_path: Path) -> None:
    path = git_repo(tmp_path / "repo")
    repo = str(path)
    (path / "b.txt").write_text("two\n")
    log = ("git_log", {"repo_path": repo})
    steps = [calls(log), calls(("git_add", {"repo_path": repo, "files": ["b.txt"]})),
             calls(("git_commit", {"repo_path": repo, "message": "second"})),
             calls(log), calls(log), Reply(text="done")]
    async with running(agent_class(manifest, {"git": GIT}), steps) as (agent, fake):
        result = await agent.run("commit it")
    # log, add, commit, log again (the commit invalidated the server's reads), then a memo hit
    assert result.stats.executed == 4
    assert result.stats.hits == {"memo": 1}
    before, after = text(results(fake.requests[1])[0]), text(results(fake.requests[4])[0])
    assert "second" not in before and "second" in after
    assert text(results(fake.requests[5])[0]) == after


async def test_a_server_is_started_by_the_first_call_of_one_of_its_tools_and_stopped_on_close(
        manifest: Path, tmp_path: Path) -> None:
    repo = str(git_repo(tmp_path / "repo"))
    steps = [Reply(text="hello"), calls(("git_status", {"repo_path": repo})), Reply(text="ok")]
    async with running(agent_class(manifest, {"git": GIT, "time": TIME}), steps,
                       sdk=False) as (agent, model):
        await agent.run("hi")
        assert server_children() == []  # configured, described, never started
        await agent.run("status", thread_id=None)
        (pid,) = server_children()  # git only; time was never needed
        assert alive(pid)
        tools = [t["name"] for t in model.requests[0].body["tools"]]
        assert {"git_status", "git_commit", "get_current_time"} <= set(tools)
    assert wait_gone([pid])


async def test_a_tool_left_out_of_the_allow_list_is_never_listed_sent_or_called(
        manifest: Path, tmp_path: Path) -> None:
    repo = str(git_repo(tmp_path / "repo"))
    steps = [calls(("git_commit", {"repo_path": repo, "message": "x"})), Reply(text="ok")]
    cls = agent_class(manifest, {"git": GIT}, tools={"git": {"methods": ["git_status",
                                                                          "git_log"]}})
    async with running(cls, steps, sdk=False) as (agent, model):
        result = await agent.run("commit")
    sent = [t["name"] for t in model.requests[0].body["tools"]]
    assert "git_status" in sent and "git_commit" not in sent
    assert "git_commit" not in json.dumps(model.requests[0].body["tools"])
    (block,) = results(model.requests[1])
    assert block["is_error"] and "git_commit" in text(block)
    assert result.stats.executed == 0 and server_children() == []


async def test_a_server_killed_mid_call_gives_an_error_and_the_next_call_restarts_it(
        manifest: Path, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    server = own(env={"STARTED": str(marker)})
    steps = [calls(("pid", {})), calls(("slow", {"seconds": 30})), calls(("pid", {})),
             Reply(text="ok")]

    async def kill_when_slow_starts() -> None:
        await until(marker.exists)
        (pid,) = server_children()
        os.kill(pid, signal.SIGKILL)

    with capture_events("agentrt") as events:
        async with running(agent_class(manifest, {"own": server}), steps) as (agent, fake), \
                anyio.create_task_group() as tg:
            tg.start_soon(kill_when_slow_starts)
            result = await agent.run("go")
    first, crashed, second = (results(fake.requests[i])[0] for i in (1, 2, 3))
    assert crashed["is_error"] and "'own'" in text(crashed) and "restarted" in text(crashed)
    assert not second.get("is_error") and text(second) != text(first)  # another process
    assert result.stats.executed == 3
    assert [e["event"] for e in events if e["event"].startswith("mcp.server_")] == [
        "mcp.server_started", "mcp.server_lost", "mcp.server_started"]


async def test_a_call_outliving_the_tool_timeout_is_cancelled_and_answered_as_a_timeout(
        manifest: Path, tmp_path: Path) -> None:
    class Timed(agent_class(manifest, {"own": own()})):  # type: ignore[misc]
        function_options = {"slow": {"timeout": 0.5}}

    steps = [calls(("pid", {})), calls(("slow", {"seconds": 30})), calls(("pid", {})),
             Reply(text="ok")]
    async with running(Timed, steps, sdk=False) as (agent, model):
        await agent.run("go")
    timed_out, after = results(model.requests[2])[0], results(model.requests[3])[0]
    assert timed_out["is_error"] and "timed out after 0.5 s" in text(timed_out)
    assert not after.get("is_error")  # the session survived the cancelled call


def _one_function_manifest(path: Path, name: str, server: StdioServer) -> Path:
    """A manifest listing one function ``boo`` for ``server`` (which cannot list it)."""
    from agentrt.jit.manifest import fingerprint, render_manifest
    from agentrt.mcp._describe import describe_tools

    entry = describe_tools(name, server, "1", [])
    entry["functions"] = [{"name": "boo", "summary": "Boo.", "annotations": {},
                           "definition": {"name": "boo", "description": "Boo.",
                                          "input_schema": {"type": "object", "properties": {}}}}]
    entry["fingerprint"] = fingerprint(entry)
    path.write_text(render_manifest([entry]))
    return path


async def test_a_command_that_does_not_exist_is_one_clear_error_naming_the_server(
        tmp_path: Path) -> None:
    missing = StdioServer(command=str(tmp_path / "no-such-server"))
    _one_function_manifest(tmp_path / "m.json", "ghost", missing)
    steps = [calls(("boo", {})), Reply(text="ok")]
    async with running(agent_class(tmp_path / "m.json", {"ghost": missing}), steps,
                       sdk=False) as (agent, model):
        await agent.run("go")
    (block,) = results(model.requests[1])
    assert block["is_error"]
    assert text(block).startswith("MCP server 'ghost' could not be started")
    assert "command not found" in text(block)


async def test_the_projects_own_server_over_streamable_http(manifest: Path,
                                                             tmp_path: Path) -> None:
    port = _free_port()
    child = processes.popen([sys.executable, str(Path(__file__).with_name("own_server.py")),
                             "http", str(port)], stderr=subprocess.DEVNULL)
    server = HTTPServer(url=f"http://127.0.0.1:{port}/mcp")
    from agentrt.jit.manifest import render_manifest
    from agentrt.mcp._describe import describe_servers

    async def described() -> list[dict[str, Any]]:
        while True:
            try:
                return await describe_servers({"remote": server})
            except Exception:
                assert child.poll() is None
                await anyio.sleep(0.05)

    with anyio.fail_after(30):
        entries = await described()
    (tmp_path / "m.json").write_text(render_manifest(entries))
    steps = [calls(("lookup", {"key": "k"}), ("lookup", {"key": "k"})),
             calls(("lookup", {"key": "k"})), Reply(text="ok")]
    async with running(agent_class(tmp_path / "m.json", {"remote": server}), steps) as (
            agent, fake):
        result = await agent.run("look")
    child.kill()
    child.wait()
    assert result.stats.executed == 1
    assert text(results(fake.requests[1])[0]) == "value of k (execution 0)"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ROOT = Path(__file__).parents[2]


async def test_a_process_exit_ends_every_stdio_child_it_started(manifest: Path,
                                                                 tmp_path: Path) -> None:
    repo = str(git_repo(tmp_path / "repo"))
    child = processes.popen([sys.executable, "-m", "tests.mcp_servers.child", "exit",
                             str(manifest), repo], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = await anyio.to_thread.run_sync(child.communicate, None, 60)
    assert child.returncode == 0, err
    pids = json.loads(out)
    assert len(pids) == 1  # the git server was running when the loop ended
    assert wait_gone(pids), f"orphaned MCP server: {pids}"


@pytest.mark.redis
async def test_four_processes_asking_the_same_git_log_of_a_public_server_execute_it_once(
        manifest: Path, tmp_path: Path, redis_gate: Any, redis_url: str) -> None:
    repo = str(git_repo(tmp_path / "repo"))
    gate = redis_gate()
    children = [processes.popen(
        [sys.executable, "-m", "tests.mcp_servers.child", "redis", redis_url, gate.prefix,
         str(manifest), repo], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(4)]
    with anyio.fail_after(60):
        while int(await gate.client.get(gate.key("ready")) or 0) < 4:
            for child in children:
                assert child.poll() is None, child.communicate()
            await anyio.sleep(0.02)
    await gate.client.set(gate.key("go"), 1)
    stats = []
    for child in children:
        out, err = await anyio.to_thread.run_sync(child.communicate, None, 90)
        assert child.returncode == 0, err
        stats.append(json.loads(out))
    assert sum(s["executed"] for s in stats) == 1, stats
    assert sum(sum(s["hits"].values()) for s in stats) == 3  # shared cache or shared flight


async def test_a_per_identity_server_runs_one_session_per_caller(manifest: Path) -> None:
    server = own(per_identity=True, env={"WHO": "{user}"})
    steps = [calls(("whoami", {})), Reply(text="ok"), calls(("whoami", {})), Reply(text="ok")]
    async with running(agent_class(manifest, {"own": server}), steps, sdk=False) as (
            agent, model):
        cls = type(agent)
        await cls(agent.runtime, identity={"user": "alice"}).run("who")
        await cls(agent.runtime, identity={"user": "bob"}).run("who")
        assert len(server_children()) == 2
    assert text(results(model.requests[1])[0]) == "alice"
    assert text(results(model.requests[3])[0]) == "bob"


async def test_an_idle_server_is_stopped_and_started_again_when_needed(manifest: Path) -> None:
    server = own(idle_timeout=0.3)
    steps = [calls(("pid", {})), Reply(text="ok"), calls(("pid", {})), Reply(text="ok")]
    async with running(agent_class(manifest, {"own": server}), steps, sdk=False) as (
            agent, model):
        await agent.run("one")
        # the server's own pid, as its tool answered: listing the children afterwards
        # raced the idle stop on a busy machine (the server was gone again already)
        first = int(text(results(model.requests[1])[0]))
        await until(lambda: not alive(first))
        await agent.run("two")
        second = int(text(results(model.requests[3])[0]))
    assert first != second


async def test_tools_manifest_records_the_servers_and_tools_list_shows_their_hints(
        tmp_path: Path) -> None:
    import io

    from agentrt.cli import main

    target = tmp_path / "m.json"

    def tools(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        return main(["tools", *argv, "--agent", "examples/mcp_git.py:GitAgent",
                     "--manifest", str(target)], stdout=out), out.getvalue()

    code, out = await anyio.to_thread.run_sync(tools, "manifest")
    assert (code, out) == (0, f"{target}: 1 tools\n")
    assert server_children() == []  # started to be described, then stopped
    code, out = tools("list")
    assert code == 0 and "git          mcp     allowed  12" in out
    assert ("  git_status  read-only, ttl 30 s  [destructiveHint=False idempotentHint=True "
            "openWorldHint=False readOnlyHint=True]") in out
    assert "  git_commit  side effect, invalidates mcp:git  [" in out
    code, out = await anyio.to_thread.run_sync(tools, "manifest", "--check")
    assert (code, out) == (0, f"{target}: up to date (1 tools)\n")


async def test_a_manifest_out_of_date_with_the_live_server_is_a_warning_and_the_live_list_wins(
        manifest: Path, tmp_path: Path) -> None:
    from agentrt.jit.manifest import fingerprint, render_manifest

    lines = (await anyio.Path(manifest).read_text()).splitlines()
    entries = [json.loads(line) for line in lines[2:] if json.loads(line).get("kind")]
    own_entry = next(e for e in entries if e["name"] == "own")
    own_entry["functions"].append({"name": "gone", "summary": "Gone.", "annotations": {},
                                   "definition": {"name": "gone", "description": "Gone.",
                                                  "input_schema": {"type": "object"}}})
    own_entry["fingerprint"] = fingerprint(own_entry)
    (tmp_path / "m.json").write_text(render_manifest([own_entry]))
    steps = [calls(("gone", {})), calls(("pid", {})), Reply(text="ok")]
    with capture_events("agentrt.mcp") as events:
        async with running(agent_class(tmp_path / "m.json", {"own": own()}), steps,
                           sdk=False) as (agent, model):
            await agent.run("go")
    stale = [e for e in events if e["event"] == "mcp.manifest_stale"]
    assert len(stale) == 1 and stale[0]["changed"] == ["gone"]
    gone, pid = results(model.requests[1])[0], results(model.requests[2])[0]
    assert gone["is_error"] and "no longer offers the tool 'gone'" in text(gone)
    assert not pid.get("is_error")


async def test_a_tools_list_changed_notification_refreshes_the_live_list(
        manifest: Path, tmp_path: Path) -> None:
    servers = {"own": own()}
    from agentrt.jit.manifest import render_manifest
    from agentrt.mcp._describe import describe_servers

    (tmp_path / "m.json").write_text(render_manifest(await describe_servers(servers)))
    steps = [calls(("lookup", {"key": "a"})), calls(("retire", {})),
             calls(("lookup", {"key": "b"})), Reply(text="ok")]
    with capture_events("agentrt.mcp") as events:
        async with running(agent_class(tmp_path / "m.json", servers), steps, sdk=False) as (
                agent, model):
            await agent.run("go")
    before, after = results(model.requests[1])[0], results(model.requests[3])[0]
    assert not before.get("is_error")
    # the live list won: lookup left the tools list and is no function any more
    assert after["is_error"] and "Unknown function 'lookup'" in text(after)
    assert "lookup" not in [t["name"] for t in model.requests[2].body["tools"]]
    assert "lookup" in [t["name"] for t in model.requests[1].body["tools"]]
    assert [e["event"] for e in events if e["event"] in (
        "mcp.tools_changed", "mcp.manifest_stale")] == ["mcp.tools_changed",
                                                        "mcp.manifest_stale"]


def _stale_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` as an older server described it: without ``pid``, ``lookup`` without its
    read-only hint, ``whoami`` with another input schema."""
    from agentrt.jit.manifest import fingerprint

    old = json.loads(json.dumps(entry))
    old["functions"] = [f for f in old["functions"] if f["name"] != "pid"]
    for fn in old["functions"]:
        if fn["name"] == "lookup":
            fn["annotations"] = {}
        if fn["name"] == "whoami":
            fn["definition"]["input_schema"] = {"type": "object", "properties": {
                "who": {"type": "string"}}, "required": ["who"]}
    old["fingerprint"] = fingerprint(old)
    return old


def _names(request: Any) -> list[str]:
    return [t["name"] for t in request.body["tools"]]


async def test_a_manifest_stale_at_start_gives_way_to_the_live_list_new_tools_schemas_and_hints(
        tmp_path: Path) -> None:
    """The live list wins over a stale manifest from the next request on: a tool the
    manifest lacks is sent and callable, a changed schema is sent as the server has it,
    a changed hint changes what the pipeline does (lookup is read-only live: run once)."""
    from agentrt.jit.manifest import render_manifest
    from agentrt.mcp._describe import describe_servers

    counter = tmp_path / "count"
    server = own(env={"COUNTER": str(counter)})
    (live,) = await describe_servers({"own": server})
    (tmp_path / "m.json").write_text(render_manifest([_stale_entry(live)]))
    look = ("lookup", {"key": "k"})
    steps = [calls(("whoami", {"who": "x"})), calls(look), calls(("pid", {})), calls(look),
             Reply(text="ok")]
    with capture_events("agentrt.mcp") as events:
        async with running(agent_class(tmp_path / "m.json", {"own": server}), steps,
                           sdk=False) as (agent, model):
            result = await agent.run("go")
    (stale,) = [e for e in events if e["event"] == "mcp.manifest_stale"]
    assert (stale["added"], stale["removed"], stale["modified"]) == (
        ["pid"], [], {"lookup": ["annotations"], "whoami": ["input_schema"]})
    assert stale["changed"] == ["lookup", "pid", "whoami"]
    assert "pid" not in _names(model.requests[0]) and "pid" in _names(model.requests[1])
    schemas = [{t["name"]: t.get("input_schema") for t in r.body["tools"]}
               for r in model.requests[:2]]
    assert schemas[0]["whoami"]["required"] == ["who"]
    assert schemas[1]["whoami"] == next(f["definition"]["input_schema"]
                                        for f in live["functions"] if f["name"] == "whoami")
    pid = results(model.requests[3])[0]
    assert not pid.get("is_error") and int(text(pid)) > 0
    assert [text(results(model.requests[i])[0]) for i in (2, 4)] == [
        "value of k (execution 1)"] * 2
    assert counter.read_text() == "1" and result.stats.executed == 3


async def test_a_live_tool_left_out_of_the_allow_list_stays_out(tmp_path: Path) -> None:
    """The live list wins only within the allow-list: a tool the manifest lacked and the
    server offers is neither sent nor called when the server's ``methods`` omit it."""
    from agentrt.jit.manifest import render_manifest
    from agentrt.mcp._describe import describe_servers

    server = own()
    (live,) = await describe_servers({"own": server})
    (tmp_path / "m.json").write_text(render_manifest([_stale_entry(live)]))
    steps = [calls(("whoami", {"who": "x"})), calls(("pid", {})), Reply(text="ok")]
    cls = agent_class(tmp_path / "m.json", {"own": server},
                      tools={"own": {"methods": ["whoami", "lookup"]}})
    async with running(cls, steps, sdk=False) as (agent, model):
        result = await agent.run("go")
    assert [sorted(_names(r)) for r in model.requests[1:]] == [
        ["initialize_tools", "lookup", "search_tools", "whoami"]] * 2
    (refused,) = results(model.requests[2])
    assert refused["is_error"] and "pid" in text(refused)
    assert result.stats.executed == 1


async def test_a_tool_added_while_the_server_runs_is_sent_and_callable_from_the_next_request(
        manifest: Path, tmp_path: Path) -> None:
    """``grow`` adds ``fresh`` (read-only) and says tools/list_changed: the next request
    of the same run has it, and it is called (once: its hint is honoured). In append
    mode the tools before the server's own are sent as they were (the prompt-cache
    prefix up to them holds)."""
    counter = tmp_path / "count"
    server = own(env={"COUNTER": str(counter)})
    fresh = ("fresh", {"word": "w"})
    steps = [calls(("lookup", {"key": "a"})), calls(("grow", {})), calls(fresh),
             calls(fresh), Reply(text="ok")]
    with capture_events("agentrt") as events:
        async with running(agent_class(manifest, {"own": server}, tool_loading="append"),
                           steps, sdk=False) as (agent, model):
            await agent.run("go")
    # requests[2] answers grow: it is the next request
    before, after = model.requests[1].body["tools"], model.requests[2].body["tools"]
    assert "fresh" not in _names(model.requests[1]) and "fresh" in _names(model.requests[2])
    first_own = _names(model.requests[1]).index("grow")
    assert first_own > 0 and after[:first_own] == before[:first_own]
    assert [text(results(model.requests[i])[0]) for i in (3, 4)] == [
        "fresh w (execution 2)"] * 2  # lookup was execution 1
    stale = [e for e in events if e["event"] == "mcp.manifest_stale"]
    assert [(e["added"], e["removed"]) for e in stale] == [(["fresh"], [])]
    assert any(e["event"] == "jit.tools_changed" and e["tools"] == ["own"] for e in events)


async def test_results_are_per_identity_unless_the_server_is_public(
        manifest: Path, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    executed = {}
    for public in (False, True):
        counter.unlink(missing_ok=True)
        server = own(public=public, env={"COUNTER": str(counter)})
        steps = [calls(("lookup", {"key": "k"})), Reply(text="ok")] * 2
        async with running(agent_class(manifest, {"own": server}), steps, sdk=False) as (
                agent, _):
            cls = type(agent)
            for user in ("alice", "bob"):
                await cls(agent.runtime, identity={"user": user}).run("look")
        executed[public] = int(counter.read_text())
    assert executed == {False: 2, True: 1}


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_a_server_is_started_shared_and_stopped(manifest: Path) -> None:
    steps = [calls(("pid", {}), ("whoami", {})), calls(("pid", {})), Reply(text="ok")]
    async with running(agent_class(manifest, {"own": own()}), steps, sdk=False) as (
            agent, model):
        result = await agent.run("go")
        (pid,) = server_children()
    assert result.stats.executed == 2 and result.stats.hits == {"memo": 1}
    assert text(results(model.requests[1])[0]) == str(pid)
    assert wait_gone([pid])


async def test_after_its_restarts_a_server_is_reported_down(tmp_path: Path) -> None:
    exits = StdioServer(command=sys.executable, args=["-c", "pass"], max_restarts=1)
    _one_function_manifest(tmp_path / "m.json", "flaky", exits)
    steps = [calls(("boo", {})), calls(("boo", {})), calls(("boo", {})), Reply(text="ok")]
    async with running(agent_class(tmp_path / "m.json", {"flaky": exits}), steps,
                       sdk=False) as (agent, model):
        await agent.run("go")
    answers = [text(results(model.requests[i])[0]) for i in (1, 2, 3)]
    assert [a.startswith("MCP server 'flaky' could not be started") for a in answers] == [
        True, True, False]
    assert answers[2] == ("MCP server 'flaky' is down (started 2 times, lost each time); its "
                          "tools are unavailable")


async def test_hint_derived_reads_expire_after_their_ttl_in_the_memo_too(
        manifest: Path) -> None:
    import time

    server = TIME.model_copy(update={"read_ttl": 0.5})
    now = ("get_current_time", {"timezone": "UTC"})
    steps = [calls(now), calls(now), Reply(text="ok"), calls(now), Reply(text="ok")]
    async with running(agent_class(manifest, {"time": server}), steps, sdk=False) as (
            agent, _):
        first = await agent.run("time?")
        answered = time.time()
        await until(lambda: time.time() > answered + 0.6)
        second = await agent.run("and now?", thread_id=first.thread_id)
    assert (first.stats.executed, first.stats.hits) == (1, {"memo": 1})
    assert (second.stats.executed, second.stats.hits) == (1, {})  # the memo let it go
