"""Redis faults under the shared stages, on a real redis-server: corrupted, planted,
foreign-typed and older-format values, and corrupted tag counters. No crash, no wrong
result served, and Redis is not declared down for a bad value.

Redis stopped and restarted mid-run, and stalled (SIGSTOP) longer than its timeout,
are covered end to end by tests/test_redis_fallback.py (one warning, right results).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pipeline.support import Upstream, context, processor, resources, turn, use

from agentrt.pipeline._redis_codec import FORMAT
from agentrt.pipeline.shared_cache import tag_key, value_key
from agentrt.testing import capture_events
from agentrt.tools import ToolRegistry

if TYPE_CHECKING:
    from redis_support import GateFactory

    from agentrt._redis import RedisGate

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

SHARED = ["local_cache", "single_flight", "shared_cache", "shared_flight"]


class Planted:
    """A pickle that would write a file if anything ever unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.path, "pwned"))


def _stack(gate: RedisGate) -> Any:
    res = resources(redis=gate)
    return processor(res, SHARED)


async def _key_of(gate: RedisGate, tools: ToolRegistry, block: dict[str, Any]) -> str:
    call = await _stack(gate).prepare(block, tools, context())
    return value_key(gate, call, {"account": "acme"})


def _bad_values(call_key: str, tmp_path: Path) -> dict[str, Any]:
    good = {"v": FORMAT, "key": call_key, "content": "WRONG", "is_error": False, "tags": {}}
    return {
        "garbage bytes": b"\xff\xfe\x00garbage",
        "not an object": json.dumps(["WRONG"]),
        "another key's value": json.dumps({**good, "key": "0" * 64}),
        "older format": json.dumps({**good, "v": FORMAT - 1}),
        "newer format": json.dumps({**good, "v": FORMAT + 1}),
        "wrong field types": json.dumps({**good, "is_error": "no"}),
        "a pickle": pickle.dumps(Planted(tmp_path / "pwned")),
    }


@pytest.mark.parametrize("case", ["garbage bytes", "not an object", "another key's value",
                                  "older format", "newer format", "wrong field types",
                                  "a pickle"])
async def test_a_bad_value_under_a_cache_key_is_a_miss_and_is_replaced(
        redis_gate: GateFactory, tmp_path: Path, case: str) -> None:
    gate = redis_gate()
    up = Upstream()
    tools = ToolRegistry([up])
    block = use("get_weather", city="Oslo")
    key = await _key_of(gate, tools, block)
    call = await _stack(gate).prepare(block, tools, context())
    await gate.client.set(key, _bad_values(str(call.key), tmp_path)[case])
    with capture_events() as logs:
        first = await turn(_stack(gate), tools, context("t1"), use("get_weather", city="Oslo"))
        second = await turn(_stack(gate), tools, context("t2"), use("get_weather", city="Oslo"))
    assert first[0]["source"] == "executed" and "WRONG" not in first[0]["content"]
    assert json.loads(first[0]["content"])["city"] == "Oslo"
    assert second[0]["source"] == "shared_cache" and up.count("weather") == 1  # replaced by ours
    assert not (tmp_path / "pwned").exists()  # never unpickled
    events = [e["event"] for e in logs]
    expected = "tool.shared_other_format" if "format" in case else "tool.shared_corrupt"
    assert events.count(expected) == 1 and "redis.unavailable" not in events
    assert gate.available and gate.failures == 0


async def test_a_key_of_another_type_does_not_trip_the_circuit(
        redis_gate: GateFactory) -> None:
    """Failed before: WRONGTYPE was taken for Redis being down: a warning, every Redis
    stage stepping aside for retry_after, and the foreign key never replaced."""
    gate = redis_gate()
    up = Upstream()
    tools = ToolRegistry([up])
    key = await _key_of(gate, tools, use("get_weather", city="Rome"))
    await gate.client.hset(key, mapping={"content": "WRONG"})
    with capture_events() as logs:
        first = await turn(_stack(gate), tools, context("t1"), use("get_weather", city="Rome"))
        second = await turn(_stack(gate), tools, context("t2"), use("get_weather", city="Rome"))
    assert json.loads(first[0]["content"])["city"] == "Rome"
    assert second[0]["source"] == "shared_cache" and up.count("weather") == 1
    assert gate.available and gate.failures == 0
    assert [e["event"] for e in logs].count("redis.unavailable") == 0


@pytest.mark.parametrize("counter", [b"not a number", "hash"])
async def test_a_corrupt_tag_counter_never_serves_a_stale_result(
        redis_gate: GateFactory, counter: bytes | str) -> None:
    """Failed before: int(b"not a number") raised ValueError out of the pipeline (the
    run crashed), and INCR on it failed, so invalidations were lost (stale results)."""
    gate = redis_gate()
    up = Upstream()
    tools = ToolRegistry([up])
    tag = tag_key(gate, "products")
    if counter == "hash":
        await gate.client.hset(tag, mapping={"n": 1})
    else:
        await gate.client.set(tag, counter)
    ctx = context("t1")
    with capture_events() as logs:
        first = await turn(_stack(gate), tools, ctx, use("get_product", product_id=7))
        again = await turn(_stack(gate), tools, context("t2"), use("get_product", product_id=7))
        assert first[0]["source"] == "executed"  # not cached: the counter is unreadable
        assert again[0]["source"] in ("executed", "shared_flight")  # (a flight just landed)
        await turn(_stack(gate), tools, ctx, use("set_price", product_id=7, price=2.0))
        assert int(await gate.client.get(tag)) > 0  # the write reset the counter
        after = [await turn(_stack(gate), tools, context(f"t{n}"),
                            use("get_product", product_id=7)) for n in (3, 4)]
    assert [a[0]["source"] for a in after] == ["executed", "shared_cache"]
    assert gate.available and "redis.unavailable" not in [e["event"] for e in logs]


async def test_a_bad_flight_outcome_is_not_served(redis_gate: GateFactory) -> None:
    gate = redis_gate()
    up = Upstream()
    tools = ToolRegistry([up])
    call = await _stack(gate).prepare(use("get_quote", symbol="X"), tools, context())
    result_key = gate.key("res", "{" + str(call.key) + "}")
    for bad in (b"\x00junk", json.dumps({"v": FORMAT, "key": call.key, "content": "WRONG",
                                         "is_error": False, "tags": {"x": "y"}})):
        await gate.client.set(result_key, bad)
        got = await turn(_stack(gate), tools, context(), use("get_quote", symbol="X"))
        assert "WRONG" not in got[0]["content"] and json.loads(got[0]["content"])["symbol"] == (
            "X")
    assert gate.available
