"""agentrt.context: each strategy, the policy's schedule against the prompt cache, and
threads already over the limit, on the fake model (50,000-token window)."""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest

from agentrt import Agent, MemoryThreadStore, ModelError, Runtime, Tool, function, load_settings
from agentrt.context import (
    CLEARED,
    COMPACTED,
    SUMMARY,
    ContextPolicy,
    ModelContext,
    model_context,
    register_model,
)
from agentrt.context._policy import MODELS
from agentrt.llm._usage import Usage
from agentrt.testing import FunctionModel
from agentrt.testing._context import PageReading, page_text
from agentrt.thread import Message

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from agentrt.testing import RecordedRequest

pytestmark = pytest.mark.anyio

MODEL = "claude-test-50k"
WINDOW = 50_000
BUDGET = 37_500  # 0.75 of the window


class Pages(Tool):
    def __init__(self, size: int = 20_480) -> None:
        self.size = size
        self.calls: list[int] = []

    @function(read_only=True)
    async def read_page(self, page: int) -> str:
        """One page of the book.

        Args:
            page: Page number.
        """
        self.calls.append(page)
        return page_text(page, self.size)


@asynccontextmanager
async def reading(policy: ContextPolicy | None, *, size: int = 20_480, per_run: int = 10,
                  window: int = WINDOW, store: MemoryThreadStore | None = None,
                  reread_every: int | None = None,
                  ) -> AsyncIterator[tuple[Agent, FunctionModel, Pages, MemoryThreadStore]]:
    pages = Pages(size)
    model = FunctionModel(PageReading(per_run, reread_every=reread_every),
                          context_windows={MODEL: window})
    store = store if store is not None else MemoryThreadStore()

    class Reader(Agent):
        tools = (pages,)
        pipeline = ("turn_dedup", "memo")
        context_policy = policy

    Reader.model = MODEL
    settings = load_settings(thread_store="memory", stream=False, max_iterations=50,
                             context_strategy="off")
    async with Runtime(settings, model=model, store=store) as runtime:
        yield Reader(runtime=runtime), model, pages, store


async def talk(agent: Agent, runs: int, thread_id: str | None = None) -> str:
    for index in range(runs):
        result = await agent.run(f"Please read the next pages ({index}).", thread_id=thread_id)
        assert result.stop_reason == "end_turn", result
        thread_id = result.thread_id
    assert thread_id is not None
    return thread_id


def policy(strategy: str = "auto", **options: Any) -> ContextPolicy:
    return ContextPolicy(strategy=strategy, windows={MODEL: WINDOW},  # type: ignore[arg-type]
                         **options)


def conversation(model: FunctionModel) -> list[RecordedRequest]:
    return [r for r in model.requests if not r.system.startswith("You write the running")]


def prompt_sizes(messages: list[Message]) -> list[int]:
    return [Usage(**m.metadata["usage"]).prompt_tokens for m in messages
            if m.role == "assistant"]


def results_of(request: RecordedRequest) -> list[dict[str, Any]]:
    return [b for m in request.messages if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


# The policy -------------------------------------------------------------------------

def test_the_budget_is_a_safe_fraction_of_the_models_window_from_an_extensible_table() -> None:
    assert model_context("claude-haiku-4-5-20251001").window == 200_000  # by prefix
    assert ContextPolicy().budget_for("claude-haiku-4-5", 4096) == 150_000
    assert ContextPolicy().budget_for("claude-test-small", 4096) == 150_000  # unknown: 200k
    assert policy().budget_for(MODEL, 4096) == BUDGET
    assert ContextPolicy(budget=20_000).budget_for(MODEL, 4096) == 20_000
    # the answer must fit too: never more than the window less max_tokens
    assert ContextPolicy(budget_fraction=1.0, windows={MODEL: WINDOW}).budget_for(
        MODEL, 8000) == 42_000
    register_model("claude-test-house", 64_000, edits=True)
    try:
        assert model_context("claude-test-house-v2") == ModelContext(64_000, edits=True)
        assert ContextPolicy().chain("claude-test-house-v2") == ("api_edit", "summary")
    finally:
        del MODELS["claude-test-house"]


def test_auto_prefers_the_apis_own_editing_then_client_stubs_then_a_summary() -> None:
    assert ContextPolicy().chain("claude-opus-5") == ("api_edit", "api_compact", "summary")
    assert ContextPolicy().chain("claude-haiku-4-5") == ("api_edit", "summary")
    assert ContextPolicy().chain("some-other-model") == ("stub", "summary")
    assert ContextPolicy(strategy="stub").chain("claude-opus-5") == ("stub", "summary")
    assert ContextPolicy(strategy="summary").chain("claude-opus-5") == ("summary",)
    assert ContextPolicy(strategy="off").chain("claude-opus-5") == ()


@pytest.mark.parametrize(("options", "field"), [
    ({"strategy": "squash"}, "strategy"), ({"budget": 10}, "budget"),
    ({"budget_fraction": 1.5}, "budget_fraction"), ({"edit_every": 0}, "edit_every"),
    ({"target_fraction": 0.9}, "target_fraction"), ({"windows": {"m": 5}}, "windows"),
])
def test_a_bad_policy_names_its_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"ContextPolicy.{field}"):
        ContextPolicy(**options)


def test_an_agent_with_a_bad_context_policy_fails_at_definition() -> None:
    from agentrt import ConfigError

    with pytest.raises(ConfigError, match="context_policy"):
        class Bad(Agent):
            context_policy = "stub"  # type: ignore[assignment]


# Each strategy ----------------------------------------------------------------------

@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_stub_replaces_old_results_with_a_stub_naming_the_call() -> None:
    async with reading(policy("stub")) as (agent, model, _, store):
        thread_id = await talk(agent, 2)
        last = conversation(model)[-1]
        stubs = [b for b in results_of(last) if str(b["content"]).startswith("[result of")]
        assert stubs and 'read_page({"page": 1})' in stubs[0]["content"]
        assert "call read_page again if you need it" in stubs[0]["content"]
        assert len(results_of(last)) - len(stubs) >= 3  # the newest are kept whole
        stored = await store.messages(thread_id)  # the store keeps every result whole
        assert all(len(str(b["content"])) == 20_480 for m in stored for b in m.blocks()
                   if b.get("type") == "tool_result")
        events = [e for e in await store.events(thread_id) if e.kind == CLEARED]
        cleared = [i for e in events for i in e.data["tool_use_ids"]]
        assert {b["tool_use_id"] for b in stubs} == set(cleared)
        assert events[0].data["strategy"] == "stub" and events[0].data["v"] == 1
        assert max(prompt_sizes(stored)) <= BUDGET


async def test_api_edit_sends_results_whole_and_the_api_clears_the_same_ones() -> None:
    async with reading(policy("api_edit")) as (agent, model, _, store):
        thread_id = await talk(agent, 2)
        last = conversation(model)[-1]
        assert last.headers["anthropic-beta"] == "context-management-2025-06-27"
        (edit,) = last.body["context_management"]["edits"]
        uses = sum(1 for m in last.messages if isinstance(m["content"], list)
                   for b in m["content"] if b.get("type") == "tool_use")
        cleared = {i for e in await store.events(thread_id) if e.kind == CLEARED
                   for i in e.data["tool_use_ids"]}
        assert edit == {"type": "clear_tool_uses_20250919",
                        "trigger": {"type": "tool_uses", "value": uses - len(cleared)},
                        "keep": {"type": "tool_uses", "value": uses - len(cleared)}}
        assert all(len(str(b["content"])) == 20_480 for b in results_of(last))  # sent whole
        stored = await store.messages(thread_id)
        reports = [m.metadata["context_management"] for m in stored
                   if "context_management" in m.metadata]
        applied = reports[-1]["applied_edits"][0]
        assert applied["cleared_tool_uses"] == len(cleared)  # what the API cleared: ours
        assert applied["cleared_input_tokens"] > 20_000
        assert max(prompt_sizes(stored)) <= BUDGET


async def test_summary_replaces_the_oldest_turns_and_its_cost_is_counted() -> None:
    async with reading(policy("summary")) as (agent, model, _, store):
        thread_id = await talk(agent, 1)
        result = await agent.run("And the next ones.", thread_id=thread_id)
        events = [e for e in await store.events(thread_id) if e.kind == SUMMARY]
        assert events and events[-1].data["summary"].startswith("Summary of a")
        summaries = [r for r in model.requests if r.system.startswith("You write the running")]
        last = conversation(model)[-1]
        first = last.messages[0]["content"][0]["text"]
        assert first.startswith("<summary of the earlier conversation>")
        assert events[-1].data["summary"] in first
        stored = await store.messages(thread_id)
        through = next(i for i, m in enumerate(stored) if m.id == events[-1].data["through"])
        assert len(last.messages) < len(stored) - through + 1  # older messages not sent
        assert len(stored) == 44  # all kept for audit and `threads show`
        # the run's usage holds its summary requests' (each counted once)
        replies = [m for m in stored[22:] if m.role == "assistant"]
        spent = sum((Usage(**m.metadata["usage"]) for m in replies), Usage())
        summary_cost = sum((Usage(**e.data["usage"]) for e in events
                            if e.created_at >= stored[22].created_at), Usage())
        assert summary_cost.output_tokens > 0 and summaries
        assert result.usage == spent + summary_cost


async def test_api_compact_stores_the_compaction_block_and_sends_it_back_first() -> None:
    async with reading(policy("api_compact")) as (agent, model, _, store):
        thread_id = await talk(agent, 2)
        stored = await store.messages(thread_id)
        compacted = [m for m in stored if m.role == "assistant"
                     and m.blocks()[0].get("type") == "compaction"]
        assert compacted and compacted[0].blocks()[0]["content"].startswith("Summary of")
        assert COMPACTED in {e.kind for e in await store.events(thread_id)}
        after = [r for r in conversation(model)
                 if r.messages and r.messages[0]["role"] == "assistant"]
        assert after and after[-1].messages[0]["content"][0]["type"] == "compaction"
        armed = [r for r in conversation(model) if "context_management" in r.body]
        assert armed[0].body["context_management"]["edits"] == [{
            "type": "compact_20260112", "trigger": {"type": "input_tokens", "value": 30_000}}]
        assert armed[0].headers["anthropic-beta"] == "compact-2026-01-12"
        # the compaction's own cost (an `iterations` entry) is in the reply's usage
        usage = Usage(**compacted[0].metadata["usage"])
        assert usage.prompt_tokens > 20_000
        assert max(prompt_sizes(stored)) <= BUDGET


async def test_off_sends_the_whole_thread_until_the_api_refuses_it() -> None:
    async with reading(None) as (agent, _, _, _):
        with pytest.raises(ModelError, match=r"prompt is too long: \d+ tokens > 50000 maximum"):
            await talk(agent, 2)


# Prompt caching survives ------------------------------------------------------------

async def test_edits_happen_at_most_once_per_n_requests_and_the_cache_survives_between() -> None:
    # 2 KB pages: a request grows slowly, so the schedule (edit_every) decides
    async with reading(policy("stub", edit_every=6), size=2048) as (agent, _, _, store):
        thread_id = await talk(agent, 12)
        stored = await store.messages(thread_id)
        events = await store.events(thread_id)
        replies = [m for m in stored if m.role == "assistant"]
        # the request after an edit is the first one whose prompt changed below the top
        edited_before = [any(previous.created_at < e.created_at < m.created_at for e in events)
                         for previous, m in itertools.pairwise(replies)]
        assert 2 <= sum(edited_before) <= len(replies) // 6 + 1
        for edited, previous, reply in zip(edited_before, replies, replies[1:], strict=False):
            before = Usage(**previous.metadata["usage"]).prompt_tokens
            read = reply.metadata["usage"]["cache_read_input_tokens"]
            if not edited and before >= 1024:  # the previous prompt is read from the cache
                assert read >= before - 50, (before, read)
        assert max(prompt_sizes(stored)) <= BUDGET


# Threads already over the limit -----------------------------------------------------

def _old_thread(turns: int) -> list[Message]:
    messages = []
    for page in range(1, turns + 1):
        call = {"type": "tool_use", "id": f"toolu_old{page}", "name": "read_page",
                "input": {"page": page}}
        messages += [Message(role="user", content=f"Read page {page}."),
                     Message(role="assistant", content=[call]),
                     Message(role="user", content=[{
                         "type": "tool_result", "tool_use_id": f"toolu_old{page}",
                         "content": page_text(page)}]),
                     Message(role="assistant", content=[{"type": "text", "text": "Done."}])]
    return messages


@pytest.mark.parametrize("strategy", ["auto", "stub", "api_edit", "summary", "api_compact"])
async def test_a_thread_already_over_the_window_is_recovered(strategy: str) -> None:
    store = MemoryThreadStore()
    info = await store.create_thread()
    await store.append(info.id, _old_thread(15))  # about 80,000 tokens: past the window
    async with reading(policy(strategy), store=store) as (agent, _, _, _):
        await talk(agent, 1, info.id)
        sizes = prompt_sizes((await store.messages(info.id))[60:])
        assert len(sizes) == 11 and max(sizes) <= BUDGET


async def test_a_huge_paste_is_clipped_in_the_request_and_kept_whole_in_the_store() -> None:
    async with reading(policy("auto")) as (agent, model, _, store):
        paste = "x" * 400_000  # 100,000 tokens in one message
        result = await agent.run(f"Summarize this: {paste}")
        assert result.stop_reason == "end_turn"
        sent = conversation(model)[0].messages[0]["content"][0]["text"]
        assert "characters cut here" in sent and len(sent) < 120_000
        stored = await store.messages(result.thread_id)
        assert stored[0].content == f"Summarize this: {paste}"
        assert max(prompt_sizes(stored)) <= BUDGET


async def test_a_request_the_api_refuses_as_too_long_is_refitted_and_sent_again() -> None:
    # the policy believes in a 50,000 window; the API's is 32,000: its 400 is the signal
    async with reading(policy("stub"), window=32_000) as (agent, model, _, store):
        thread_id = await talk(agent, 2)
        stored = await store.messages(thread_id)
        assert len(stored) == 44
        assert max(prompt_sizes(stored)) <= 32_000
        assert len(model.requests) > 22  # some were refused, then sent again smaller


# Over HTTP, through the real SDK (the beta messages API) ----------------------------

@pytest.mark.integration
@pytest.mark.parametrize("strategy", ["api_edit", "api_compact", "stub"])
@pytest.mark.parametrize("stream", [True, False])
async def test_each_strategy_over_the_sdk_and_the_fake_server(strategy: str,
                                                              stream: bool) -> None:
    from agentrt.testing import FakeAnthropicServer

    pages = Pages()
    script = PageReading(10)

    class Reader(Agent):
        tools = (pages,)
        context_policy = policy(strategy)

    Reader.model = MODEL
    settings = load_settings(thread_store="memory", stream=stream, max_iterations=50,
                             llm_max_retries=0)
    store = MemoryThreadStore()
    async with FakeAnthropicServer(script, context_windows={MODEL: WINDOW}) as server, \
            server.client() as client, Runtime(settings, client=client, store=store) as rt:
        thread_id = await talk(Reader(runtime=rt), 2)
        stored = await store.messages(thread_id)
        assert max(prompt_sizes(stored)) <= BUDGET
        counted = [r for r in server.requests if r.path == "/v1/messages/count_tokens"]
        # count_tokens only close to the budget: a few of the 22 requests at most
        assert len(counted) <= 4, len(counted)
        betas = {r.headers.get("anthropic-beta") for r in server.requests}
        if strategy == "api_edit":
            assert "context-management-2025-06-27" in betas
            assert any("context_management" in m.metadata for m in stored)
        elif strategy == "api_compact":
            assert "compact-2026-01-12" in betas
            assert any(m.blocks()[0].get("type") == "compaction" for m in stored
                       if m.role == "assistant")
        else:
            assert betas == {None}


# `agentrt threads show` ---------------------------------------------------------------

async def test_threads_show_lists_what_the_context_cleared_and_summarized(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    import anyio.to_thread

    from agentrt import SQLiteThreadStore
    from agentrt.cli import main

    db = tmp_path / "t.db"
    async with SQLiteThreadStore(db) as store, reading(
            policy("stub"), store=store) as (agent, _, _, _):  # type: ignore[arg-type]
        thread_id = await talk(agent, 2)
    monkeypatch.setenv("AGENTRT_SQLITE_PATH", str(db))
    monkeypatch.delenv("AGENTRT_THREAD_STORE", raising=False)
    out = io.StringIO()
    code = await anyio.to_thread.run_sync(lambda: main(["threads", "show", thread_id],
                                                       stdout=out))
    assert code == 0
    text = out.getvalue()
    assert "44 messages" in text.splitlines()[0]
    assert "context (what requests show of it; every message above is stored whole):" in text
    assert "tool results (stub)" in text
    out = io.StringIO()
    await anyio.to_thread.run_sync(lambda: main(["threads", "show", thread_id, "--json"],
                                                stdout=out))
    shown = json.loads(out.getvalue())
    assert {e["kind"] for e in shown["context"]} == {CLEARED}
    assert len(shown["messages"]) == 44


def _window(**state: Any) -> Any:
    from agentrt.context._window import ThreadWindow

    async def forget(blocks: list[dict[str, Any]]) -> None:
        return None

    window = ThreadWindow(policy=policy("stub", budget=4_000), model="claude-sonnet-4-5",
                          max_tokens=1024, store=MemoryThreadStore(), thread_id="t", events=[],
                          summarizer=None, counter=None, forget=forget,
                          add_usage=lambda usage: None)
    for name, value in state.items():
        setattr(window, name, value)
    return window


def test_a_view_extended_turn_by_turn_is_the_one_computed_afresh() -> None:
    """The window extends its last view by the messages appended since: through clears, a
    clipped paste, a summary and a compaction, it shows what a new window would, and sizes
    it the same."""
    from agentrt.thread import ThreadEvent

    history = [Message(role="user", content="look these up")]
    for turn in range(6):
        blocks: list[dict[str, Any]] = [{"type": "text", "text": f"turn {turn}"}]
        if turn == 4:
            blocks.insert(0, {"type": "compaction", "content": "what came before"})
        blocks.append({"type": "tool_use", "id": f"c{turn}", "name": "t", "input": {"n": turn}})
        history.append(Message(role="assistant", content=blocks, id=f"m{turn}"))
        history.append(Message(role="user", content=[
            {"type": "tool_result", "tool_use_id": f"c{turn}",
             "content": "x" * (20_000 if turn == 2 else 10)}]))
    def shown(view: Any) -> list[tuple[str, Any, str]]:  # (a summary's time is its view's)
        return [(m.role, m.content, m.id) for m in view.messages]

    window = _window()
    for count in range(1, len(history) + 1):
        if count == 5:
            window.cleared.update({"c0": "stub", "c1": "stub"})
        if count == 7:
            window.summary = ThreadEvent("context.summary", {"through": "m1", "summary": "s"})
        for stub_all in (True, False):
            got = window._view(history[:count], stub_all=stub_all)
            fresh = _window(cleared=dict(window.cleared), summary=window.summary)
            expected = fresh._view(history[:count], stub_all=stub_all)
            assert (shown(got), got.keys, got.start, got.hidden, got.in_view) == (
                shown(expected), expected.keys, expected.start, expected.hidden,
                expected.in_view), (count, stub_all)
            # its size: the new messages' added to the sum kept with the view extended
            assert window._size(got) == fresh._size(expected) == sum(
                fresh._sizes_of(expected)), (count, stub_all)
    assert window._view(history).start == 9  # the compaction's reply
