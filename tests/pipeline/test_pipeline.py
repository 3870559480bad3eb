"""The Pipeline object: its stages kept as a list, one name per stage, hooks, statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from agentrt import Agent, Runtime
from agentrt.pipeline import (
    DEFAULT_STAGES,
    CacheStatistics,
    FlightStatistics,
    Pipeline,
    Stage,
    StageStatistics,
    build_pipeline,
    configured_stages,
    default_stages,
    describe_pipeline,
    stage_names,
)
from agentrt.testing import Reply, ScriptedModel, ToolUse
from agentrt.thread.memory import MemoryThreadStore
from agentrt.tools import ToolRegistry

from .support import Upstream, context, processor, resources, turn, use

if TYPE_CHECKING:
    from collections.abc import Sequence

    from agentrt.pipeline import CallContext, Replayed, ToolOutcome
    from agentrt.pipeline import ToolCall as Call

pytestmark = pytest.mark.anyio


class Echo(Stage):
    """Answers get_quote itself, with a canned price."""

    name = "echo"

    def __init__(self, next_handler: Any) -> None:
        super().__init__(next_handler)
        self.replayed: list[Replayed] = []

    async def __call__(self, call: Call, ctx: CallContext) -> ToolOutcome:
        if call.name == "get_quote":
            from agentrt.pipeline import ToolOutcome

            return self.answer(call, ctx, ToolOutcome('{"price": 1}'))
        return await self.next(call, ctx)

    async def replay(self, history: Sequence[Replayed], ctx: CallContext) -> None:
        self.replayed.extend(history)


def test_the_builder_keeps_the_stages_in_order_with_their_names() -> None:
    pipeline = processor(resources()).pipeline
    assert isinstance(pipeline, Pipeline)
    assert pipeline.names == DEFAULT_STAGES
    assert pipeline.handler is pipeline.stages[0]
    assert [n for n, _ in pipeline.describe()] == [*DEFAULT_STAGES, "execute"]
    assert pipeline.stage("memo").name == "memo"  # type: ignore[attr-defined]
    with pytest.raises(KeyError):
        pipeline.stage("nope")


def test_one_default_list_with_the_redis_stages_in_their_place() -> None:
    assert default_stages(shared=False) == list(DEFAULT_STAGES)
    assert default_stages(shared=True) == ["turn_dedup", "memo", "local_cache",
                                           "single_flight", "shared_cache", "shared_flight",
                                           "batch"]
    assert set(default_stages(shared=True)) == set(stage_names())
    settings = resources().settings
    assert configured_stages(settings) == list(DEFAULT_STAGES)
    assert [n for n, _ in describe_pipeline(default_stages(shared=True))][-1] == "execute"


def test_a_stage_needs_a_name_of_its_own() -> None:
    with pytest.raises(TypeError, match="needs a `name`"):
        class Nameless(Stage):
            pass


def test_hooks_are_called_only_on_the_stages_that_define_them() -> None:
    pipeline = build_pipeline(["turn_dedup", Echo, "memo", "local_cache"], resources(),
                              processor(resources(), []).pipeline.terminal)
    assert [getattr(s, "name", "") for s in pipeline._replaying] == ["echo", "memo"]
    assert [getattr(s, "name", "") for s in pipeline._forgetting] == [
        "turn_dedup", "memo", "local_cache"]


def test_duplicates_are_left_to_turn_dedup_only_when_it_comes_first() -> None:
    """A stage before it (a custom one, say) might wait for the duplicates to arrive."""
    terminal = processor(resources(), []).pipeline.terminal
    assert processor(resources()).pipeline.merges_turn_duplicates
    for stages in ([], ["memo", "turn_dedup"], [Echo, "turn_dedup"]):
        assert not build_pipeline(stages, resources(), terminal).merges_turn_duplicates


async def test_a_custom_stage_is_counted_under_its_own_name() -> None:
    res = resources()
    proc = processor(res, ["turn_dedup", Echo, "memo", "local_cache"])
    ctx = context()
    results = await turn(proc, ToolRegistry([Upstream()]), ctx, use("get_quote", symbol="X"),
                         use("get_quote", symbol="X"), use("get_weather", city="Oslo"))
    assert sorted(r["source"] for r in results) == ["echo", "executed", "turn_dedup"]
    assert ctx.stats.snapshot().hits == {"echo": 1, "turn_dedup": 1}
    stats = proc.pipeline.statistics()
    assert stats["echo"] == StageStatistics(answered=1)
    assert stats["turn_dedup"] == StageStatistics(answered=1)
    assert isinstance(stats["local_cache"], CacheStatistics)


async def test_statistics_of_every_built_in_stage() -> None:
    res = resources()
    proc = processor(res)
    tools = ToolRegistry([Upstream()])
    await turn(proc, tools, context("t1"), use("get_weather", city="Oslo"))
    await turn(proc, tools, context("t2"), use("get_weather", city="Oslo"))
    stats = proc.pipeline.statistics()
    assert stats["local_cache"].hits == 1 and stats["local_cache"].entries == 1
    assert isinstance(stats["single_flight"], FlightStatistics) and stats["single_flight"].led == 1
    assert stats["memo"] == StageStatistics(answered=0)


async def test_an_agent_takes_custom_stages_and_resumes_through_the_replay_hook() -> None:
    """A resumed thread reaches every stage's replay hook through the Pipeline (the memo
    among them), with no special case for the memo anywhere."""

    class Quotes(Agent):
        tools = (Upstream,)
        pipeline = ("turn_dedup", Echo, "memo")

    script = [Reply(tool_calls=[ToolUse("get_weather", {"city": "Oslo"})]),
              Reply(text="Mild."),
              Reply(tool_calls=[ToolUse("get_weather", {"city": "Oslo"})]),
              Reply(text="Still mild.")]
    async with Runtime(resources().settings, model=ScriptedModel(script),
                       store=MemoryThreadStore()) as runtime:
        first = await Quotes(runtime).run("Oslo?")
        agent = Quotes(runtime)
        second = await agent.run("And again?", thread_id=first.thread_id)
    assert second.stats.hits == {"memo": 1}
    echo = agent.tool_pipeline.stage("echo")
    assert [r.call.name for r in echo.replayed] == ["get_weather"]  # type: ignore[attr-defined]
