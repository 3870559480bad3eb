"""agentrt.mcp without a server: what annotations and the config make of a tool, how
results map to blocks, and the start-up errors (no manifest entry, no extra, a clash)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from agentrt import (
    Agent,
    ConfigError,
    Runtime,
    Tool,
    ToolDefinitionError,
    ToolError,
    function,
    load_settings,
)
from agentrt.jit.config import JITConfig
from agentrt.jit.manifest import render_manifest
from agentrt.mcp import HTTPServer, StdioServer
from agentrt.mcp._describe import describe_tools
from agentrt.mcp._tools import options_for, to_content
from agentrt.testing import ScriptedModel

if TYPE_CHECKING:
    from pathlib import Path

READ = {"readOnlyHint": True, "idempotentHint": True}


def test_a_read_only_hint_makes_a_read_only_function_with_a_short_ttl_under_the_server_tag(
        ) -> None:
    options = options_for("time", StdioServer(command="t"), "now", "now", "Now.", READ)
    assert (options.read_only, options.ttl, options.cache_tags, options.public) == (
        True, 30.0, ("mcp:time",), False)
    shared = options_for("time", StdioServer(command="t", public=True, read_ttl=2), "now",
                         "now", "Now.", READ)
    assert (shared.ttl, shared.public) == (2, True)


@pytest.mark.parametrize("hints", [{}, {"readOnlyHint": False}, {"destructiveHint": True}])
def test_no_hint_or_a_false_one_is_a_side_effect_invalidating_the_server_tag(
        hints: dict[str, Any]) -> None:
    options = options_for("git", StdioServer(command="g"), "git_commit", "git_commit", "C.",
                          hints)
    assert (options.read_only, options.invalidates) == (False, ("mcp:git",))


def test_distrusted_annotations_and_per_tool_overrides() -> None:
    distrust = StdioServer(command="g", trust_annotations=False)
    assert not options_for("git", distrust, "git_log", "git_log", "L.", READ).read_only
    server = StdioServer(command="g", tools={"git_commit": {"read_only": True, "ttl": 5},
                                             "git_log": {"ttl": 9, "cache_tags": ["log"]}})
    commit = options_for("git", server, "git_commit", "git_commit", "C.", {})
    log = options_for("git", server, "git_log", "git_log", "L.", READ)
    assert (commit.read_only, commit.ttl) == (True, 5)
    assert (log.ttl, log.cache_tags) == (9, ("log",))


def _result(*content: Any, structured: Any = None, error: bool = False) -> Any:
    return SimpleNamespace(content=list(content), structured_content=structured,
                           is_error=error)


def test_content_maps_to_blocks_and_is_error_to_an_error_result() -> None:
    text = SimpleNamespace(type="text", text="hello")
    image = SimpleNamespace(type="image", mime_type="image/png", data="aGk=")
    resource = SimpleNamespace(type="resource", resource=SimpleNamespace(
        uri="file:///a", text="body"))
    blob = SimpleNamespace(type="resource", resource=SimpleNamespace(
        uri="file:///b", blob="AA==", mime_type="application/pdf"))
    blocks = to_content(_result(text, image, resource, blob), "s", "t").blocks
    assert blocks == (
        {"type": "text", "text": "hello"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "aGk="}},
        {"type": "text", "text": "body"},
        {"type": "text", "text": "[resource file:///b: application/pdf content not shown]"})
    assert to_content(_result(structured={"a": 1}), "s", "t").text == '{"a": 1}'
    with pytest.raises(ToolError, match="no such branch"):
        to_content(_result(SimpleNamespace(type="text", text="no such branch"), error=True),
                   "s", "t")


def _tool(name: str, hints: dict[str, Any] | None = None) -> Any:
    return SimpleNamespace(name=name, description=f"{name} it.", title=None,
                           input_schema={"type": "object", "properties": {}},
                           annotations=None if hints is None else SimpleNamespace(
                               model_dump=lambda: {"read_only_hint": hints.get("readOnlyHint"),
                                                   "destructive_hint": None,
                                                   "idempotent_hint": None,
                                                   "open_world_hint": None}))


def _manifest(tmp_path: Path, servers: dict[str, Any], tools: list[Any]) -> Path:
    path = tmp_path / "m.json"
    path.write_text(render_manifest(describe_tools(n, s, "1", tools)
                                    for n, s in servers.items()))
    return path


def _agent(manifest: Path, servers: dict[str, Any], **attrs: Any) -> type[Agent]:
    return type("A", (Agent,), {"mcp_servers": servers,
                                "tool_config": {"manifest": str(manifest)}, **attrs})


def _runtime() -> Runtime:
    return Runtime(load_settings(thread_store="memory"), model=ScriptedModel([]))


async def _build(cls: type[Agent]) -> Agent:
    return cls(_runtime())


@pytest.mark.anyio
async def test_a_server_missing_from_the_manifest_is_a_start_up_error_saying_what_to_run(
        tmp_path: Path) -> None:
    path = _manifest(tmp_path, {"time": StdioServer(command="t")}, [_tool("now", READ)])
    cls = _agent(path, {"git": StdioServer(command="mcp-server-git")})
    with pytest.raises(ConfigError, match=r"MCP server 'git'.*agentrt tools manifest"):
        await _build(cls)


@pytest.mark.anyio
async def test_the_tools_of_a_server_join_the_catalog_without_starting_it(
        tmp_path: Path) -> None:
    server = StdioServer(command="/nonexistent/server")
    path = _manifest(tmp_path, {"git": server}, [_tool("git_log", READ), _tool("git_commit")])
    agent = await _build(_agent(path, {"git": server}))
    async with agent:
        tools = await agent.tools_for()
        names = [d["name"] for d in tools.definitions()]
    assert {"git_log", "git_commit"} <= set(names)


@pytest.mark.anyio
async def test_a_clash_with_another_function_is_an_error_naming_both_unless_prefixed(
        tmp_path: Path) -> None:
    class Logs(Tool):
        @function(read_only=True)
        async def git_log(self) -> str:
            """Our own log."""
            return ""

    server = StdioServer(command="g")
    path = _manifest(tmp_path, {"git": server}, [_tool("git_log", READ)])
    with pytest.raises(ToolDefinitionError, match=r"git_log.*'git'.*'logs'|git_log.*'logs'.*'git'"):
        await _build(_agent(path, {"git": server}, tools=[Logs]))
    prefixed = StdioServer(command="g", prefix="repo_")
    agent = await _build(_agent(path, {"git": prefixed}, tools=[Logs]))
    async with agent:
        names = [d["name"] for d in (await agent.tools_for()).definitions()]
    assert "repo_git_log" in names and "git_log" in names


def test_servers_in_the_tool_config_file(tmp_path: Path) -> None:
    file = tmp_path / "agent.toml"
    file.write_text('[tools]\ngit = { methods = ["git_log"] }\n'
                    '[function_options.git_log]\nttl = 5\n'
                    '[mcp.servers.git]\ncommand = "mcp-server-git"\nargs = ["-r", "."]\n'
                    'public = true\n[mcp.servers.git.tools.git_log]\nttl = 3\n'
                    '[mcp.servers.remote]\nurl = "http://127.0.0.1:9/mcp"\n')
    config = JITConfig.from_toml(file)
    assert config.mcp.servers["git"] == StdioServer(
        command="mcp-server-git", args=["-r", "."], public=True, tools={"git_log": {"ttl": 3}})
    assert isinstance(config.mcp.servers["remote"], HTTPServer)
    assert config.function_options["git_log"].fields() == {"ttl": 5}
    file.write_text('[mcp.servers.git]\ncommand = "x"\nurl = "http://y"\n')
    with pytest.raises(ConfigError, match=r"mcp\.servers: git: give `command`"):
        JITConfig.from_toml(file)


def test_function_options_may_override_read_only_and_invalidations() -> None:
    class A(Agent):
        function_options = {"git_commit": {"read_only": False, "invalidates": ["x"]}}

    with pytest.raises(ConfigError, match="expected only approval_reason, cache_tags"):
        type("B", (Agent,), {"function_options": {"f": {"bogus": 1}}})
    assert A.function_options


def test_a_server_key_names_its_configuration_and_not_its_secrets() -> None:
    one = StdioServer(command="g", args=["-r", "/a"], env={"TOKEN": "s1"})
    assert one.digest("git") == StdioServer(command="g", args=["-r", "/a"],
                                            env={"TOKEN": "s2"}).digest("git")
    assert one.digest("git") != StdioServer(command="g", args=["-r", "/b"]).digest("git")
    assert one.digest("git") != one.digest("git2")
    assert HTTPServer(url="http://a").digest("x") != HTTPServer(url="http://b").digest("x")


@pytest.mark.integration
def test_without_the_extra_configuring_a_server_names_it(tmp_path: Path) -> None:
    path = _manifest(tmp_path, {"git": StdioServer(command="g")}, [_tool("git_log", READ)])
    code = (
        "import sys; sys.modules['mcp'] = None\n"
        "import agentrt, agentrt.mcp\n"
        "from agentrt.testing import ScriptedModel\n"
        f"class A(agentrt.Agent):\n mcp_servers = {{'git': agentrt.mcp.StdioServer("
        f"command='g')}}\n tool_config = {{'manifest': {str(path)!r}}}\n"
        "try:\n A(agentrt.Runtime(agentrt.load_settings(thread_store='memory'), "
        "model=ScriptedModel([])))\n"
        "except agentrt.ConfigError as exc:\n print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'agentrt[mcp]'" in out


@pytest.mark.integration
def test_import_agentrt_mcp_does_not_import_the_mcp_package() -> None:
    code = "import sys, agentrt.mcp; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


@pytest.mark.integration
def test_an_agent_with_servers_none_used_imports_no_mcp_and_starts_no_child(
        tmp_path: Path) -> None:
    """Start-up (benchmark c): the tools of configured servers are known from the
    manifest, so building the agent and running it without calling them imports nothing
    of the ``mcp`` package (it takes longer to import than the agent takes to build) and
    starts no process; the model still sees the servers' tools (deferred)."""
    path = _manifest(tmp_path, {f"git{i}": StdioServer(command="g", args=[str(i)],
                                                        prefix=f"r{i}_") for i in range(3)},
                     [_tool("git_log", READ), _tool("git_commit")])
    code = (
        "import os, sys, anyio, agentrt, agentrt.mcp\n"
        "from agentrt.testing import Reply, ScriptedModel\n"
        "class A(agentrt.Agent):\n"
        f" mcp_servers = {{f'git{{i}}': agentrt.mcp.StdioServer(command='g', args=[str(i)], "
        "prefix=f'r{i}_') for i in range(3)}\n"
        f" tool_config = {{'manifest': {str(path)!r}}}\n"
        "async def main():\n"
        " model = ScriptedModel([Reply(text='hi')])\n"
        " async with agentrt.Runtime(agentrt.load_settings(thread_store='memory'), "
        "model=model) as rt:\n"
        "  await A(rt).run('hi')\n"
        "  sent = sorted(t['name'] for t in model.requests[0].body['tools'])\n"
        "  kids = [p for p in os.listdir('/proc') if p.isdigit() and os.path.exists("
        "f'/proc/{p}/stat') and open(f'/proc/{p}/stat').read().rpartition(')')[2].split()[1]"
        " == str(os.getpid())]\n"
        " print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith(('mcp.', "
        "'mcp_types'))), kids, [n for n in sent if n.startswith('r')])\n"
        "anyio.run(main)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == ("[] [] ['r0_git_commit', 'r0_git_log', 'r1_git_commit', "
                           "'r1_git_log', 'r2_git_commit', 'r2_git_log']")


def test_only_an_explicit_destructive_hint_marks_a_tool_for_approval() -> None:
    from agentrt.mcp._tools import build_tool_class

    def fn(name: str, hints: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "summary": "x", "annotations": hints,
                "definition": {"name": name, "description": "x",
                               "input_schema": {"type": "object"}}}

    entry = {"name": "git", "version": "1", "functions": [
        fn("git_reset", {"destructiveHint": True}), fn("git_add", {}),
        fn("git_log", {"readOnlyHint": True, "idempotentHint": True})]}
    cls = build_tool_class("git", StdioServer(command="g"), entry)
    assert [cls.destructive(n) for n in ("git_reset", "git_add", "git_log")] == [
        True, False, False]
    assert cls.annotations["git_log"] == {"readOnlyHint": True, "idempotentHint": True}
    assert cls.functions()["git_log"].read_only and not cls.functions()["git_add"].read_only


def test_an_explicit_destructive_hint_requires_approval_unless_the_server_says_not() -> None:
    """Issue 19, point 1: only an explicit ``destructiveHint: true`` counts (the spec's
    implicit default for an unannotated tool does not)."""
    server = StdioServer(command="g")
    reset = options_for("git", server, "git_reset", "git_reset", "R.", {"destructiveHint": True})
    add = options_for("git", server, "git_add", "git_add", "A.", {})
    assert reset.requires_approval and reset.approval_reason
    assert not add.requires_approval
    relaxed = StdioServer(command="g", approve_destructive=False,
                          tools={"git_add": {"requires_approval": True}})
    assert not options_for("git", relaxed, "git_reset", "git_reset", "R.",
                           {"destructiveHint": True}).requires_approval
    assert options_for("git", relaxed, "git_add", "git_add", "A.", {}).requires_approval
