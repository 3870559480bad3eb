from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anthropic
import pytest

from agentrt import (
    MemoryThreadStore,
    Message,
    MissingParameterError,
    RunContext,
    Runtime,
    load_settings,
)
from agentrt.jit import ParameterDetector, Provided, RuntimeSources
from agentrt.tools import ThreadView

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import redis.asyncio as aioredis
    from agentrt.thread.manager import ThreadManager

    from agentrt import Settings, ThreadStore


class Database:
    """Something an application registers in deps."""


class Everything:
    def __init__(self, thread_id: str, account_id: str, project_id: str, run: RunContext,
                 settings: Settings, store: ThreadStore, view: ThreadView,
                 llm: anthropic.AsyncAnthropic, db: Database, agent_name: str,
                 timeout: float = 3.0) -> None:
        self.__dict__.update(locals())


class NoInit:
    pass


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with anthropic.AsyncAnthropic(api_key="k", base_url="http://127.0.0.1:9") as client:
        yield Runtime(load_settings(thread_store="memory"), client=client,
                      store=MemoryThreadStore())


def _run(**deps: Any) -> RunContext:
    return RunContext(thread_id="thr_1", run_id="run_1", agent="Helper",
                      identity={"account": "acme", "project_id": "p9"}, deps=deps)


@pytest.mark.anyio
async def test_fills_by_name_and_by_type(runtime: Runtime) -> None:
    db = Database()
    provided = RuntimeSources(runtime).provided(_run(db_handle=db))
    kwargs = ParameterDetector().arguments(Everything, "everything", provided)
    assert kwargs["thread_id"] == "thr_1" and kwargs["agent_name"] == "Helper"
    assert kwargs["account_id"] == "acme" and kwargs["project_id"] == "p9"
    assert kwargs["run"].run_id == "run_1"
    assert kwargs["settings"] is runtime.settings and kwargs["store"] is runtime.store
    assert kwargs["view"].thread_id == "thr_1" and kwargs["llm"] is runtime.model.sdk
    assert kwargs["db"] is db  # registered under another name: found by its type
    assert "timeout" not in kwargs  # has a default; nothing named it


@pytest.mark.anyio
async def test_application_deps_win_by_name(runtime: Runtime) -> None:
    provided = RuntimeSources(runtime).provided(_run(thread_id="override", timeout=9.5))
    kwargs = ParameterDetector().arguments(Everything, "x", Provided(
        {**provided.by_name, "view": None, "db": None}, provided.by_type))
    assert kwargs["thread_id"] == "override" and kwargs["timeout"] == 9.5


def test_a_required_parameter_nothing_provides_names_tool_and_parameter() -> None:
    class Mail:
        def __init__(self, api_key: str, retries: int = 2) -> None: ...

    with pytest.raises(MissingParameterError) as caught:
        ParameterDetector().arguments(Mail, "mailer", RuntimeSources().provided(_run()))
    assert caught.value.tool == "mailer" and caught.value.parameter == "api_key"
    assert "tool 'mailer' cannot be constructed: parameter 'api_key' (str) is provided by " \
           "nothing: pass it as Agent(deps={'api_key': ...})" in str(caught.value)


def test_two_values_of_one_type_are_ambiguous() -> None:
    class Needs:
        def __init__(self, database: Database) -> None: ...

    provided = RuntimeSources().provided(_run(a=Database(), b=Database()))
    with pytest.raises(MissingParameterError, match=r"'database' .* is ambiguous"):
        ParameterDetector().arguments(Needs, "needs", provided)


def test_builtin_types_are_never_matched_by_type() -> None:
    class Needs:
        def __init__(self, token: str) -> None: ...

    with pytest.raises(MissingParameterError, match="'token'"):
        ParameterDetector().arguments(Needs, "needs", RuntimeSources().provided(_run(x="s")))


@pytest.mark.anyio
async def test_a_hint_imported_under_type_checking_matches_by_class_name(runtime: Runtime) -> None:
    from .fixtures.search import WebSearch  # `client: anthropic.AsyncAnthropic | None`

    provided = RuntimeSources(runtime).provided(_run())
    params = {p.name: p for p in ParameterDetector().parameters(WebSearch)}
    assert params["client"].annotation == "anthropic.AsyncAnthropic | None"
    kwargs = ParameterDetector().arguments(WebSearch, "web_search", provided)
    assert kwargs == {"thread_id": "thr_1", "client": runtime.model.sdk}


def test_introspection_happens_once_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    detector = ParameterDetector()
    calls = []
    original = ParameterDetector._introspect

    def counting(cls: type) -> Any:
        calls.append(cls)
        return original(cls)

    monkeypatch.setattr(ParameterDetector, "_introspect", staticmethod(counting))
    for _ in range(3):
        detector.arguments(Everything, "x", RuntimeSources().provided(_run()).__class__(
            {n: None for n in ("thread_id", "account_id", "project_id", "run", "settings",
                               "store", "view", "llm", "db", "agent_name")}, []))
    assert calls == [Everything]
    assert detector.parameters(NoInit) == ()


@pytest.mark.anyio
async def test_the_thread_is_offered_read_only_and_the_loop_is_not(runtime: Runtime) -> None:
    class Summarizer:
        def __init__(self, thread: ThreadView) -> None:
            self.thread = thread

    class ByType:
        def __init__(self, history: ThreadView) -> None:
            self.history = history

    class WantsTheLoop:
        def __init__(self, thread_manager: ThreadManager) -> None: ...

    info = await runtime.store.create_thread()
    await runtime.store.append(info.id, [Message(role="user", content="hello")])
    run = RunContext(thread_id=info.id, run_id="r", agent="A")
    provided = RuntimeSources(runtime).provided(run)
    view = ParameterDetector().arguments(Summarizer, "s", provided)["thread"]
    assert isinstance(view, ThreadView) and view.thread_id == info.id
    assert [m.content for m in await view.messages()] == ["hello"]
    assert not hasattr(view, "append")
    assert ParameterDetector().arguments(ByType, "b", provided)["history"].thread_id == info.id
    with pytest.raises(MissingParameterError, match="'thread_manager'"):
        ParameterDetector().arguments(WantsTheLoop, "w", provided)


@pytest.mark.anyio
async def test_the_sdk_client_is_offered_only_when_the_model_has_one(runtime: Runtime) -> None:
    class Needs:
        def __init__(self, client: anthropic.AsyncAnthropic) -> None: ...

    assert ParameterDetector().arguments(Needs, "n", RuntimeSources(runtime).provided(
        _run()))["client"] is runtime.model.sdk
    runtime.model = type("ModelDouble", (), {})()  # type: ignore[assignment]  # no .sdk
    provided = RuntimeSources(runtime).provided(_run())
    assert "client" not in provided.by_name and "anthropic_client" not in provided.by_name
    with pytest.raises(MissingParameterError, match="'client'"):
        ParameterDetector().arguments(Needs, "n", provided)


@pytest.mark.anyio
async def test_the_runtimes_redis_connection_is_offered() -> None:
    class Cache:  # `aioredis` is a TYPE_CHECKING import: matched by the class name
        def __init__(self, conn: aioredis.Redis, redis_gate: object) -> None: ...

    settings = load_settings(thread_store="memory", redis_url="redis://127.0.0.1:1/0")
    async with anthropic.AsyncAnthropic(api_key="k", base_url="http://127.0.0.1:9") as client, \
            Runtime(settings, client=client, store=MemoryThreadStore()) as runtime:
        assert runtime.redis is not None
        kwargs = ParameterDetector().arguments(
            Cache, "cache", RuntimeSources(runtime).provided(_run()))
        assert kwargs["conn"] is runtime.redis.client  # by type
        assert kwargs["redis_gate"] is runtime.redis  # by name
