"""JIT agents end to end: the real SDK over HTTP to the fake Messages API server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import processes
import pytest

from agentrt import (
    Agent,
    ConfigError,
    DependencyCycleError,
    MemoryThreadStore,
    MissingParameterError,
    SQLiteThreadStore,
    Tool,
    function,
)
from agentrt.testing import Reply, ToolUse

from .agents import TOOLS, Notes, research_agent
from .fixtures import IMPORTS, PACKAGE
from .helpers import CATALOG, harness, write_manifest

if TYPE_CHECKING:
    from agentrt.testing import RecordedRequest
    from agentrt.tools import ThreadView

pytestmark = pytest.mark.anyio

ACME = {"account": "acme"}
# The JIT issue's behaviour: activated tools are appended to the tools list. The
# default, deferred loading, is tested in test_deferred.py.
APPEND = {"tool_loading": "append"}


def prefix(request: RecordedRequest) -> str:
    """The cached prefix of a request, as bytes would compare: tools, then system."""
    return json.dumps({"tools": request.body.get("tools"), "system": request.body.get("system")},
                      sort_keys=True)


def tool_names(request: RecordedRequest) -> list[str]:
    return [t["name"] for t in request.body.get("tools", [])]


def results(request: RecordedRequest) -> list[dict[str, Any]]:
    return [b for b in request.body["messages"][-1]["content"] if b["type"] == "tool_result"]


def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[ToolUse(name, arguments)])


async def test_the_first_request_carries_only_core_tools_and_imports_nothing(
        tmp_path: Path) -> None:
    agent_cls = research_agent(write_manifest(tmp_path), **APPEND)
    async with harness(agent_cls, [Reply(text="hello")], identity=ACME) as (agent, server):
        assert not IMPORTS  # start-up imported no catalog tool
        await agent.run("hi")
    assert not IMPORTS
    assert tool_names(server.requests[0]) == ["read_notes", "initialize_tools"]
    description = server.requests[0].body["tools"][1]["description"]
    assert description.endswith(
        "\n\nTools you can activate:\n"
        "- files: Read and write the account's files.\n"
        "- mailer: Send e-mail.\n"
        "- presentation: Build slide decks from files and web research.\n"
        "- shouty: Fails to start.\n"
        "- web_search: Search the web and read pages.")  # browser is blocked: not advertised


async def test_initialize_tools_then_auto_activation_then_a_refusal(tmp_path: Path) -> None:
    steps = [call("initialize_tools", tool_names=["presentation", "browser"]),
             Reply(tool_calls=[ToolUse("web_search", {"query": "jit"}),
                               ToolUse("send_mail", {"to": "a@b", "body": "x"}),
                               ToolUse("open_url", {"url": "https://x"}),
                               ToolUse("delete_file", {"path": "a"})]),
             Reply(text="done")]
    agent_cls = research_agent(write_manifest(tmp_path), **APPEND)
    async with harness(agent_cls, steps, identity=ACME) as (agent, server):
        result = await agent.run("make slides")
    assert result.text == "done"
    loaded = results(server.requests[1])[0]["content"]
    assert loaded.startswith("Activated: files, web_search, presentation.\n"
                             "Not activated: browser: tool 'browser' is not enabled for this "
                             "agent.\n\n## files\n")
    assert tool_names(server.requests[1]) == [
        "read_notes", "initialize_tools", "read_file", "write_file", "web_search", "fetch_page",
        "make_slides"]
    search, mail, browser, delete = results(server.requests[2])
    assert "is_error" not in search and json.loads(search["content"])["query"] == "jit"
    assert mail["is_error"] and "tool 'mailer' cannot be constructed: parameter 'api_key'" \
        in mail["content"]
    assert browser["is_error"] and browser["content"] == (
        "Function 'open_url' cannot be called: tool 'browser' is not enabled for this agent.")
    assert delete["is_error"] and "not enabled for this agent (enabled: read_file, write_file)" \
        in delete["content"]
    assert f"{PACKAGE}.browser" not in sys.modules
    assert tool_names(server.requests[2]) == tool_names(server.requests[1])


async def test_deps_reach_constructors(tmp_path: Path) -> None:
    steps = [call("send_mail", to="a@b", body="hi"), Reply(text="sent")]
    agent_cls = research_agent(write_manifest(tmp_path), **APPEND)
    async with harness(agent_cls, steps, identity=ACME,
                       deps={"api_key": "k-1", "sender": "me@x"}) as (agent, server):
        await agent.run("mail")
    assert results(server.requests[1])[0]["content"] == "sent to a@b from me@x"
    assert tool_names(server.requests[1])[-1] == "send_mail"


async def test_a_degraded_tool_is_reported_to_the_model(tmp_path: Path) -> None:
    agent_cls = research_agent(write_manifest(tmp_path),
                               tools={"presentation": True, "web_search": True},
                               **APPEND)
    steps = [call("initialize_tools", tool_names=["presentation"]), Reply(text="ok")]
    async with harness(agent_cls, steps, identity=ACME) as (agent, server):
        await agent.run("slides")
    loaded = results(server.requests[1])[0]["content"]
    assert "Degraded: presentation (its dependency 'files' is not enabled for this agent)" in loaded


def _conversation() -> list[list[Reply]]:
    """Three user turns, twenty requests, three activations (one explicit, two automatic)."""
    return [
        [call("read_notes"), call("initialize_tools", tool_names=["web_search"]),
         call("web_search", query="a"), call("fetch_page", url="u1"),
         call("web_search", query="b"), Reply(text="first")],
        [call("read_notes"), call("read_file", path="p"), call("read_file", path="q"),
         call("web_search", query="c"), Reply(text="second")],
        [call("make_slides", title="T", bullets=["x"]), call("fetch_page", url="u2"),
         call("read_notes"), call("write_file", path="p", text="t"),
         call("web_search", query="d"), call("fetch_page", url="u3"),
         call("read_file", path="p"), call("make_slides", title="U", bullets=["y"]),
         Reply(text="third")],
    ]


async def test_prompt_prefix_changes_only_when_a_tool_is_activated(tmp_path: Path) -> None:
    turns = _conversation()
    steps = [reply for turn in turns for reply in turn]
    assert len(steps) == 20
    store = MemoryThreadStore()
    agent_cls = research_agent(write_manifest(tmp_path), **APPEND)
    async with harness(agent_cls, steps, store=store, identity=ACME,
                       min_cache_tokens=1) as (agent, server):
        thread_id = None
        for task in ("research", "read", "present"):
            result = await agent.run(task, thread_id=thread_id)
            thread_id = result.thread_id
        stored = await store.messages(result.thread_id)
    requests = server.requests
    assert len(requests) == 20
    changes = [i for i in range(1, 20) if prefix(requests[i]) != prefix(requests[i - 1])]
    assert changes == [2, 8, 12]  # after initialize_tools, read_file, make_slides
    for i in range(1, 20):  # append-only: every earlier tool keeps its place and bytes
        before = [{k: v for k, v in t.items() if k != "cache_control"}
                  for t in requests[i - 1].body["tools"]]
        after = [{k: v for k, v in t.items() if k != "cache_control"}
                 for t in requests[i].body["tools"]]
        assert after[:len(before)] == before
    assert tool_names(requests[-1]) == [
        "read_notes", "initialize_tools", "web_search", "fetch_page", "read_file", "write_file",
        "make_slides"]
    for request in requests:  # breakpoints: last tool, system, last message (API limit: 4)
        body = request.body
        marks = [t for t in body["tools"] if "cache_control" in t]
        marks += [b for b in body["system"] if "cache_control" in b]
        marks += [b for m in body["messages"] for b in m["content"]
                  if isinstance(b, dict) and "cache_control" in b]
        assert len(marks) == 3 and "cache_control" in body["tools"][-1]
    usage = [m.metadata["usage"] for m in stored if m.role == "assistant"]
    assert len(usage) == 20
    assert usage[0]["cache_read_input_tokens"] == 0
    unchanged = [i for i in range(1, 20) if i not in changes]
    assert all(usage[i]["cache_read_input_tokens"] > 0 for i in unchanged), usage


async def test_a_resumed_thread_gets_the_same_tools_list(tmp_path: Path) -> None:
    """A new agent (new loader, nothing in memory) rebuilds the list from the history,
    including tools activated concurrently by one message."""
    store = MemoryThreadStore()
    manifest = write_manifest(tmp_path)
    first = [Reply(tool_calls=[ToolUse("read_file", {"path": "p"}),
                               ToolUse("initialize_tools", {"tool_names": ["presentation"]}),
                               ToolUse("fetch_page", {"url": "u"})]),
             call("send_mail", to="x", body="y"),  # fails: not activated, not restored
             Reply(text="ok")]
    # the first reply calls deferred functions nothing revealed, as a model that knew
    # their names could: not the API's behaviour (strict_deferred), but restore's case
    async with harness(research_agent(manifest), first, store=store,
                       identity=ACME, strict_deferred=False) as (agent, server):
        result = await agent.run("go")
        live = prefix(server.requests[-1])
    async with harness(research_agent(manifest), [Reply(text="again")], store=store,
                       identity=ACME) as (agent, server):
        await agent.run("more", thread_id=result.thread_id)
        assert prefix(server.requests[0]) == live


@pytest.mark.parametrize("loading", ["append", "deferred"])
@pytest.mark.integration
async def test_a_thread_resumes_in_another_process(tmp_path: Path, loading: str) -> None:
    manifest, db = write_manifest(tmp_path), str(tmp_path / "threads.db")
    steps = [call("initialize_tools", tool_names=["presentation"]), call("read_file", path="p"),
             Reply(text="first"), call("fetch_page", url="u"), Reply(text="second")]
    async with SQLiteThreadStore(db) as store, harness(
            research_agent(manifest, tool_loading=loading), steps, store=store,
            identity=ACME, sdk=True) as (agent, server):
        result = await agent.run("go")
        live = prefix(server.requests[2])
        child = Path(__file__).with_name("resume_child.py")
        env = {**os.environ, "PYTHONHASHSEED": "12345"}
        done = await processes.run_process(
            [sys.executable, str(child), str(manifest), db, result.thread_id, server.base_url,
             "continue", loading], env=env, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert json.loads(done.stdout)["text"] == "second"
        assert prefix(server.requests[3]) == live
        if loading == "append":
            assert tool_names(server.requests[3])[-1] == "make_slides"
        else:  # everything was there from the first request, deferred
            assert prefix(server.requests[0]) == live
            assert "make_slides" in tool_names(server.requests[0])


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_jit_runs_on_trio(tmp_path: Path) -> None:
    steps = [call("fetch_page", url="u"), Reply(text="fine")]
    # search_first reveals fetch_page (the message's search runs on trio too)
    async with harness(research_agent(write_manifest(tmp_path), search_first=True), steps,
                       identity=ACME) as (agent, server):
        result = await agent.run("read")
    assert result.text == "fine"
    assert results(server.requests[1])[0]["content"] == "contents of u"


async def test_unknown_tool_in_the_config_fails_at_start_up(tmp_path: Path) -> None:
    agent_cls = research_agent(write_manifest(tmp_path), tools={**TOOLS, "brwser": True})
    with pytest.raises(ConfigError) as caught:
        async with harness(agent_cls, []):
            pass
    assert caught.value.field == "ResearchAgent.tool_config.tools.brwser"
    assert "did you mean 'browser'?" in str(caught.value)


async def test_a_toml_config_file(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    config = tmp_path / "research_assistant.toml"
    config.write_text(f'manifest = "{manifest}"\nentry_points = false\n[tools]\n'
                      'web_search = true\n', encoding="utf-8")

    class FromFile(Agent):
        tool_catalog = CATALOG
        tool_config = str(config)

    steps = [call("read_file", path="p"), Reply(text="no")]
    async with harness(FromFile, steps) as (agent, server):
        await agent.run("read")
    assert "tool 'files' is not enabled" in results(server.requests[1])[0]["content"]


class Cyclic1(Tool):
    name = "cycle_a"
    requires = ("cycle_b",)


class Cyclic2(Tool):
    name = "cycle_b"
    requires = ("cycle_a",)


async def test_a_dependency_cycle_fails_at_start_up() -> None:
    class Looping(Agent):
        tool_catalog = (Cyclic1, Cyclic2)
        tool_config = {"entry_points": False, "manifest": None}

    with pytest.raises(DependencyCycleError, match="cycle_a -> cycle_b -> cycle_a"):
        async with harness(Looping, []):
            pass


async def test_a_core_tool_missing_an_argument_fails_at_start_up() -> None:
    class NeedsToken(Tool):
        def __init__(self, token: str) -> None: ...

        @function
        async def use_token(self) -> str:
            """Use it."""
            return ""

    class Needy(Agent):
        core_tools = (NeedsToken,)
        tool_config = {"entry_points": False, "manifest": None}

    with pytest.raises(MissingParameterError, match=r"'needs_token' .* parameter 'token'"):
        async with harness(Needy, []):
            pass
    async with harness(Needy, [Reply(text="ok")], deps={"token": "t"}) as (agent, server):
        await agent.run("x")
    assert tool_names(server.requests[0]) == ["use_token", "initialize_tools", "search_tools"]


def test_agent_attributes_are_checked_when_the_class_is_defined() -> None:
    with pytest.raises(ConfigError, match=r"Bad.tool_catalog\[0\]: expected a Tool subclass"):
        class Bad(Agent):
            tool_catalog = ("not-a-path",)
    paths = [f"pkg.m{i}:T{i}" for i in range(100)]
    with pytest.raises(ConfigError, match=r"Many.tool_catalog\[37\]: expected .* got 'pkg.m37:'"):
        class Many(Agent):  # checked as a whole, then item by item to name the culprit
            tool_catalog = [*paths[:37], "pkg.m37:", *paths[38:]]
    with pytest.raises(ConfigError, match=r"Mixed.tool_catalog\[2\]: expected"):
        class Mixed(Agent):
            tool_catalog = (*paths[:1], Notes, "pkg.m1:1T")
    with pytest.raises(ConfigError, match=r"Bad2.tool_config.tools.x: expected true, false"):
        class Bad2(Agent):
            tool_config = {"tools": {"x": 3}}
    with pytest.raises(ConfigError, match=r"Bad3.core_tools\[1\]: expected a Tool subclass"):
        class Bad3(Agent):
            core_tools = (Notes, 3)  # type: ignore[assignment]


class Recall(Tool):
    """Reads the thread it runs in, through the read-only view tools are given."""

    def __init__(self, thread: ThreadView) -> None:
        self.thread = thread

    @function(read_only=True)
    async def count_messages(self) -> str:
        """How many messages the thread holds, and who wrote the first."""
        messages = await self.thread.messages()
        return f"{len(messages)} messages, first by {messages[0].role}"


async def test_a_tool_reads_its_thread_through_the_view() -> None:
    class Remembering(Agent):
        core_tools = (Recall,)
        tool_config = {"entry_points": False, "manifest": None, "tool_loading": "append"}

    steps = [call("count_messages"), Reply(text="done")]
    async with harness(Remembering, steps) as (agent, server):
        result = await agent.run("how long is this thread?")
    # the user's message and the assistant's tool call are stored before the tool runs
    assert results(server.requests[1])[0]["content"] == "2 messages, first by user"
    assert result.stats.errors == 0
