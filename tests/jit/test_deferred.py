"""Deferred tool definitions end to end, through the real SDK over HTTP to the fake server:
``defer_loading`` definitions from the manifest, ``initialize_tools`` answering with
``tool_reference`` blocks, the API's tool search (``server_search``), server-tool blocks
kept verbatim, and a request prefix that no activation changes."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import pytest

from agentrt import Agent, ConfigError, MemoryThreadStore
from agentrt.jit import read_manifest
from agentrt.jit.agent_tools import GUIDES_ONLY
from agentrt.testing import Reply, ToolSearch, ToolUse, capture_events
from agentrt.testing._cache_sim import estimate_tokens

from .agents import TOOLS, research_agent
from .fixtures import CONSTRUCTED, IMPORTS, PACKAGE
from .helpers import SEARCH, harness, write_manifest

if TYPE_CHECKING:
    from pathlib import Path

    from agentrt.testing import RecordedRequest, Step

pytestmark = pytest.mark.anyio

ACME = {"account": "acme"}
# Allowed by TOOLS, by tool name then class order; browser (blocked) and files'
# delete_file (not in its methods) are never sent.
DEFERRED = ["read_file", "write_file", "send_mail", "make_slides", "shout", "web_search",
            "fetch_page"]


def prefix(request: RecordedRequest) -> str:
    return json.dumps({"tools": request.body.get("tools"), "system": request.body.get("system")},
                      sort_keys=True)


def loaded(request: RecordedRequest) -> list[str]:
    return [t["name"] for t in request.body["tools"] if not t.get("defer_loading")]


def deferred(request: RecordedRequest) -> list[str]:
    return [t["name"] for t in request.body["tools"] if t.get("defer_loading")]


def results(request: RecordedRequest) -> list[dict[str, Any]]:
    return [b for b in request.body["messages"][-1]["content"] if b["type"] == "tool_result"]


def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[ToolUse(name, arguments)])


def without_marker(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k != "cache_control"}


@pytest.mark.integration  # count_tokens through the real SDK
async def test_every_allowed_function_is_sent_deferred_and_nothing_is_imported(
        tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    async with harness(research_agent(manifest), [Reply(text="hello")],
                       identity=ACME, sdk=True) as (agent, server):
        result = await agent.run("hi")
        read = agent.runtime.catalogs.manifest(manifest)
        body = {k: v for k, v in server.requests[0].body.items() if k != "max_tokens"}
        loaded_only = [t for t in body["tools"] if not t.get("defer_loading")]
        async with server.client() as client:
            counted = await client.messages.count_tokens(**body)
            counted_bare = await client.messages.count_tokens(**{**body, "tools": loaded_only})
    assert not IMPORTS
    # the definitions came from the entries of the allowed tools alone: browser's unread
    assert read is not None and sorted(read._entries) == [
        "files", "mailer", "presentation", "shouty", "web_search"]
    request = server.requests[0]  # then the two count_tokens calls
    assert loaded(request) == ["read_notes", "initialize_tools", "search_tools"]
    assert deferred(request) == DEFERRED
    described = read_manifest(manifest)
    assert described is not None
    definitions = {}
    for name in described.names:
        details = described.entry(name)
        assert details is not None
        definitions.update((f["name"], f["definition"]) for f in details["functions"])
    for tool in request.body["tools"][3:]:  # exactly the manifest's definitions, deferred
        assert tool == {**definitions[tool["name"]], "defer_loading": True}
    # the breakpoint sits on the last tool that is loaded, never on a deferred one
    assert [t["name"] for t in request.body["tools"] if "cache_control" in t] == [
        "search_tools"]
    # no listing of the catalog: the model searches it
    assert request.body["tools"][1]["description"] == GUIDES_ONLY
    # deferred definitions cost nothing, in usage as in count_tokens
    assert result.usage.prompt_tokens == counted.input_tokens == counted_bare.input_tokens


async def test_initialize_tools_answers_with_guides_and_tool_references(tmp_path: Path) -> None:
    steps = [call("initialize_tools", tool_names=["presentation", "browser"]),
             call("make_slides", title="T", bullets=["x"]), Reply(text="done")]
    async with harness(research_agent(write_manifest(tmp_path)), steps, identity=ACME,
                       strict_deferred=True) as (agent, server):
        result = await agent.run("make slides")
    assert result.text == "done"
    [answer] = results(server.requests[1])
    content = answer["content"]
    assert isinstance(content, list) and "is_error" not in answer
    assert content[0]["type"] == "text"
    assert content[0]["text"].startswith(
        "Activated: files, web_search, presentation.\nNot activated: browser: tool 'browser' "
        "is not enabled for this agent.\n\n## files\n")
    assert content[1:] == [{"type": "tool_reference", "tool_name": name} for name in
                           ["read_file", "write_file", "web_search", "fetch_page",
                            "make_slides"]]
    assert prefix(server.requests[0]) == prefix(server.requests[1]) == prefix(server.requests[2])
    assert results(server.requests[2])[0]["content"] == "T: 1 slides"
    assert f"{PACKAGE}.browser" not in sys.modules and IMPORTS["browser"] == 0


async def test_a_deferred_function_is_activated_on_its_first_call(tmp_path: Path) -> None:
    steps = [call("search_tools", query="fetch a page", limit=1), call("fetch_page", url="u"),
             Reply(text="read")]
    async with harness(research_agent(write_manifest(tmp_path)), steps,
                       identity=ACME) as (agent, server):
        assert not IMPORTS
        await agent.run("read")
    assert not IMPORTS or dict(IMPORTS) == {"search": 1}
    assert results(server.requests[2])[0]["content"] == "contents of u"
    assert dict(IMPORTS) == {"search": 1} and CONSTRUCTED["web_search"] == 1
    assert prefix(server.requests[0]) == prefix(server.requests[1]) == prefix(server.requests[2])


@pytest.mark.parametrize("stream", [False, True])
async def test_server_search_finds_a_tool_the_model_then_calls(tmp_path: Path,
                                                               stream: bool) -> None:
    steps = [Reply(text="Looking.", searches=[ToolSearch("slide")],
                   tool_calls=[ToolUse("make_slides", {"title": "T", "bullets": []})]),
             Reply(text="done")]
    store = MemoryThreadStore()
    agent_cls = research_agent(write_manifest(tmp_path), tool_loading="server_search")
    async with harness(agent_cls, steps, identity=ACME, store=store,
                       stream=stream) as (agent, server):
        result = await agent.run("slides")
        stored = await store.messages(result.thread_id)
    first, second = server.requests
    # the search tool finds and shows tools: initialize_tools is not sent
    assert loaded(first) == ["read_notes", "tool_search_tool_regex"]
    assert first.body["tools"][1] == {"type": "tool_search_tool_regex_20251119",
                                      "name": "tool_search_tool_regex",
                                      "cache_control": {"type": "ephemeral"}}
    assert deferred(first) == DEFERRED
    assistant = second.body["messages"][1]
    blocks = [without_marker(b) for b in assistant["content"]]
    assert blocks == stored[1].content  # sent back exactly as stored
    text, use, found, call_block = blocks
    assert text == {"type": "text", "text": "Looking."}
    assert use["type"] == "server_tool_use" and use["id"].startswith("srvtoolu_01")
    assert (use["name"], use["input"]) == ("tool_search_tool_regex", {"query": "slide"})
    assert found == {"type": "tool_search_tool_result", "tool_use_id": use["id"],
                     "content": {"type": "tool_search_tool_search_result", "tool_references": [
                         {"type": "tool_reference", "tool_name": "make_slides"}]}}
    assert call_block["type"] == "tool_use" and call_block["name"] == "make_slides"
    # only the client tool ran: one tool_result, for make_slides
    assert [r["tool_use_id"] for r in results(second)] == [call_block["id"]]
    assert result.stats.tool_calls == 1 and CONSTRUCTED["presentation"] == 1
    assert prefix(first) == prefix(second)


async def test_server_search_sends_initialize_tools_only_when_the_config_names_it(
        tmp_path: Path) -> None:
    steps = [call("initialize_tools", tool_names=["presentation"]), Reply(text="done")]
    agent_cls = research_agent(write_manifest(tmp_path), tool_loading="server_search",
                               tools={**TOOLS, "tool_loader": True})
    async with harness(agent_cls, steps, identity=ACME) as (agent, server):
        result = await agent.run("slides")
    first, second = server.requests
    assert loaded(first) == ["read_notes", "initialize_tools", "tool_search_tool_regex"]
    description = first.body["tools"][1]["description"]
    assert "tool_search_tool_regex" in description and "Tools you can activate" not in description
    answer = results(second)[0]["content"]
    assert {"type": "tool_reference", "tool_name": "make_slides"} in answer
    assert result.stats.errors == 0
    assert prefix(first) == prefix(second)
    # by default the model that calls it anyway is told it is not there
    default = research_agent(write_manifest(tmp_path), tool_loading="server_search")
    async with harness(default, steps, identity=ACME) as (agent, server):
        result = await agent.run("slides")
    [refused] = results(server.requests[1])
    assert refused["is_error"] and "tool 'tool_loader' is disabled" in refused["content"]


@pytest.mark.parametrize("stream", [False, True])
async def test_pause_turn_sends_the_server_blocks_back_verbatim_and_continues(
        tmp_path: Path, stream: bool) -> None:
    use = {"type": "server_tool_use", "id": "srvtoolu_01PAUSE", "name": "tool_search_tool_bm25",
           "input": {"query": "send an e-mail"}}
    found = {"type": "tool_search_tool_result", "tool_use_id": "srvtoolu_01PAUSE",
             "content": {"type": "tool_search_tool_search_result",
                         "tool_references": [{"type": "tool_reference",
                                              "tool_name": "send_mail"}]}}
    steps = [Reply(content=[use, found], stop_reason="pause_turn"),
             call("send_mail", to="a@b", body="hi"), Reply(text="sent")]
    agent_cls = research_agent(write_manifest(tmp_path), tool_loading="server_search",
                               tool_search="bm25")
    store = MemoryThreadStore()
    async with harness(agent_cls, steps, identity=ACME, store=store, stream=stream,
                       deps={"api_key": "k", "sender": "me@x"}) as (agent, server):
        result = await agent.run("mail a@b")
        stored = await store.messages(result.thread_id)
    assert result.text == "sent" and result.iterations == 3
    assert server.requests[0].body["tools"][1]["type"] == "tool_search_tool_bm25_20251119"
    resumed = server.requests[1].body["messages"]
    # pause_turn: the assistant content goes back unchanged, with no "continue" turn
    assert [m["role"] for m in resumed] == ["user", "assistant"]
    assert [without_marker(b) for b in resumed[1]["content"]] == [use, found]
    assert stored[1].content == [use, found] and stored[1].metadata["stop_reason"] == "pause_turn"
    after = server.requests[2].body["messages"]
    assert [m["role"] for m in after] == ["user", "assistant", "user"]
    assert after[1]["content"][:2] == [use, found]  # the two replies of one turn, merged
    assert results(server.requests[2])[0]["content"] == "sent to a@b from me@x"
    assert result.stats.tool_calls == 1  # the server tool was never executed here


@pytest.mark.parametrize("loading", ["deferred", "server_search"])
async def test_a_forbidden_tool_is_never_sent_referenced_or_activated(
        tmp_path: Path, loading: str) -> None:
    searches = [ToolSearch("open_url|browser|delete_file")] if loading == "server_search" else []
    steps: list[Step] = [
        call("initialize_tools", tool_names=["browser"]),
        Reply(searches=searches, tool_calls=[ToolUse("open_url", {"url": "u"}),
                                             ToolUse("delete_file", {"path": "p"})]),
        Reply(text="no")]
    agent_cls = research_agent(write_manifest(tmp_path), tool_loading=loading,
                               tools={**TOOLS, "tool_loader": True})
    async with harness(agent_cls, steps, identity=ACME) as (agent, server):
        await agent.run("browse")
    for request in server.requests:
        names = [t.get("name") for t in request.body["tools"]]
        assert "open_url" not in names and "delete_file" not in names
    [refused] = results(server.requests[1])
    assert refused["is_error"] and refused["content"] == (
        "Not activated: browser: tool 'browser' is not enabled for this agent.\n")
    browser, delete = results(server.requests[2])
    assert browser["is_error"] and "tool 'browser' is not enabled" in browser["content"]
    assert delete["is_error"] and "(enabled: read_file, write_file)" in delete["content"]
    if loading == "server_search":
        found = server.requests[2].body["messages"][-2]["content"][1]
        assert found["content"]["tool_references"] == []  # not in tools: never found
    assert f"{PACKAGE}.browser" not in sys.modules


def _conversation(loading: str) -> list[Reply]:
    """Three user turns, twenty requests, three activations. ``initialize_tools`` loads a
    tool in append and deferred modes; a server-side search finds it in server_search."""

    def load(tool: str, query: str) -> Reply:
        if loading == "server_search":
            return Reply(searches=[ToolSearch(query)], tool_calls=[ToolUse("read_notes")])
        return call("initialize_tools", tool_names=[tool])

    return [
        call("read_notes"), load("web_search", "web_search|fetch_page"),
        call("web_search", query="a"), call("fetch_page", url="u1"),
        call("web_search", query="b"), Reply(text="first"),
        call("read_notes"), load("files", "read_file|write_file"), call("read_file", path="p"),
        call("read_file", path="q"), call("web_search", query="c"), Reply(text="second"),
        load("presentation", "slide"), call("make_slides", title="T", bullets=["x"]),
        call("fetch_page", url="u2"), call("write_file", path="p", text="t"),
        call("web_search", query="d"), call("fetch_page", url="u3"),
        call("read_file", path="p"), Reply(text="third"),
    ]


async def _converse(manifest: Path, loading: str) -> tuple[list[int], list[dict[str, int]]]:
    """The requests whose prefix changed, and each request's usage."""
    steps = _conversation(loading)
    assert len(steps) == 20
    store = MemoryThreadStore()
    async with harness(research_agent(manifest, tool_loading=loading), steps, store=store,
                       identity=ACME, min_cache_tokens=1) as (agent, server):
        thread_id = None
        for task in ("research", "read", "present"):
            result = await agent.run(task, thread_id=thread_id)
            thread_id = result.thread_id
            assert result.stats.errors == 0
        stored = await store.messages(result.thread_id)
    requests = server.requests
    assert len(requests) == 20
    for request in requests:  # last loaded tool, system, last message: 3 of the API's 4
        body = request.body
        marks = [t["name"] for t in body["tools"] if "cache_control" in t]
        assert len(marks) == 1 and marks == [loaded(request)[-1]]
        assert sum("cache_control" in b for m in body["messages"] for b in m["content"]
                   if isinstance(b, dict)) == 1
    changes = [i for i in range(1, 20) if prefix(requests[i]) != prefix(requests[i - 1])]
    usage = [m.metadata["usage"] for m in stored if "usage" in m.metadata]
    assert len(usage) == 20
    return changes, usage


async def test_deferred_loading_never_changes_the_prefix_append_does(tmp_path: Path) -> None:
    """The issue's proof: 20 requests, 3 activations; 3 prefix changes when tools are
    appended, none when they are deferred or found by the server's search."""
    manifest = write_manifest(tmp_path)
    runs = {mode: await _converse(manifest, mode)
            for mode in ("append", "deferred", "server_search")}
    assert runs["append"][0] == [2, 8, 13]  # after each initialize_tools
    assert runs["deferred"][0] == [] and runs["server_search"][0] == []
    read = {mode: [u["cache_read_input_tokens"] for u in usage]
            for mode, (_, usage) in runs.items()}
    written = {mode: sum(u["cache_creation_input_tokens"] for u in usage)
               for mode, (_, usage) in runs.items()}
    for mode in ("deferred", "server_search"):
        assert read[mode][0] == 0 and all(r > 0 for r in read[mode][1:]), (mode, read[mode])
    # append reads too (its list is append-only: the tools before the new ones survive),
    # but after each activation it reads less than the request before it
    for i in (2, 8, 13):
        assert read["append"][i] < read["append"][i - 1] < read["deferred"][i]
    assert sum(read["deferred"]) > sum(read["append"])
    assert written["deferred"] < written["append"]


async def test_a_function_the_manifest_does_not_describe_is_appended(tmp_path: Path) -> None:
    """Only a described function can be deferred; another one joins the tools list when
    its tool is activated (a prefix change, logged), and is not referenced."""
    manifest = write_manifest(tmp_path)
    lines = manifest.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line).get("import_path") == SEARCH)
    entry = json.loads(lines[at])  # its entry line; the index still lists fetch_page
    entry["functions"] = [f for f in entry["functions"] if f["name"] != "fetch_page"]
    lines[at] = json.dumps(entry)
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    steps = [call("initialize_tools", tool_names=["web_search"]), Reply(text="ok")]
    with capture_events() as logs:
        async with harness(research_agent(manifest), steps, identity=ACME) as (agent, server):
            await agent.run("search")
    first, second = server.requests
    assert "fetch_page" not in deferred(first) and "web_search" in deferred(first)
    assert loaded(second) == ["read_notes", "initialize_tools", "search_tools", "fetch_page"]
    assert "cache_control" in second.body["tools"][-1]
    assert results(second)[0]["content"][1:] == [{"type": "tool_reference",
                                                  "tool_name": "web_search"}]
    appended = [e for e in logs if e["event"] == "jit.appended"]
    assert [(e["tool"], e["functions"]) for e in appended] == [("web_search", ["fetch_page"])]


@pytest.mark.integration  # count_tokens through the real SDK
async def test_referenced_definitions_count_once_from_where_they_are_revealed(
        tmp_path: Path) -> None:
    """Through the agent: the request after initialize_tools costs its new blocks plus
    each referenced definition, once, and count_tokens agrees with the usage."""
    steps = [call("initialize_tools", tool_names=["mailer"]), Reply(text="ok")]
    agent_cls = research_agent(write_manifest(tmp_path), search_first=False)
    async with harness(agent_cls, steps, identity=ACME,
                       deps={"api_key": "k", "sender": "s"}, sdk=True) as (agent, server):
        await agent.run("mail")
        second = {k: v for k, v in server.requests[1].body.items() if k != "max_tokens"}
        async with server.client() as client:
            with_reference = (await client.messages.count_tokens(**second)).input_tokens
            answer = second["messages"][-1]["content"][0]
            answer["content"] = [b for b in answer["content"] if b["type"] == "text"]
            without = (await client.messages.count_tokens(**second)).input_tokens
    mail = next(t for t in server.requests[1].body["tools"] if t["name"] == "send_mail")
    reference = {"type": "tool_reference", "tool_name": "send_mail"}
    # the reference block itself, plus the definition it reveals (up to rounding)
    extra = estimate_tokens(mail) + estimate_tokens(reference)
    assert abs(with_reference - without - extra) <= 1


async def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        class Lazy(Agent):
            tool_config = {"tool_loading": "lazy"}
    assert caught.value.field == "Lazy.tool_config.tool_loading"
    assert "'append', 'deferred' or 'server_search'" in str(caught.value)
    with pytest.raises(ConfigError, match=r"Bm25.tool_config.tool_search: applies only with "
                                          r"tool_loading = 'server_search'"):
        class Bm25(Agent):
            tool_config = {"tool_search": "bm25"}
    no_loader = {**TOOLS, "tool_loader": False}
    manifest = write_manifest(tmp_path)
    with pytest.raises(ConfigError) as caught:
        async with harness(research_agent(manifest, tools={**no_loader, "tool_finder": False}),
                           []):
            pass
    assert caught.value.field == "ResearchAgent.tool_config.tool_loading"
    assert "needs search_tools (tool 'tool_finder') or initialize_tools" in str(caught.value)
    # server_search needs no loader: the search tool is the loaded tool
    agent_cls = research_agent(manifest, tools=no_loader, tool_loading="server_search")
    async with harness(agent_cls, [Reply(text="hi")]) as (agent, server):
        await agent.run("hi")
    assert loaded(server.requests[0]) == ["read_notes", "tool_search_tool_regex"]
