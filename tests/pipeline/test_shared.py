"""The Redis stages against a real redis-server: shared cache, tenancy, invalidation,
cross-process single-flight (several OS processes), and stepping aside when Redis fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import processes
import pytest
from redis_support import until_subscribed

from agentrt._redis import RedisGate
from agentrt.pipeline import ToolOutcome
from agentrt.pipeline._redis_codec import encode_outcome
from agentrt.pipeline.shared_cache import listen_for_invalidations, value_key
from agentrt.tools import ToolRegistry

from .support import Upstream, context, processor, resources, turn, use

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
SHARED = ["local_cache", "single_flight", "shared_cache", "shared_flight"]


@pytest.fixture
def gate(any_redis_gate: RedisGate) -> RedisGate:
    """Each test here on a real server, a local cluster and fakeredis."""
    return any_redis_gate


def _stack(gate: RedisGate, stages: list[str] = SHARED, **settings: Any) -> tuple[Any, Any]:
    res = resources(redis=gate, **settings)
    return processor(res, stages), res


async def test_a_second_process_cache_answers_from_redis_and_fills_its_local_layer(
        gate: RedisGate) -> None:
    up = Upstream()
    tools = ToolRegistry([up])
    first, _ = _stack(gate)
    await turn(first, tools, context("t1"), use("get_weather", city="Oslo"))
    second, res2 = _stack(gate)  # a fresh local cache: as in another process
    hit = await turn(second, tools, context("t2"), use("get_weather", city="Oslo"))
    assert hit[0]["source"] == "shared_cache" and up.count("weather") == 1
    again = await turn(second, tools, context("t3"), use("get_weather", city="Oslo"))
    assert again[0]["source"] == "local_cache" and len(res2.local_cache) == 1
    stored = await gate.client.get(value_key(gate, await second.prepare(
        use("get_weather", city="Oslo"), tools, context()), {"account": "acme"}))
    assert json.loads(stored)["content"] == hit[0]["content"]  # JSON, never pickle


async def test_tenants_never_see_each_others_results(gate: RedisGate) -> None:
    up = Upstream()
    tools = ToolRegistry([up])
    for account in ("acme", "globex"):
        proc, _ = _stack(gate)
        result = await turn(proc, tools, context(account=account), use("get_quote", symbol="A"))
        assert result[0]["source"] == "executed"
    keys = {k async for k in gate.client.scan_iter(match=f"{gate.prefix}:v:*")}
    assert len(keys) == 2 and not any(b"acme" in k or b"globex" in k for k in keys)
    proc, _ = _stack(gate)  # public functions are shared across tenants
    await turn(proc, tools, context(account="acme"), use("get_fx", pair="EURUSD"))
    proc, _ = _stack(gate)
    shared = await turn(proc, tools, context(account="globex"), use("get_fx", pair="EURUSD"))
    assert shared[0]["source"] == "shared_cache"


async def test_a_write_invalidates_the_shared_layer_and_other_local_caches(
        gate: RedisGate) -> None:
    up = Upstream()
    tools = ToolRegistry([up])
    writer, _ = _stack(gate)
    reader, reader_res = _stack(gate)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listen_for_invalidations, gate, reader_res.local_cache,
                      reader_res.pending)
        await turn(reader, tools, context("r"), use("get_product", product_id=5))
        assert len(reader_res.local_cache) == 1
        await until_subscribed(gate, gate.key("invalidate"))
        await turn(writer, tools, context("w"), use("set_price", product_id=5, price=2))
        with anyio.fail_after(30):
            while len(reader_res.local_cache):
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    fresh, _ = _stack(gate)
    result = await turn(fresh, tools, context("x"), use("get_product", product_id=5))
    assert result[0]["source"] == "executed"  # the shared copy is stale too


async def test_a_failed_write_invalidates_the_shared_layer(gate: RedisGate) -> None:
    """Regression: only a successful write bumped the tag counters, so a write that
    failed after reaching the upstream left every process reading the old value."""
    up = Upstream()
    tools = ToolRegistry([up])
    reader, _ = _stack(gate)
    await turn(reader, tools, context("r"), use("get_product", product_id=7))
    up.fail_on = {"set_price"}
    writer, _ = _stack(gate)
    failed = await turn(writer, tools, context("w"), use("set_price", product_id=7, price=2))
    assert failed[0]["is_error"] is True
    fresh, _ = _stack(gate)
    result = await turn(fresh, tools, context("x"), use("get_product", product_id=7))
    assert result[0]["source"] == "executed" and up.count("product") == 2


async def test_corrupt_and_foreign_values_are_misses_not_answers(gate: RedisGate) -> None:
    up = Upstream()
    tools = ToolRegistry([up])
    proc, _ = _stack(gate, ["shared_cache"])
    call = await proc.prepare(use("get_quote", symbol="Q"), tools, context())
    key = value_key(gate, call, {"account": "acme"})
    for planted in (b"\x80\x04pickle", b'{"v": 1}', encode_outcome("another-key",
                                                                  ToolOutcome("evil"))):
        await gate.client.set(key, planted)
        result = await turn(proc, tools, context(), use("get_quote", symbol="Q"))
        assert result[0]["source"] == "executed" and "evil" not in result[0]["content"]


async def test_results_over_the_size_limit_are_not_stored(gate: RedisGate) -> None:
    up = Upstream()
    proc, _ = _stack(gate, ["shared_cache"], shared_cache_max_bytes=20)
    await turn(proc, ToolRegistry([up]), context(), use("get_quote", symbol="BIG"))
    assert [k async for k in gate.client.scan_iter(match=f"{gate.prefix}:v:*")] == []


async def test_redis_down_the_stages_step_aside_and_warn_once() -> None:
    gate = RedisGate("redis://127.0.0.1:1/0", prefix="nowhere", timeout=0.2, retry_after=60)
    up = Upstream()
    proc, _ = _stack(gate)
    from agentrt.testing import capture_events

    with capture_events() as logs:
        for city in ("A", "B", "C"):
            result = await turn(proc, ToolRegistry([up]), context(), use("get_weather", city=city))
            assert result[0]["source"] == "executed" and "is_error" not in result[0]
    assert [e["event"] for e in logs].count("redis.unavailable") == 1
    await gate.aclose()


async def _spawn(gate: RedisGate, url: str, count: int, calls: int, lease_ttl: float,
                 hold: str) -> list[subprocess.Popen[str]]:
    """Starts the children and says go once every one of them is ready."""
    children = [processes.popen(
        [sys.executable, "-m", "tests.pipeline.flight_child", url, gate.prefix,
         str(calls), str(lease_ttl), hold],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)]
    with anyio.fail_after(120):  # each child imports agentrt: seconds apiece on a busy box
        while int(await gate.client.get(gate.key("ready")) or 0) < count:
            for child in children:
                assert child.poll() is None, f"a child failed to start: {child.communicate()}"
            await anyio.sleep(0.02)
    await gate.client.set(gate.key("go"), 1)
    return children


async def _collect(child: subprocess.Popen[str]) -> tuple[dict[str, Any], list[str]]:
    """Its one JSON line of results, and the events it logged; it must have exited 0."""
    out, err = await anyio.to_thread.run_sync(child.communicate, None, 120)
    assert child.returncode == 0, err
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    return json.loads(out), events


@pytest.mark.integration
async def test_four_processes_twenty_five_callers_one_execution(
        redis_gate: Any, redis_url: str) -> None:
    gate = redis_gate()
    # the first execution is held open until the three other processes wait on it
    children = await _spawn(gate, redis_url, 4, 25, 10.0, hold="3")
    outputs = [(await _collect(child))[0] for child in children]
    results = [r for out in outputs for r in out["results"]]
    assert len(results) == 100
    assert int(await gate.client.get(gate.key("executions"))) == 1  # nobody waited out a lease
    assert {r["content"] for r in results} == {'{"day": "2026-11-27", "total": 42}'}
    # they shared the flight, in their process (inflight) and across processes (shared_flight)
    sources = [r["source"] for r in results]
    assert sorted(set(sources)) == ["executed", "shared_flight", "single_flight"]
    assert (sources.count("executed"), sources.count("shared_flight")) == (1, 3)


@pytest.mark.integration
async def test_killing_the_leader_process_lets_another_finish_and_nobody_hangs(
        redis_gate: Any, redis_url: str) -> None:
    gate = redis_gate()
    lease_ttl = 1.0
    children = await _spawn(gate, redis_url, 3, 5, lease_ttl, hold="forever")
    with anyio.fail_after(60):
        while (pid := await gate.client.get(gate.key("leader_pid"))) is None:
            await anyio.sleep(0.02)
    killed_at = time.time()
    os.kill(int(pid), signal.SIGKILL)
    survivors = [c for c in children if c.pid != int(pid)]
    collected = [await _collect(child) for child in survivors]
    assert len(survivors) == 2
    assert all(len(out["results"]) == 5 and not any(r["is_error"] for r in out["results"])
               for out, _ in collected)
    assert int(await gate.client.get(gate.key("executions"))) == 2  # killed + one takeover
    events = [event for _, logged in collected for event in logged]
    # one survivor took over once the lease expired; none waited out its patience (the
    # tool's timeout + the lease, 31 s), whatever the machine's load
    assert events.count("tool.flight_takeover") == 1
    assert "tool.flight_wait_timeout" not in events
    # when the last caller got its result (not when its process finished exiting)
    assert max(out["finished_at"] for out, _ in collected) - killed_at < 20


async def test_a_failing_leader_tells_waiters_at_once(gate: RedisGate) -> None:
    """Two stacks stand for two processes (the OS-process tests above prove the lease)."""
    up = Upstream()
    up.gate, up.fail_next = anyio.Event(), True
    tools = ToolRegistry([up])
    leader, _ = _stack(gate, lease_ttl=60.0)
    waiter, _ = _stack(gate, lease_ttl=60.0)
    results: dict[str, Any] = {}

    async def call(name: str, proc: Any) -> None:
        results[name] = await turn(proc, tools, context(name), use("get_quote", symbol="F"))

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "leader", leader)
        await up.entered.wait()
        tg.start_soon(call, "waiter", waiter)
        await until_subscribed(gate, gate.key("done", "*"))  # the waiter waits on the flight
        up.gate.set()
    assert time.monotonic() - started < 30.0  # told at once, not after the 60 s lease
    assert results["waiter"][0]["source"] == "shared_flight"
    assert results["waiter"][0]["is_error"] and "upstream down" in results["waiter"][0][
        "content"]
    assert up.count("quote") == 1


async def test_a_waiter_whose_wait_runs_out_executes_itself_and_says_so(
        gate: RedisGate) -> None:
    from agentrt.testing import capture_events

    up = Upstream()
    tools = ToolRegistry([up])
    proc, _ = _stack(gate, ["shared_flight"], lease_ttl=0.3)
    proc.overrides["get_quote"] = {"timeout": 0.3}
    call = await proc.prepare(use("get_quote", symbol="W"), tools, context())
    lease = gate.key("lease", "{" + call.key + "}")
    await gate.client.set(lease, "a-leader-that-never-finishes", px=60_000)
    with capture_events() as logs:
        result = await turn(proc, tools, context(), use("get_quote", symbol="W"))
    assert result[0]["source"] == "executed" and up.count("quote") == 1
    assert "tool.flight_wait_timeout" in [e["event"] for e in logs]


async def test_a_foreign_type_under_a_key_fails_that_call_only(gate: RedisGate) -> None:
    """Regression: a WRONGTYPE reply opened the circuit, switching every shared stage off."""
    up = Upstream()
    tools = ToolRegistry([up])
    proc, _ = _stack(gate, ["shared_cache"])
    call = await proc.prepare(use("get_quote", symbol="L"), tools, context())
    await gate.client.lpush(value_key(gate, call, {"account": "acme"}), "not-a-string")
    result = await turn(proc, tools, context(), use("get_quote", symbol="L"))
    assert result[0]["source"] == "executed" and gate.available
    await turn(proc, tools, context(), use("get_quote", symbol="M"))
    again = await turn(proc, tools, context(), use("get_quote", symbol="M"))
    assert again[0]["source"] == "shared_cache"
