"""JITLoader and ThreadTools without the model loop: activation, dependencies,
single-flight, auto-activation, the method allow-list, failures, guides."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from agentrt import JITConfig, MemoryGuideCache, MissingParameterError, RunContext, Tool, function
from agentrt.jit import (
    Catalog,
    CatalogEntry,
    JITLoader,
    ThreadTools,
    ToolLoader,
    load_catalog,
    read_manifest,
)
from agentrt.testing import capture_events
from agentrt.tools._registry import BoundFunction

from .fixtures import CONSTRUCTED, IMPORT_GATE, IMPORT_STARTED, IMPORTS, PACKAGE
from .helpers import CATALOG, GATED, write_manifest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

RUN = RunContext(thread_id="thr_1", run_id="run_1", agent="A", identity={"account": "acme"})


def make_loader(tmp_path: Path, config: dict[str, Any] | None = None, *,
                core: tuple[Tool | type[Tool], ...] = (),
                extra: tuple[CatalogEntry, ...] = (), **kwargs: Any) -> JITLoader:
    manifest = read_manifest(write_manifest(tmp_path))
    base = load_catalog(core=[*(c if isinstance(c, type) else type(c) for c in core), ToolLoader],
                        listed=CATALOG, manifest=manifest)
    catalog = Catalog([*base, *extra]) if extra else base
    policy = JITConfig.parse(config or {}, field="config").bind(catalog)
    kwargs.setdefault("loading", "append")  # these tests watch the tools list grow
    return JITLoader(catalog, policy, core=core, prototype=RUN, **kwargs)


async def open_tools(loader: JITLoader) -> ThreadTools:
    return await loader.open_run(RUN, [])


def names(tools: ThreadTools) -> list[str]:
    return [d["name"] for d in tools.definitions()]


async def test_activation_loads_dependencies_first_and_once(tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path))
    assert names(tools) == ["initialize_tools"]
    with capture_events() as logs:
        report = await tools.activate("presentation")
    assert report.activated == ("files", "web_search", "presentation")
    assert report.ready == report.activated and not report.failed and not report.degraded
    assert names(tools) == ["initialize_tools", "read_file", "write_file", "delete_file",
                            "web_search", "fetch_page", "make_slides"]
    events = [e for e in logs if e["event"] == "jit.activate"]
    assert [e["tool"] for e in events] == ["files", "web_search", "presentation"]
    assert all(e["duration_ms"] >= 0 and e["thread_id"] == "thr_1" for e in events)
    again = await tools.activate_many(["presentation", "files"])
    assert again.activated == () and again.already_active == ("files", "presentation")
    assert dict(CONSTRUCTED) == {"files": 1, "web_search": 1, "presentation": 1}
    assert dict(IMPORTS) == {"files": 1, "search": 1, "presentation": 1}


async def test_a_blocked_dependency_degrades_its_dependent(tmp_path: Path) -> None:
    loader = make_loader(tmp_path, {"tools": {"presentation": True, "web_search": True}})
    tools = await open_tools(loader)
    with capture_events() as logs:
        report = await tools.activate("presentation")
    assert report.activated == ("web_search", "presentation")
    assert report.degraded == {"presentation": (
        "its dependency 'files' is not enabled for this agent",)}
    warning = next(e for e in logs if e["event"] == "jit.dependency_blocked")
    assert (warning["tool"], warning["dependency"]) == ("presentation", "files")
    assert IMPORTS["files"] == 0


async def test_refused_and_unknown_names_are_reported_not_raised(tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path, {"disabled": ["browser"]}))
    report = await tools.activate_many(["browser", "brwoser", "files"])
    assert report.failed == {"browser": "tool 'browser' is disabled for this agent",
                             "brwoser": "there is no tool 'brwoser' (did you mean 'browser'?)"}
    assert report.activated == ("files",)
    assert IMPORTS["browser"] == 0


async def test_calling_a_function_of_an_inactive_tool_activates_it(tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path))
    bound = await tools.resolve("fetch_page")
    assert isinstance(bound, BoundFunction) and bound.tool.name == "web_search"
    assert await bound.tool.fetch_page(url="u") == "contents of u"  # type: ignore[attr-defined]
    assert names(tools)[-2:] == ["web_search", "fetch_page"]
    assert isinstance(await tools.resolve("web_search"), BoundFunction)
    assert CONSTRUCTED["web_search"] == 1


async def test_a_blocked_tool_is_an_error_naming_why_and_is_never_imported(
        tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path, {"tools": {"files": True}}))
    assert await tools.resolve("open_url") == (
        "Function 'open_url' cannot be called: tool 'browser' is not enabled for this agent.")
    unknown = await tools.resolve("fech_page")
    assert isinstance(unknown, str) and "Unknown function 'fech_page'" in unknown
    assert "did you mean 'fetch_page'?" in unknown
    assert f"{PACKAGE}.browser" not in sys.modules
    assert names(tools) == ["initialize_tools"]


async def test_the_method_allow_list_is_enforced_at_call_time(tmp_path: Path) -> None:
    config = {"tools": {"files": {"methods": ["read_file"]}}, "allow_unlisted": True}
    tools = await open_tools(make_loader(tmp_path, config))
    refused = "Function 'write_file' of tool 'files' is not enabled for this agent " \
              "(enabled: read_file)."
    assert await tools.resolve("write_file") == refused
    assert "files" not in tools.active_tools()
    report = await tools.activate("files")  # what initialize_tools does
    assert report.activated == ("files",)
    assert names(tools) == ["initialize_tools", "read_file"]  # left-out methods never shown
    assert await tools.resolve("write_file") == refused  # and never callable
    assert isinstance(await tools.resolve("read_file"), BoundFunction)


async def test_a_missing_constructor_argument_fails_activation_naming_it(
        tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path))
    answer = await tools.resolve("send_mail")
    assert isinstance(answer, str)
    assert "tool 'mailer' cannot be constructed: parameter 'api_key' (str) is provided by " \
           "nothing" in answer
    assert "mailer" not in tools.active_tools()
    assert CONSTRUCTED["mailer"] == 0


async def test_a_constructor_that_raises_is_an_error_result(tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path))
    assert await tools.resolve("shout") == ("Function 'shout' cannot be called: constructing "
                                            "tool 'shouty' failed: OSError: no microphone.")
    assert loader_stats(tools)["failed"] == 1


def loader_stats(tools: ThreadTools) -> dict[str, int]:
    stats = tools.statistics()  # this run's
    return {"activated": stats.activated, "failed": stats.failed, "imported": stats.imported}


async def test_an_import_failure_is_reported(tmp_path: Path) -> None:
    broken = CatalogEntry(name="broken", source="config",
                          import_path=f"{PACKAGE}.broken:Broken", described=False)
    tools = await open_tools(make_loader(tmp_path, extra=(broken,)))
    report = await tools.activate("broken")
    assert report.failed["broken"].startswith(
        f"cannot import tool '{PACKAGE}.broken:Broken': RuntimeError: this module is broken")


async def import_started() -> None:
    """The gated module's import is running in its worker thread."""
    with anyio.fail_after(5):
        assert await anyio.to_thread.run_sync(IMPORT_STARTED.wait, 5)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_concurrent_activations_construct_once(tmp_path: Path) -> None:
    gated = CatalogEntry(name="gated", source="config", import_path=GATED, described=False)
    tools = await open_tools(make_loader(tmp_path, extra=(gated,)))
    reports: list[Any] = []

    async def activate() -> None:
        reports.append(await tools.activate("gated"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(activate)
        await import_started()
        await anyio.wait_all_tasks_blocked()  # four wait on the first, which waits on import
        assert IMPORTS["gated"] == 1 and CONSTRUCTED["gated"] == 0
        IMPORT_GATE.set()
    assert CONSTRUCTED["gated"] == 1 and IMPORTS["gated"] == 1
    assert all(not r.failed for r in reports)
    assert names(tools).count("gated_ping") == 1


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_cancelling_the_leader_does_not_strand_the_waiters(tmp_path: Path) -> None:
    gated = CatalogEntry(name="gated", source="config", import_path=GATED, described=False)
    tools = await open_tools(make_loader(tmp_path, extra=(gated,)))
    waiter: list[Any] = []

    async def join() -> None:
        waiter.append(await tools.activate("gated"))

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as leader:

            async def cancel_the_leader_mid_import() -> None:
                await import_started()
                tg.start_soon(join)
                await anyio.wait_all_tasks_blocked()
                leader.cancel()
                IMPORT_GATE.set()

            tg.start_soon(cancel_the_leader_mid_import)
            await tools.activate("gated")  # the leader: its import runs shielded
    assert waiter and waiter[0].activated == ("gated",) and not waiter[0].failed
    assert "gated" in tools.active_tools() and CONSTRUCTED["gated"] == 1


async def test_tools_activated_together_are_appended_by_layer_then_name(tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path))
    await tools.activate("web_search")
    await tools.activate("files")  # activated later, but in the same turn
    first = names(tools)
    assert first[1:] == ["read_file", "write_file", "delete_file", "web_search", "fetch_page"]
    await tools.activate("browser")
    assert names(tools) == [*first, "open_url"]  # appended; nothing earlier moves


async def test_guides_are_byte_identical_and_cached(tmp_path: Path) -> None:
    cache = MemoryGuideCache()
    loader = make_loader(tmp_path, guide_cache=cache)
    first, second = await open_tools(loader), await loader.open_run(
        RunContext(thread_id="thr_2", run_id="run_2", agent="A",
                   identity={"account": "acme"}), [])
    bound = await first.resolve("initialize_tools")
    assert isinstance(bound, BoundFunction)
    text = await bound.tool.initialize_tools(tool_names=["web_search"])  # type: ignore[attr-defined]
    assert text.startswith("Activated: web_search.\n\n## web_search\n\nSearch the web")
    assert "Prefer specific queries." in text  # the guide() hook
    assert "- web_search(query: string, limit?: integer = 3): Search the web" in text
    again = await second.activate("web_search")
    assert (await second.guides(again.ready))[0] in text
    assert cache.statistics().hits == 1 and cache.statistics().misses == 1


async def test_initialize_tools_fails_when_nothing_could_be_activated(tmp_path: Path) -> None:
    from agentrt import ToolError

    tools = await open_tools(make_loader(tmp_path, {"tools": {"files": True}}))
    bound = await tools.resolve("initialize_tools")
    assert isinstance(bound, BoundFunction)
    with pytest.raises(ToolError, match="Not activated: browser: tool 'browser' is not enabled"):
        await bound.tool.initialize_tools(tool_names=["browser"])  # type: ignore[attr-defined]


class Notes(Tool):
    """Per-thread notes."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id

    @function(read_only=True)
    async def read_notes(self) -> str:
        """The notes of this thread."""
        return self.thread_id


class NeedsKey(Tool):
    def __init__(self, key: str) -> None: ...

    @function
    async def use_key(self) -> str:
        """Uses the key."""
        return ""


async def test_core_tools_come_first_and_are_built_per_run(tmp_path: Path) -> None:
    tools = await open_tools(make_loader(tmp_path, core=(Notes,)))
    assert names(tools) == ["read_notes", "initialize_tools"]
    bound = await tools.resolve("read_notes")
    assert isinstance(bound, BoundFunction) and await bound.tool.read_notes() == "thr_1"  # type: ignore[attr-defined]


async def test_a_core_tool_missing_an_argument_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(MissingParameterError, match=r"tool 'needs_key' .* parameter 'key'"):
        make_loader(tmp_path, core=(NeedsKey,))


def _assistant(*calls: tuple[str, dict[str, Any]]) -> Any:
    from agentrt import Message

    return Message(role="assistant", content=[
        {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": arguments}
        for i, (name, arguments) in enumerate(calls)])


async def test_restoring_replays_the_history_without_building_anything(tmp_path: Path) -> None:
    from agentrt import Message

    loader = make_loader(tmp_path, {"disabled": ["browser"]})
    history = [
        Message(role="user", content="go"),
        _assistant(("fetch_page", {"url": "u"}), ("open_url", {"url": "u"})),
        Message(role="user", content="results..."),
        _assistant(("initialize_tools", {"tool_names": ["presentation", "nope"]}),
                   ("send_mail", {"to": "x", "body": "y"}),  # missing api_key: not restored
                   ("initialize_tools", {"tool_names": "not a list"})),  # invalid: ignored
    ]
    tools = await loader.open_run(RUN, history)
    assert tools.active_tools() == ["tool_loader", "web_search", "files", "presentation"]
    assert names(tools) == ["initialize_tools", "web_search", "fetch_page", "read_file",
                            "write_file", "delete_file", "make_slides"]
    assert not CONSTRUCTED and "browser" not in IMPORTS and "mailer" in IMPORTS
    bound = await tools.resolve("make_slides")  # built on first call
    assert isinstance(bound, BoundFunction) and dict(CONSTRUCTED) == {"presentation": 1}
    # The same thread, live: the same list, byte for byte.
    live = await open_tools(make_loader(tmp_path, {"disabled": ["browser"]}))
    await live.resolve("fetch_page")
    await live.resolve("open_url")
    live.definitions()
    await live.activate_many(["presentation", "nope"], trigger="initialize_tools")
    await live.resolve("send_mail")
    assert live.definitions() == tools.definitions()


async def test_a_stale_manifest_warns_and_the_real_class_wins(tmp_path: Path) -> None:
    from .helpers import SEARCH

    file = write_manifest(tmp_path)
    text = file.read_text()
    manifest = read_manifest(file)
    assert manifest is not None and manifest.tool("web_search").location == SEARCH
    stale = text.replace("Search the web and read pages.", "Old summary.")
    file.write_text(stale.replace(manifest.tool("web_search").fingerprint, "0" * 32),
                    encoding="utf-8")
    manifest = read_manifest(file)
    catalog = load_catalog(core=[ToolLoader], listed=CATALOG, manifest=manifest)
    assert catalog.entry("web_search").summary == "Old summary."
    loader = JITLoader(catalog, JITConfig().bind(catalog), prototype=RUN)
    tools = await open_tools(loader)
    with capture_events() as logs:
        report = await tools.activate("web_search")
    warning = next(e for e in logs if e["event"] == "jit.manifest_stale")
    assert warning["tool"] == "web_search" and warning["changed"] == ["summary"]
    guide = (await tools.guides(report.ready))[0]
    assert "Search the web and read pages." in guide and "Old summary" not in guide
