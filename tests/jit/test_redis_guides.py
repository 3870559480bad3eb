"""The Redis tool-guide cache on a real server, a local cluster and fakeredis."""

from __future__ import annotations

from typing import Any

import pytest

from agentrt._redis import RedisGate
from agentrt.jit.guides import guide_key
from agentrt.jit.redis_guides import RedisGuideCache, tool_of
from agentrt.testing import capture_events

pytestmark = pytest.mark.anyio


@pytest.fixture
def gate(any_redis_gate: RedisGate) -> RedisGate:
    """Each test here on a real server, a local cluster and fakeredis."""
    return any_redis_gate


def _key(tool: str, text: str = "x") -> str:
    return guide_key(tool, "1", text, ["a", "b"])


async def test_byte_identical_across_instances_in_one_round_trip(gate: RedisGate) -> None:
    writer, reader = RedisGuideCache(gate), RedisGuideCache(gate)  # two processes' caches
    guides = {_key("files"): "## files\nRead and write files. ü", _key("web"): "## web\n..."}
    await writer.set_many(guides)
    calls: list[Any] = []
    original = gate.run

    async def counting(op: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["what"])
        return await original(op, **kwargs)

    gate.run = counting  # type: ignore[method-assign]
    found = await reader.get_many([*guides, _key("missing")])
    assert found == guides and calls == ["tool guides get"]
    assert reader.statistics().hits == 2 and reader.statistics().misses == 1


async def test_invalidate_one_tool_and_all_by_generation(gate: RedisGate) -> None:
    cache = RedisGuideCache(gate)
    await cache.warm({_key("files"): "f", _key("files", "other"): "f2", _key("web"): "w"})
    assert await cache.invalidate("files") == 2
    assert await cache.get_many([_key("files"), _key("web")]) == {_key("web"): "w"}
    generation = await cache.invalidate_all()
    assert generation == 1 and await cache.get(_key("web")) is None
    await cache.set(_key("web"), "w2")
    assert await cache.get(_key("web")) == "w2"


async def test_entries_have_a_ttl(gate: RedisGate) -> None:
    cache = RedisGuideCache(gate, ttl=60)
    await cache.set(_key("files"), "f")
    ttl = await gate.client.pttl(f"{cache.base}:0:{_key('files')}")
    assert 0 < ttl <= 60_000


async def test_an_outage_is_a_miss_not_an_error() -> None:
    gate = RedisGate("redis://127.0.0.1:1/0", timeout=0.2)
    cache = RedisGuideCache(gate)
    with capture_events() as logs:
        await cache.set(_key("files"), "f")
        assert await cache.get(_key("files")) is None
    assert cache.errors == 2
    assert [e["event"] for e in logs].count("redis.unavailable") == 1
    await gate.aclose()


def test_tool_of_reads_the_tool_from_a_guide_key() -> None:
    assert tool_of(_key("sb_files_tool")) == "sb_files_tool"
    assert tool_of("plain") == "plain"


@pytest.mark.integration
async def test_two_processes_send_byte_identical_guides_through_redis(
        tmp_path: Any, redis_gate: Any, redis_url: str, redis_prefix: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runtimes (as two processes would) answer initialize_tools with the same bytes;
    the second reads the guides the first rendered from Redis instead of rendering them."""
    import agentrt.jit.thread_tools as thread_tools
    from agentrt import MemoryThreadStore, Runtime, load_settings
    from agentrt.testing import FakeAnthropicServer, Reply, ToolUse

    from .agents import research_agent
    from .helpers import write_manifest

    renders: list[str] = []
    real_render = thread_tools.render_guide

    def counting_render(tool: Any, specs: Any) -> str:
        renders.append(tool.name)
        return real_render(tool, specs)

    monkeypatch.setattr(thread_tools, "render_guide", counting_render)
    redis_gate()  # removes this test's keys afterwards
    agent_cls = research_agent(write_manifest(tmp_path))
    answers, renders_per_run = [], []
    for _ in range(2):
        steps = [Reply(tool_calls=[ToolUse("initialize_tools",
                                            {"tool_names": ["presentation"]})]),
                 Reply(text="ok")]
        settings = load_settings(thread_store="memory", stream=False, redis_url=redis_url,
                                 redis_prefix=redis_prefix)
        async with FakeAnthropicServer(steps) as fake, fake.client() as client, Runtime(
                settings, client=client, store=MemoryThreadStore()) as runtime:
            await agent_cls(runtime).run("make slides")
            answers.append(fake.requests[1].body["messages"][-1]["content"][0]["content"])
            renders_per_run.append(len(renders))
    assert answers[0] == answers[1] and "\n## presentation\n" in answers[0][0]["text"]
    assert {"type": "tool_reference", "tool_name": "make_slides"} in answers[0]
    assert renders_per_run[0] > 0 and renders_per_run[1] == renders_per_run[0]
    guides = [k async for k in redis_gate().client.scan_iter(match=f"{redis_prefix}:tool_guide*")]
    assert guides  # rendered once, stored for every process
