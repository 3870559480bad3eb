"""Each stage's behaviour, driven through the processor with a counting upstream."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from agentrt import ConfigError, Message, Tool, function
from agentrt.pipeline import describe_pipeline
from agentrt.tools import ToolRegistry

from .support import FakeClock, Upstream, context, processor, resources, turn, use

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The pipeline is backend-neutral: every stage test runs on both."""
    return str(request.param)


def _setup(stages: Any = None, clock: FakeClock | None = None, **settings: Any
           ) -> tuple[Any, ToolRegistry, Upstream, Any]:
    upstream = Upstream()
    res = resources(clock, **settings)
    proc = processor(res) if stages is None else processor(res, stages)
    return proc, ToolRegistry([upstream]), upstream, res


# turn dedup ----------------------------------------------------------------------------

async def test_seed_scenario_two_duplicates_in_one_message() -> None:
    proc, tools, up, _ = _setup()
    ctx = context()
    results = await turn(proc, tools, ctx, use("get_weather", city="Paris"),
                         use("get_quote", symbol="AAPL"), use("get_weather", city="Paris"),
                         use("get_quote", symbol="AAPL"))
    assert len(results) == 4 and len({r["tool_use_id"] for r in results}) == 4
    assert (up.count("weather"), up.count("quote")) == (1, 1)
    # the first of identical calls leads (on trio too, which shuffles the tasks it starts)
    assert [r["source"] for r in results] == ["executed", "executed", "turn_dedup",
                                              "turn_dedup"]
    assert results[0]["content"] == results[2]["content"]
    assert ctx.stats.snapshot().hits == {"turn_dedup": 2} and ctx.stats.snapshot().executed == 2


class Meeting(Tool):
    """A call returns only once two calls are in it: run one after the other, they would
    wait for ever (the deadline turns that into a failed test)."""

    name = "meeting"

    def __init__(self) -> None:
        self.arrived = 0
        self.both = anyio.Event()
        self.tasks = 0  # tasks running when the second call came in

    @function(read_only=True, public=True)
    async def meet(self, room: str) -> str:
        """Waits for a second call."""
        self.arrived += 1
        if self.arrived == 2:
            self.tasks = len(anyio.get_running_tasks())
            self.both.set()
        with anyio.fail_after(30):
            await self.both.wait()
        return room


async def test_a_turns_duplicates_take_no_task_of_their_own() -> None:
    """With turn dedup first, a duplicate is answered after the turn's distinct calls, in
    the turn's task: only the second distinct call gets a task."""
    meeting = Meeting()
    proc, ctx = processor(resources()), context()
    before = len(anyio.get_running_tasks())
    results = await turn(proc, ToolRegistry([meeting]), ctx, use("meet", room="a"),
                         use("meet", room="a"), use("meet", room="b"), use("meet", room="a"))
    assert [r["content"] for r in results] == ["a", "a", "b", "a"]
    assert [r["source"] for r in results] == ["executed", "turn_dedup", "executed",
                                              "turn_dedup"]
    assert meeting.arrived == 2 and meeting.tasks == before + 1


@pytest.mark.parametrize("stages", [[], ["memo"]])
async def test_identical_calls_without_turn_dedup_still_run_at_once(stages: list[str]) -> None:
    """No stage merges them: both run, concurrently, as distinct calls do."""
    meeting = Meeting()
    proc = processor(resources(), stages)
    results = await turn(proc, ToolRegistry([meeting]), context(), use("meet", room="a"),
                         use("meet", room="a"))
    assert [r["source"] for r in results] == ["executed", "executed"]
    assert meeting.arrived == 2


@pytest.mark.parametrize("parallel", [True, False])
async def test_side_effecting_call_twice_in_one_turn_runs_twice_in_order(parallel: bool) -> None:
    proc, tools, up, _ = _setup()
    results = await turn(proc, tools, context(), use("set_price", product_id=1, price=5),
                         use("set_price", product_id=1, price=5),
                         use("set_price", product_id=1, price=6))
    assert up.calls == [("set_price", (1, 5.0)), ("set_price", (1, 5.0)), ("set_price", (1, 6.0))]
    assert all(r["source"] == "executed" for r in results)


async def test_write_is_a_barrier_and_invalidates_a_tagged_read_in_the_same_turn() -> None:
    proc, tools, up, _ = _setup(["turn_dedup"])
    await turn(proc, tools, context(), use("get_product", product_id=1),
               use("set_price", product_id=1, price=9), use("get_product", product_id=1))
    assert [c[0] for c in up.calls] == ["product", "set_price", "product"]


# memo ------------------------------------------------------------------------------------

async def test_memo_answers_a_repeat_later_in_the_thread_not_in_another() -> None:
    proc, tools, up, _ = _setup(["memo"])
    ctx = context("thr_a")
    await turn(proc, tools, ctx, use("get_weather", city="Oslo"))
    again = await turn(proc, tools, ctx, use("get_weather", city="Oslo"))
    assert again[0]["source"] == "memo" and up.count("weather") == 1
    await turn(proc, tools, context("thr_b"), use("get_weather", city="Oslo"))
    assert up.count("weather") == 2


async def test_memo_ttl_uses_the_clock() -> None:
    clock = FakeClock()
    from agentrt.pipeline import Memo

    proc, tools, up, _ = _setup([lambda nxt: Memo(nxt, clock=clock)])
    ctx = context()
    await turn(proc, tools, ctx, use("get_weather", city="Oslo"))
    clock.now += 59
    await turn(proc, tools, ctx, use("get_weather", city="Oslo"))
    clock.now += 2
    await turn(proc, tools, ctx, use("get_weather", city="Oslo"))
    assert up.count("weather") == 2


async def test_memo_is_rebuilt_from_history_and_forgets_invalidated_results() -> None:
    proc, tools, _up, _ = _setup(["memo"])
    first = await turn(proc, tools, context(), use("get_weather", city="Rome"),
                       use("get_product", product_id=7))
    history = [
        Message(role="user", content="hi"),
        Message(role="assistant", content=[{k: v for k, v in b.items() if k != "source"}
                                           for b in [use("get_weather", city="Rome"),
                                                     use("get_product", product_id=7)]]),
    ]
    history.append(Message(role="user", content=[
        {"type": "tool_result", "tool_use_id": history[1].content[i]["id"],  # type: ignore[index]
         "content": first[i]["content"]} for i in range(2)]))
    write = use("set_price", product_id=7, price=1)
    history += [Message(role="assistant", content=[write]),
                Message(role="user", content=[{"type": "tool_result",
                                               "tool_use_id": write["id"], "content": "ok"}])]
    resumed = context()  # a new run, as after a restart: only the history is known
    await proc.replay(history, resumed, tools)
    results = await turn(proc, tools, resumed, use("get_weather", city="Rome"),
                         use("get_product", product_id=7))
    assert [r["source"] for r in results] == ["memo", "executed"]
    assert results[0]["content"] == first[0]["content"]


async def test_memo_forgets_calls_whose_results_left_the_models_context() -> None:
    """A long thread's cleared or summarized results (agentrt.context): asked again,
    the call runs instead of the memo answering from what the model no longer sees."""
    proc, tools, up, _ = _setup(["memo"])
    ctx = context()
    await turn(proc, tools, ctx, use("get_weather", city="Oslo"), use("get_weather", city="Rome"))
    await proc.forget_results([use("get_weather", city="Oslo")], ctx, tools)
    again = await turn(proc, tools, ctx, use("get_weather", city="Oslo"),
                       use("get_weather", city="Rome"))
    assert [r["source"] for r in again] == ["executed", "memo"]
    assert up.count("weather") == 3


async def test_errors_are_not_memoized_by_default() -> None:
    proc, tools, up, _ = _setup(["memo"])
    ctx = context()
    up.fail_next = True
    assert (await turn(proc, tools, ctx, use("get_quote", symbol="X")))[0]["is_error"]
    up.fail_next = False
    again = await turn(proc, tools, ctx, use("get_quote", symbol="X"))
    assert "is_error" not in again[0] and up.count("quote") == 2


# local cache -----------------------------------------------------------------------------

async def test_local_cache_is_shared_by_threads_but_not_tenants() -> None:
    proc, tools, up, _ = _setup(["local_cache"])
    await turn(proc, tools, context("t1"), use("get_weather", city="Oslo"))
    hit = await turn(proc, tools, context("t2"), use("get_weather", city="Oslo"))
    assert hit[0]["source"] == "local_cache" and up.count("weather") == 1
    await turn(proc, tools, context("t3", account="globex"), use("get_weather", city="Oslo"))
    assert up.count("weather") == 2
    await turn(proc, tools, context("t4", account="x"), use("get_fx", pair="EURUSD"))
    public = await turn(proc, tools, context("t5", account="y"), use("get_fx", pair="EURUSD"))
    assert public[0]["source"] == "local_cache"


async def test_local_cache_expiry_on_the_clock_and_never_stale_past_ttl() -> None:
    clock = FakeClock()
    proc, tools, _up, res = _setup(["local_cache"], clock=clock)
    await turn(proc, tools, context(), use("get_weather", city="Oslo"))
    clock.now += 59.9
    assert (await turn(proc, tools, context(), use("get_weather", city="Oslo")))[0][
        "source"] == "local_cache"
    clock.now += 0.2
    assert (await turn(proc, tools, context(), use("get_weather", city="Oslo")))[0][
        "source"] == "executed"
    assert res.local_cache.statistics().expirations == 1


async def test_stale_while_revalidate_serves_stale_once_and_refreshes_in_background() -> None:
    clock = FakeClock()
    _, tools, up, res = _setup(["local_cache"], clock=clock)
    async with anyio.create_task_group() as tg:
        def spawn(fn: Any) -> bool:
            tg.start_soon(fn)
            return True

        from agentrt.pipeline import Execute, LocalCache, ResponseProcessor, build_pipeline

        handler = build_pipeline([lambda nxt: LocalCache(
            nxt, res.local_cache, default_ttl=60, stale_while_revalidate=30, spawn=spawn)],
            None, Execute(timeout=5, max_result_chars=1000))
        proc = ResponseProcessor(handler)
        await turn(proc, tools, context(), use("get_weather", city="Oslo"))
        clock.now += 70  # past ttl, inside the stale window
        stale = await turn(proc, tools, context(), use("get_weather", city="Oslo"))
        assert stale[0]["source"] == "local_cache"
        await anyio.wait_all_tasks_blocked()
        assert up.count("weather") == 2  # one refresh, in the background
        fresh = await turn(proc, tools, context(), use("get_weather", city="Oslo"))
        assert fresh[0]["source"] == "local_cache" and up.count("weather") == 2
        clock.now += 200  # past ttl + stale window: never served
        assert (await turn(proc, tools, context(), use("get_weather", city="Oslo")))[0][
            "source"] == "executed"


async def test_lru_bounded_by_entries_and_by_bytes() -> None:
    proc, tools, up, res = _setup(["local_cache"], local_cache_max_entries=2)
    for city in ("A", "B", "C"):
        await turn(proc, tools, context(), use("get_weather", city=city))
    assert len(res.local_cache) == 2 and res.local_cache.statistics().evictions == 1
    await turn(proc, tools, context(), use("get_weather", city="A"))
    assert up.count("weather") == 4  # A was evicted (least recently used)
    _, _, _, small = _setup(["local_cache"], local_cache_max_bytes=500)
    from agentrt.pipeline import ToolOutcome

    small.local_cache.set("k1", ToolOutcome("x" * 300), ttl=10, size=300)
    small.local_cache.set("k2", ToolOutcome("y" * 300), ttl=10, size=300)
    assert small.local_cache.statistics().bytes <= 500 and len(small.local_cache) == 1
    assert not small.local_cache.set("big", ToolOutcome("z" * 600), ttl=10, size=600)


async def test_cache_hits_are_immune_to_a_tool_mutating_its_result() -> None:
    proc, tools, up, _ = _setup(["local_cache"])
    first = await turn(proc, tools, context(), use("get_product", product_id=3))
    up.last_product["price"] = 999_999  # the tool mutates the object it returned
    second = await turn(proc, tools, context("t2"), use("get_product", product_id=3))
    assert second[0]["source"] == "local_cache"
    assert json.loads(second[0]["content"]) == json.loads(first[0]["content"]) == {
        "id": 3, "price": 10}


async def test_errors_not_cached_unless_the_function_opts_in() -> None:
    proc, tools, up, _ = _setup(["local_cache"])
    up.fail_next = True
    await turn(proc, tools, context(), use("get_quote", symbol="Z"))
    up.fail_next = False
    assert (await turn(proc, tools, context(), use("get_quote", symbol="Z")))[0][
        "source"] == "executed"
    await turn(proc, tools, context(), use("lookup", name="nobody"))
    again = await turn(proc, tools, context(), use("lookup", name="nobody"))
    assert again[0]["source"] == "local_cache" and again[0]["is_error"] is True
    assert up.count("lookup") == 1


async def test_a_write_invalidates_tagged_results_in_memo_and_local_cache() -> None:
    proc, tools, _up, res = _setup(["memo", "local_cache"])
    ctx = context()
    await turn(proc, tools, ctx, use("get_product", product_id=5), use("get_weather", city="X"))
    await turn(proc, tools, ctx, use("set_price", product_id=5, price=1))
    results = await turn(proc, tools, ctx, use("get_product", product_id=5),
                         use("get_weather", city="X"))
    assert [r["source"] for r in results] == ["executed", "memo"]
    assert res.local_cache.statistics().invalidations == 1


@pytest.mark.parametrize("stage", ["memo", "local_cache"])
async def test_a_failed_write_still_invalidates_what_it_may_have_changed(stage: str) -> None:
    """Regression: a write that raised (or timed out) may have reached the upstream
    before failing; only a successful one invalidated, so the next read was answered
    from the cache with what the write may have changed."""
    proc, tools, up, _ = _setup([stage])
    ctx = context()
    await turn(proc, tools, ctx, use("get_product", product_id=5))
    up.fail_on = {"set_price"}
    failed = await turn(proc, tools, ctx, use("set_price", product_id=5, price=1))
    assert failed[0]["is_error"] is True
    again = await turn(proc, tools, ctx, use("get_product", product_id=5))
    assert again[0]["source"] == "executed" and up.count("product") == 2


async def test_a_failed_write_invalidates_a_tagged_read_in_the_same_turn() -> None:
    proc, tools, up, _ = _setup(["turn_dedup"])
    up.fail_on = {"set_price"}
    results = await turn(proc, tools, context(), use("get_product", product_id=1),
                         use("set_price", product_id=1, price=9), use("get_product", product_id=1))
    assert [r["source"] for r in results] == ["executed", "executed", "executed"]
    assert results[1]["is_error"] is True and up.count("product") == 2


@pytest.mark.parametrize("stage", ["memo", "local_cache"])
async def test_a_cancelled_write_still_invalidates(stage: str) -> None:
    """A write cancelled while it ran may have happened: what it invalidates is
    forgotten on the way out, as for one that failed."""
    proc, tools, up, _ = _setup([stage])
    ctx = context()
    await turn(proc, tools, ctx, use("get_product", product_id=5))
    up.gate = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(turn, proc, tools, ctx, use("set_price", product_id=5, price=1))
        await up.entered.wait()
        tg.cancel_scope.cancel()
    assert up.cancelled == 1
    up.gate = None
    again = await turn(proc, tools, ctx, use("get_product", product_id=5))
    assert again[0]["source"] == "executed" and up.count("product") == 2


async def test_thread_scoped_function_stays_in_its_thread() -> None:
    proc, tools, up, _ = _setup(["local_cache"])
    await turn(proc, tools, context("t1"), use("thread_note"))
    await turn(proc, tools, context("t2"), use("thread_note"))
    assert up.count("note") == 2


# single-flight ---------------------------------------------------------------------------

async def _fifty(proc: Any, tools: ToolRegistry, up: Upstream, results: list[Any],
                 cancel_first: bool = False) -> None:
    up.gate = anyio.Event()
    scopes: list[anyio.CancelScope] = []

    async def caller(i: int) -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            results[i] = await turn(proc, tools, context(f"thread_{i}"),
                                    use("get_quote", symbol="AAPL"))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(caller, i)
            if i == 0:
                await up.entered.wait()
        await anyio.wait_all_tasks_blocked()
        if cancel_first:
            scopes[0].cancel()
            await anyio.wait_all_tasks_blocked()
        up.gate.set()


async def test_fifty_concurrent_identical_calls_execute_once() -> None:
    proc, tools, up, res = _setup(["single_flight"])
    results: list[Any] = [None] * 50
    await _fifty(proc, tools, up, results)
    assert up.count("quote") == 1
    assert sorted(r[0]["source"] for r in results) == ["executed"] + ["single_flight"] * 49
    assert res.flights.statistics().in_flight == 0


async def test_cancelling_the_first_caller_leaves_the_others_their_result() -> None:
    proc, tools, up, res = _setup(["single_flight"])
    results: list[Any] = [None] * 50
    await _fifty(proc, tools, up, results, cancel_first=True)
    assert results[0] is None and up.cancelled == 0
    assert all(r[0]["content"] == '{"symbol": "AAPL", "price": 190.5}' for r in results[1:])
    assert up.count("quote") == 1 and res.flights.statistics().in_flight == 0


async def test_an_exception_reaches_all_fifty_is_not_cached_and_retries_later() -> None:
    proc, tools, up, _res = _setup(["local_cache", "single_flight"])
    up.fail_next = True
    results: list[Any] = [None] * 50
    await _fifty(proc, tools, up, results)
    assert up.count("quote") == 1
    assert all(r[0]["is_error"] and "upstream down" in r[0]["content"] for r in results)
    up.fail_next, up.gate = False, None
    later = await turn(proc, tools, context(), use("get_quote", symbol="AAPL"))
    assert later[0]["source"] == "executed" and up.count("quote") == 2


async def test_a_caller_arriving_as_the_flight_lands_is_not_executed_again() -> None:
    """Regression (found by bench/pipeline.py): the in-flight entry was dropped before
    the leader's cache stored the result, so a caller in between executed again."""
    proc, tools, up, _ = _setup(["local_cache", "single_flight"])
    up.gate = anyio.Event()
    late: list[Any] = []

    async def arrives_as_it_lands() -> None:
        await up.returning.wait()
        late.append(await turn(proc, tools, context("late"), use("get_quote", symbol="MSFT")))

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: turn(proc, tools, context("leader"),
                                   use("get_quote", symbol="MSFT")))
        tg.start_soon(arrives_as_it_lands)
        await up.entered.wait()
        up.gate.set()
    assert up.count("quote") == 1 and late[0][0]["source"] in ("single_flight", "local_cache")


async def test_a_waiter_cancelled_does_not_cancel_the_shared_execution() -> None:
    proc, tools, up, _res = _setup(["single_flight"])
    up.gate = anyio.Event()
    got: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _collect(proc, tools, got))
        await up.entered.wait()
        with anyio.CancelScope() as waiter:
            waiter.cancel()
            await turn(proc, tools, context("w"), use("get_quote", symbol="AAPL"))
        up.gate.set()
    assert got[0][0]["source"] == "executed" and up.cancelled == 0


async def _collect(proc: Any, tools: ToolRegistry, got: list[Any]) -> None:
    got.append(await turn(proc, tools, context("leader"), use("get_quote", symbol="AAPL")))


async def test_a_lone_leader_cancelled_cancels_its_execution_and_leaves_no_entry() -> None:
    proc, tools, up, res = _setup(["single_flight"])
    up.gate = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _collect(proc, tools, []))
        await up.entered.wait()
        tg.cancel_scope.cancel()
    assert up.cancelled == 1 and res.flights.statistics().in_flight == 0


async def test_a_cancelled_leader_waits_for_its_waiter_then_the_last_to_leave_cancels() -> None:
    """The execution runs in the leader's task, shielded only while others wait: the
    leader's cancellation is held off for its waiter, and lands once the waiter leaves."""
    proc, tools, up, res = _setup(["single_flight"])
    up.gate = anyio.Event()
    scopes: list[anyio.CancelScope] = []
    got: list[Any] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_cancellable, scopes, proc, tools, got)
        await up.entered.wait()
        tg.start_soon(_cancellable, scopes, proc, tools, got)
        await anyio.wait_all_tasks_blocked()
        leader, waiter = scopes
        leader.cancel()
        await anyio.wait_all_tasks_blocked()
        assert up.cancelled == 0  # held off: someone still waits
        waiter.cancel()
    assert up.cancelled == 1 and got == []
    assert res.flights.statistics().in_flight == 0


async def _cancellable(scopes: list[anyio.CancelScope], proc: Any, tools: ToolRegistry,
                      got: list[Any]) -> None:
    with anyio.CancelScope() as scope:
        scopes.append(scope)
        got.append(await turn(proc, tools, context("t"), use("get_quote", symbol="AAPL")))


# batch -----------------------------------------------------------------------------------

async def test_seed_scenario_products_batched_into_one_upstream_call() -> None:
    # closed by batch_max once the three products joined, never by a window running out
    # (a 2 ms window split [10, 20, 30] into [10] and [20, 30] on a loaded machine)
    proc, tools, up, _ = _setup(batch_window=60, batch_max=3)
    results = await turn(proc, tools, context(), *(use("get_product", product_id=p)
                                                    for p in (10, 20, 10, 30)))
    assert [(w, sorted(ids)) for w, ids in up.calls] == [("products", [10, 20, 30])]
    assert [json.loads(r["content"])["id"] for r in results] == [10, 20, 10, 30]
    assert sorted(r["source"] for r in results) == ["batch", "batch", "batch", "turn_dedup"]


async def test_batch_gathers_the_calls_of_concurrent_threads() -> None:
    proc, tools, up, _ = _setup(batch_window=60, batch_max=3)  # closed by the third call
    async with anyio.create_task_group() as tg:
        for thread, pid in (("a", 1), ("b", 2), ("c", 3)):
            tg.start_soon(turn, proc, tools, context(thread), use("get_product", product_id=pid))
    assert [(w, sorted(ids)) for w, ids in up.calls] == [("products", [1, 2, 3])]


async def test_batch_missing_result_and_failure_are_per_call_errors() -> None:
    proc, tools, up, _ = _setup()
    results = await turn(proc, tools, context(), use("get_product", product_id=1),
                         use("get_product", product_id=404))
    assert "is_error" not in results[0]
    assert results[1]["is_error"] and "returned no result for 404" in results[1]["content"]
    up.fail_next = True
    failed = await turn(proc, tools, context(), use("get_product", product_id=8),
                        use("get_product", product_id=9))
    assert all(r["is_error"] and "upstream down" in r["content"] for r in failed)


# assembly --------------------------------------------------------------------------------

async def test_stages_come_from_settings_and_can_be_removed() -> None:
    proc, tools, up, _ = _setup(["turn_dedup"])
    await turn(proc, tools, context("t1"), use("get_weather", city="Oslo"))
    await turn(proc, tools, context("t2"), use("get_weather", city="Oslo"))
    assert up.count("weather") == 2  # no local cache: nothing shared across threads
    with pytest.raises(ConfigError, match="unknown stage"):
        _setup(["turn_dedup", "redis_magic"])
    names = [n for n, _ in describe_pipeline(["turn_dedup", "memo", "local_cache"])]
    assert names == ["turn_dedup", "memo", "local_cache", "execute"]


async def test_agent_overrides_function_options() -> None:
    clock = FakeClock()
    res = resources(clock)
    up = Upstream()
    proc = processor(res, ["local_cache"], get_weather={"ttl": 1})
    tools = ToolRegistry([up])
    await turn(proc, tools, context(), use("get_weather", city="Oslo"))
    clock.now += 2
    await turn(proc, tools, context(), use("get_weather", city="Oslo"))
    assert up.count("weather") == 2


async def test_stale_is_not_served_when_no_background_refresh_can_run() -> None:
    """Regression: with the runtime not entered, spawn() refused the refresh, yet the stale
    result was served again and again for the whole window, never revalidated."""
    from agentrt.pipeline import Execute, LocalCache, ResponseProcessor, build_pipeline

    clock = FakeClock()
    _, tools, up, res = _setup(["local_cache"], clock=clock)
    handler = build_pipeline([lambda nxt: LocalCache(
        nxt, res.local_cache, default_ttl=60, stale_while_revalidate=30,
        spawn=lambda fn: False)], None, Execute(timeout=5, max_result_chars=1000))
    proc = ResponseProcessor(handler)
    await turn(proc, tools, context(), use("get_weather", city="Oslo"))
    clock.now += 70  # past ttl, inside the stale window
    refreshed = await turn(proc, tools, context(), use("get_weather", city="Oslo"))
    assert refreshed[0]["source"] == "executed" and up.count("weather") == 2
