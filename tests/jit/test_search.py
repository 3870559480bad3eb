"""``search_tools``, deferred mode's client-side tool search: the ranking, the policy
(a forbidden tool is never found, for any query), the index built once per catalog, and
the whole path through the real SDK to the fake server, whose model cannot see a deferred
tool until a ``tool_reference`` in a ``tool_result`` reveals it."""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt.jit import JITConfig, JITLoader, ToolLoader, load_catalog, read_manifest
from agentrt.jit.search import SearchIndex, build_index, document_of, terms
from agentrt.jit.search_tools import ToolFinder
from agentrt.testing import Reply, ToolUse, capture_events

from .agents import TOOLS, research_agent
from .fixtures import IMPORTS
from .helpers import CATALOG, harness, write_manifest

if TYPE_CHECKING:
    from pathlib import Path

    from agentrt.testing import RecordedRequest

pytestmark = pytest.mark.anyio

ACME = {"account": "acme"}
FORBIDDEN = {"open_url", "delete_file"}  # browser is disabled; files allows two methods


def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=[ToolUse(name, arguments)])


def definition(name: str, description: str, **parameters: str) -> dict[str, Any]:
    return {"name": name, "description": description,
            "input_schema": {"type": "object", "properties": {
                p: {"type": "string", "description": d} for p, d in parameters.items()}}}


def prefix(request: RecordedRequest) -> str:
    return json.dumps([request.body.get("tools"), request.body.get("system")], sort_keys=True)


def test_words_are_split_lowered_stemmed_and_grouped() -> None:
    assert terms("listInvoices for the_customer") == ["list", "invoic", "custom"]
    assert terms("Refunding refunded refunds") == ["refund"] * 3
    assert terms("HTTPServer") == ["http", "serv"]
    # a few words tasks and docs put differently are searched as one
    assert terms("the client wants money back") == terms("customer refund")
    assert terms("reimbursed") == terms("reimbursement") == terms("refund")


def test_bm25_ranks_the_function_whose_words_match_best() -> None:
    index = SearchIndex([
        document_of(definition("create_invoice", "Create a draft invoice for a customer.",
                               customer_id="The customer"), "billing", "Invoices."),
        document_of(definition("refund_payment", "Refund a captured payment.",
                               payment_id="The payment", amount="How much"), "payments",
                    "Card payments."),
        document_of(definition("track_shipment", "Where a parcel is now.",
                               tracking_number="The carrier's number"), "shipping",
                    "Parcels and carriers."),
    ])
    assert [h.function for h in index.search("refund the customer's payment")] == [
        "refund_payment", "create_invoice"]
    assert index.search("where is my parcel", limit=1)[0].function == "track_shipment"
    assert index.search("invoices")[0].summary == "Create a draft invoice for a customer."


def test_a_match_sharing_only_common_words_is_not_revealed() -> None:
    """Under a fifth of the best score: what every function says (here "record") finds
    them all, and revealing their definitions would cost tokens for nothing."""
    index = SearchIndex([document_of(definition(f"read_{kind}", f"Read a record of kind {kind}."),
                                     kind, "") for kind in ("invoice", "parcel", "ticket", "lead")])
    assert [h.function for h in index.search("invoice record")] == ["read_invoice"]
    assert len(index.search("record")) == 4
    assert index.search("quantum chromodynamics") == []
    assert index.search("invoice", limit=0) == []


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    manifest = read_manifest(write_manifest(tmp_path_factory.mktemp("search")))
    catalog = load_catalog(core=[ToolLoader, ToolFinder], listed=CATALOG, manifest=manifest)
    policy = JITConfig(tools=TOOLS, entry_points=False).bind(catalog)
    found = JITLoader(catalog, policy, loading="deferred").search_index()
    assert found is not None and not found.built
    return found.get()


def test_the_index_holds_the_allowed_deferred_functions_only(index: SearchIndex) -> None:
    assert sorted(d.function for d in index.documents) == sorted(
        ["read_file", "write_file", "send_mail", "make_slides", "shout", "web_search",
         "fetch_page"])
    assert not IMPORTS  # from the manifest's entries


# every word of every tool of the catalog, forbidden ones included
WORDS = ["open", "url", "browser", "headless", "delete", "file", "read", "write", "slide",
         "deck", "search", "web", "page", "mail", "send", "shout", "files", "path", "drive"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS) | st.text(max_size=12), max_size=8),
       st.integers(min_value=0, max_value=30))
def test_a_forbidden_tool_is_never_found(index: SearchIndex, words: list[str],
                                         limit: int) -> None:
    hits = index.search(" ".join(words), limit)
    assert len(hits) <= limit
    assert not FORBIDDEN & {h.function for h in hits}
    assert {h.tool for h in hits} <= {"files", "mailer", "presentation", "shouty", "web_search"}


async def test_the_index_is_built_once_per_catalog(tmp_path: Path) -> None:
    agent_cls = research_agent(write_manifest(tmp_path))
    async with harness(agent_cls, [Reply(text="a"), Reply(text="b")]) as (agent, _):
        await agent.run("x")
        other = agent_cls(agent.runtime)
        await other.run("y")
        first = agent._manager.tools.agent_tools().finder  # type: ignore[attr-defined]
        second = other._manager.tools.agent_tools().finder  # type: ignore[attr-defined]
    assert first is not None and first is second and not first.built  # nobody searched


@pytest.mark.integration  # the real SDK over HTTP
@pytest.mark.parametrize("stream", [False, True])
async def test_search_tools_reveals_what_it_finds_and_the_model_calls_it(
        tmp_path: Path, stream: bool) -> None:
    steps = [call("search_tools", query="build a slide deck", limit=2),
             call("make_slides", title="T", bullets=["x"]), Reply(text="done")]
    async with harness(research_agent(write_manifest(tmp_path), search_first=False), steps,
                       identity=ACME, sdk=True, stream=stream, strict_deferred=True,
                       min_cache_tokens=64) as (agent, server):
        result = await agent.run("slides please")
        stored = await agent.runtime.store.messages(result.thread_id)
        assert not IMPORTS or set(IMPORTS) == {"presentation", "files", "search"}
        second = {k: v for k, v in copy.deepcopy(server.requests[1].body).items()
                  if k not in ("max_tokens", "stream")}
        async with server.client() as client:
            counted = (await client.messages.count_tokens(**second)).input_tokens
            answer = second["messages"][-1]["content"][0]
            answer["content"] = [b for b in answer["content"] if b["type"] == "text"]
            without = (await client.messages.count_tokens(**second)).input_tokens
    assert result.text == "done"
    first, after_search, after_call = server.requests[:3]
    [found] = [b for b in after_search.body["messages"][-1]["content"]
               if b["type"] == "tool_result"]
    text, *references = found["content"]
    # one match: no other function shares a word with the query
    assert text == {"type": "text", "text": "Loaded:\n- make_slides (presentation)"}
    assert references == [{"type": "tool_reference", "tool_name": "make_slides"}]
    # the API expands what the references name: the revealed definitions are billed
    assert counted > without
    [made] = [b for b in after_call.body["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert made["content"] == "T: 1 slides"
    assert prefix(first) == prefix(after_search) == prefix(after_call)
    # the search changes no prefix: every request after the first reads the cache
    reads = [m.metadata["usage"]["cache_read_input_tokens"] for m in stored
             if m.role == "assistant"]
    assert len(reads) == 3 and reads[0] == 0 and all(r > 0 for r in reads[1:])
    assert "Tools you can activate" not in json.dumps(first.body["tools"])


async def test_searching_activates_nothing_and_an_empty_search_says_so(tmp_path: Path) -> None:
    steps = [call("search_tools", query="zzz qqq"), call("search_tools", query="mail"),
             Reply(text="ok")]
    with capture_events() as logs:
        async with harness(research_agent(write_manifest(tmp_path)), steps, identity=ACME,
                           strict_deferred=True) as (agent, server):
            await agent.run("x")
            tools = agent._manager.tools.agent_tools()  # type: ignore[attr-defined]
    built = [e for e in logs if e["event"] == "jit.search_index_built"]
    assert [e["documents"] for e in built] == [7]  # once, on the first search
    searches = [e for e in logs if e["event"] == "jit.search"]
    assert [(e["query"], e["found"]) for e in searches] == [("zzz qqq", []),
                                                            ("mail", ["send_mail"])]
    assert not IMPORTS
    empty = server.requests[1].body["messages"][-1]["content"][0]
    assert empty["content"].startswith("No tool matches 'zzz qqq'.")
    assert "is_error" not in empty
    mail = server.requests[2].body["messages"][-1]["content"][0]["content"]
    assert {"type": "tool_reference", "tool_name": "send_mail"} in mail
    assert tools.finder is not None and tools.finder.built


async def test_a_config_without_tool_finder_falls_back_to_the_listing(tmp_path: Path) -> None:
    agent_cls = research_agent(write_manifest(tmp_path), tools={**TOOLS, "tool_finder": False})
    async with harness(agent_cls, [Reply(text="hi")]) as (agent, server):
        await agent.run("hi")
    names = [t["name"] for t in server.requests[0].body["tools"] if not t.get("defer_loading")]
    assert names == ["read_notes", "initialize_tools"]
    assert "Tools you can activate:\n- files:" in server.requests[0].body["tools"][1][
        "description"]


@pytest.mark.parametrize("loading", ["append", "server_search"])
async def test_only_deferred_mode_gets_search_tools(tmp_path: Path, loading: str) -> None:
    agent_cls = research_agent(write_manifest(tmp_path), tool_loading=loading)
    async with harness(agent_cls, [Reply(text="hi")]) as (agent, server):
        await agent.run("hi")
    assert "search_tools" not in [t["name"] for t in server.requests[0].body["tools"]]


async def test_a_tool_the_manifest_does_not_describe_is_found_by_name_and_loaded_by_name(
        tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    lines = manifest.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if json.loads(line).get("name") == "mailer")
    entry = json.loads(lines[at])
    del entry["functions"]  # nothing says what its functions are until it is imported
    lines[at] = json.dumps(entry)
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    steps = [call("search_tools", query="mailer"),
             call("initialize_tools", tool_names=["mailer"]), Reply(text="ok")]
    async with harness(research_agent(manifest), steps, identity=ACME,
                       deps={"api_key": "k", "sender": "s"},
                       strict_deferred=True) as (agent, server):
        await agent.run("mail")
    found = server.requests[1].body["messages"][-1]["content"][0]
    assert found["content"] == ("Loaded:\n- tool mailer: Send e-mail. (load it with "
                                "initialize_tools to see its functions)")
    assert "send_mail" in [t["name"] for t in server.requests[2].body["tools"]
                           if not t.get("defer_loading")]  # appended when activated


@pytest.mark.integration  # the real SDK over HTTP
async def test_through_the_sdk_a_search_never_reveals_a_forbidden_function(
        tmp_path: Path) -> None:
    steps = [call("search_tools", query="open url in headless browser, delete file", limit=20),
             Reply(text="no")]
    async with harness(research_agent(write_manifest(tmp_path)), steps, identity=ACME,
                       sdk=True, strict_deferred=True) as (agent, server):
        await agent.run("browse")
    [answer] = [b for b in server.requests[1].body["messages"][-1]["content"]
                if b["type"] == "tool_result"]
    named = {b["tool_name"] for b in answer["content"] if b["type"] == "tool_reference"}
    assert named and not named & FORBIDDEN  # read_file and write_file, say; never these
    assert "open_url" not in answer["content"][0]["text"]
    for request in server.requests:
        assert not FORBIDDEN & {t["name"] for t in request.body["tools"]}


@pytest.mark.integration  # the real SDK over HTTP
async def test_through_the_sdk_initialize_tools_still_loads_by_name_with_guides(
        tmp_path: Path) -> None:
    """Issue 20, point 4: beside search_tools, an agent that activates tools by name gets
    their guides and the references that let the model call them."""
    steps = [call("initialize_tools", tool_names=["presentation"]),
             call("make_slides", title="T", bullets=["x", "y"]), Reply(text="done")]
    async with harness(research_agent(write_manifest(tmp_path)), steps, identity=ACME,
                       sdk=True, strict_deferred=True) as (agent, server):
        result = await agent.run("slides")
    assert result.text == "done"
    [loaded] = [b for b in server.requests[1].body["messages"][-1]["content"]
                if b["type"] == "tool_result"]
    text, *references = loaded["content"]
    assert text["text"].startswith("Activated: files, web_search, presentation.\n\n## files\n")
    assert "## presentation" in text["text"]
    assert {"type": "tool_reference", "tool_name": "make_slides"} in references
    [made] = [b for b in server.requests[2].body["messages"][-1]["content"]
              if b["type"] == "tool_result"]
    assert made["content"] == "T: 2 slides"


@pytest.mark.integration  # the real SDK over HTTP, a model that cannot see unrevealed tools
async def test_a_new_message_is_searched_first_so_the_model_calls_what_it_needs_at_once(
        tmp_path: Path) -> None:
    """search_first: the user's message is the query of a search_tools exchange stored
    before the first request, so the first request already reveals the best matches and
    the task costs no search round trip; a message that finds nothing new adds nothing."""
    steps = [call("make_slides", title="T", bullets=["x"]), Reply(text="done"),
             Reply(text="again"), Reply(text="fine")]
    async with harness(research_agent(write_manifest(tmp_path), search_first=True), steps,
                       identity=ACME, sdk=True, strict_deferred=True,
                       min_cache_tokens=64) as (agent, server):
        result = await agent.run("build a slide deck")
        # the same tool again, then nothing the catalog knows: no exchange either time
        again = await agent.run("another slide deck", thread_id=result.thread_id)
        await agent.run("zzz qqq", thread_id=result.thread_id)
        stored = await agent.runtime.store.messages(result.thread_id)
    assert result.text == "done" and again.text == "again"
    first = server.requests[0].body["messages"]
    assert [m["role"] for m in first] == ["user", "assistant", "user"]
    [use] = first[1]["content"]
    assert use["type"] == "tool_use" and use["name"] == "search_tools"
    assert use["input"] == {"query": "build a slide deck", "limit": 5}
    [answer] = first[2]["content"]
    assert answer["tool_use_id"] == use["id"]
    assert {"type": "tool_reference", "tool_name": "make_slides"} in answer["content"]
    assert "open_url" not in json.dumps(answer)  # forbidden: never found
    # 2 requests for the first task (a call, then the answer), none spent on searching
    assert len(server.requests) == 4
    assert [m.metadata.get("synthetic") for m in stored if m.role == "assistant"] == [
        "search_first", None, None, None, None]
    assert all(r.body["messages"][-1]["role"] == "user" for r in server.requests)
    # the exchange is part of the thread: every request after the first reads the cache
    reads = [m.metadata["usage"]["cache_read_input_tokens"] for m in stored
             if "usage" in m.metadata]
    assert reads[0] == 0 and all(r > 0 for r in reads[1:])


async def test_without_search_first_the_model_must_search(tmp_path: Path) -> None:
    """The same first reply with search_first off (the default): the fake's model cannot see the
    tool (nothing revealed it), as the API's could not, so the call never happens."""
    steps = [call("make_slides", title="T", bullets=["x"]), Reply(text="done")]
    async with harness(research_agent(write_manifest(tmp_path), search_first=False), steps,
                       identity=ACME, strict_deferred=True) as (agent, server):
        with pytest.raises(Exception, match="make_slides"):
            await agent.run("build a slide deck")
    assert len(server.requests[0].body["messages"]) == 1


def _rewrite_section(file: Path, change: Any) -> None:
    lines = file.read_text().splitlines()
    section = json.loads(lines[-1])
    change(section)
    file.write_text("\n".join([*lines[:-1], json.dumps(section)]) + "\n")


async def test_the_index_loads_its_words_from_the_manifest_without_importing(
        tmp_path: Path) -> None:
    """`agentrt tools manifest` stores each function's words (the `search` section): the
    index built from them is the one built in memory, and nothing is imported."""
    manifest = write_manifest(tmp_path)
    section = read_manifest(manifest).section("search")  # type: ignore[union-attr]
    assert section is not None and "make_slides" in section["tools"]["presentation"][
        "functions"]
    agent_cls = research_agent(manifest, search_first=False)
    async with harness(agent_cls, [Reply(text="a")]) as (agent, _):
        loader = agent._manager.tools  # type: ignore[attr-defined]
        index = loader.search_index().get()
        deferred = loader.agent_tools().deferred
        catalog = loader.catalog
        owners = {d["name"]: catalog.tool_for(d["name"]) for d in deferred.definitions}
        summaries = {t: catalog.entry(t).summary for t in set(owners.values())}
        memory = build_index(deferred.definitions, owners, summaries,
                             undescribed=deferred.undescribed)
    assert not IMPORTS
    assert [(d.function, d.words, d.summary) for d in index.documents] == [
        (d.function, d.words, d.summary) for d in memory.documents]


async def test_stored_words_are_used_only_while_current(tmp_path: Path) -> None:
    """A tool whose fingerprint no longer matches (its class changed since the manifest
    was written) is normalised again in memory; the others' stored words are used (here
    made recognisable), and a section written under other rules is ignored whole."""
    manifest = write_manifest(tmp_path)

    def tamper(section: dict[str, Any]) -> None:
        tools = section["tools"]
        tools["presentation"]["functions"]["make_slides"] = "zzqx"
        tools["files"]["fingerprint"] = "0" * 32
        tools["files"]["functions"]["read_file"] = "zzqy"

    _rewrite_section(manifest, tamper)
    async with harness(research_agent(manifest, search_first=False), []) as (agent, _):
        index = agent._manager.tools.search_index().get()  # type: ignore[attr-defined]
    assert [h.function for h in index.search("zzqx")] == ["make_slides"]
    assert index.search("zzqy") == []
    assert index.search("read a file")[0].function == "read_file"

    def other_rules(section: dict[str, Any]) -> None:
        section["format"] = "older"

    _rewrite_section(manifest, other_rules)
    async with harness(research_agent(manifest, search_first=False), []) as (agent, _):
        index = agent._manager.tools.search_index().get()  # type: ignore[attr-defined]
    assert index.search("zzqx") == []
    assert index.search("build slides")[0].function == "make_slides"
