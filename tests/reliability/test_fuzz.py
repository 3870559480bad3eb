"""Fuzzing with hypothesis: tool inputs against each tool's schema, random interleavings of
concurrent identical and different calls through the pipeline (against a serial
oracle), and random tool dependency graphs."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline.support import Upstream

from agentrt import RunContext, Tool, ToolError, function, load_settings
from agentrt.jit import DependencyGraph
from agentrt.pipeline import (
    DEFAULT_STAGES,
    CallContext,
    Execute,
    PipelineResources,
    ResponseProcessor,
    StatsRecorder,
    ToolOutcome,
    TurnOutcomes,
    build_pipeline,
)
from agentrt.tools import ToolRegistry

from .crash_child import Warehouse
from .support import Shop

if TYPE_CHECKING:
    from agentrt.tools._schema import FunctionSpec

pytestmark = pytest.mark.anyio

FUZZ = settings(max_examples=60, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


def _value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if "anyOf" in schema:
        return st.one_of([_value(s) for s in schema["anyOf"]])
    if kind == "array":
        return st.lists(_value(schema.get("items", {})), max_size=4)
    return {
        "string": st.text(max_size=20), "integer": st.integers(-10**6, 10**6),
        "number": st.floats(-1e6, 1e6, allow_nan=False), "boolean": st.booleans(),
        "null": st.none(),
    }.get(str(kind), JSON)


def valid_input(spec: FunctionSpec) -> st.SearchStrategy[dict[str, Any]]:
    schema = spec.input_schema
    required = set(schema.get("required", ()))
    fields = {name: _value(prop) for name, prop in schema["properties"].items()}
    return st.fixed_dictionaries({k: v for k, v in fields.items() if k in required},
                                 optional={k: v for k, v in fields.items()
                                           if k not in required})


REGISTRIES = [ToolRegistry([tool]) for tool in (Shop(), Upstream(),
                                                 Warehouse("/nonexistent/effects.log"))]
SPECS = [(registry, registry.get(name)) for registry in REGISTRIES
         for name in registry.function_names()]


def _context(thread: str = "thr_fuzz", account: str = "acme") -> CallContext:
    run = RunContext(thread_id=thread, run_id="run_fuzz", agent="fuzz",
                     identity={"account": account})
    return CallContext(run, StatsRecorder())


def _invalid(spec: FunctionSpec, good: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Not an object at all, an unknown extra key, or a required key missing."""
    choices = [JSON.filter(lambda v: not isinstance(v, dict)),
               st.builds(lambda extra, v: {**good, f"x_{extra}": v}, st.text(max_size=4), JSON)]
    required = sorted(spec.input_schema.get("required", ()))
    if required:
        choices.append(st.sampled_from(required).map(
            lambda k: {n: v for n, v in good.items() if n != k}))
    return st.one_of(choices)


CASES = st.sampled_from(SPECS).flatmap(lambda pair: valid_input(pair[1].spec).flatmap(
    lambda good: st.tuples(st.just(pair), st.just(good), _invalid(pair[1].spec, good))))


@FUZZ
@given(case=CASES)
def test_tool_inputs_valid_and_invalid_against_each_schema(
        case: tuple[tuple[ToolRegistry, Any], dict[str, Any], Any]) -> None:
    """Drawn up front and checked in a plain event loop: hypothesis's own control flow
    must not cross a task boundary."""
    anyio.run(_check_inputs, *case)


async def _check_inputs(pair: tuple[ToolRegistry, Any], good: dict[str, Any],
                        bad: Any) -> None:
    tools, bound = pair
    spec = bound.spec
    processor = ResponseProcessor(Execute(timeout=1, max_result_chars=1000))
    prepared = await processor.prepare({"type": "tool_use", "id": "t1", "name": spec.name,
                                        "input": good}, tools, _context())
    assert not isinstance(prepared, ToolOutcome), prepared.content
    reordered = dict(reversed(list(good.items())))
    again = await processor.prepare({"type": "tool_use", "id": "t2", "name": spec.name,
                                     "input": reordered}, tools, _context())
    assert not isinstance(again, ToolOutcome) and again.key == prepared.key
    if spec.read_only:  # another tenant never shares the key
        other = await processor.prepare({"type": "tool_use", "id": "t3", "name": spec.name,
                                         "input": good}, tools, _context(account="globex"))
        assert not isinstance(other, ToolOutcome)
        assert (other.key == prepared.key) is prepared.options.public
    rejected = await processor.prepare({"type": "tool_use", "id": "t4", "name": spec.name,
                                        "input": bad}, tools, _context())
    assert isinstance(rejected, ToolOutcome) and rejected.is_error
    assert rejected.content.startswith(f"Invalid input for {spec.name}")


class Oracle(Tool):
    """Pure reads (one with a batch form, one failing for multiples of 7) and a side
    effect, all counted; each yields to the scheduler a random number of times."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.reads: Counter[tuple[str, int]] = Counter()
        self.effects = 0

    async def _jitter(self) -> None:
        for _ in range(self.rng.randrange(4)):
            await anyio.lowlevel.checkpoint()

    @function(read_only=True, ttl=600)
    async def square(self, n: int) -> int:
        """n squared; 7's multiples are unlucky."""
        self.reads["square", n] += 1
        await self._jitter()
        if n % 7 == 0:
            raise ToolError(f"{n} is unlucky")
        return n * n

    @function(read_only=True, ttl=600, batch="cubes")
    async def cube(self, n: int) -> int:
        """n cubed."""
        self.reads["cube", n] += 1
        await self._jitter()
        return n**3

    async def cubes(self, ns: list[int]) -> list[int]:
        for n in ns:
            self.reads["cube", n] += 1
        await self._jitter()
        return [n**3 for n in ns]

    @function
    async def record(self, n: int) -> str:
        """A side effect."""
        self.effects += 1
        await self._jitter()
        return f"recorded {n}"


def oracle(name: str, n: int) -> tuple[str, bool]:
    if name == "square":
        return (f"{n} is unlucky", True) if n % 7 == 0 else (str(n * n), False)
    if name == "cube":
        return str(n**3), False
    return f"recorded {n}", False


CALL = st.tuples(st.sampled_from(["square", "cube", "record"]), st.integers(0, 9))
THREADS = st.lists(  # threads -> turns -> calls
    st.tuples(st.sampled_from(["acme", "globex"]),
              st.lists(st.lists(CALL, min_size=1, max_size=5), min_size=1, max_size=3)),
    min_size=1, max_size=5)


@settings(FUZZ, max_examples=200)
@given(threads=THREADS, seed=st.integers(0, 2**32 - 1), parallel=st.booleans())
async def test_random_interleavings_match_a_serial_oracle(
        threads: list[tuple[str, list[list[tuple[str, int]]]]], seed: int,
        parallel: bool) -> None:
    """Every tool_use id gets exactly one result, equal to the oracle's; a read runs at
    most once per key (tenant, function, n) unless it failed; every side effect runs."""
    tool = Oracle(random.Random(seed))
    tools = ToolRegistry([tool])
    resources = PipelineResources.from_settings(load_settings(thread_store="memory",
                                                              batch_window=0.0005))
    handler = build_pipeline(list(DEFAULT_STAGES), resources,
                             Execute(timeout=5, max_result_chars=1000))
    processor = ResponseProcessor(handler, parallel=parallel)
    problems: list[str] = []

    async def one_thread(index: int, account: str, turns: list[list[tuple[str, int]]]) -> None:
        ctx = _context(f"thr_{index}", account)
        for number, calls in enumerate(turns):
            blocks = [{"type": "tool_use", "id": f"toolu_{index}_{number}_{i}", "name": name,
                       "input": {"n": n}} for i, (name, n) in enumerate(calls)]
            turn = TurnOutcomes(blocks)
            await processor.process(turn, ctx, tools)
            results = turn.result_blocks(ToolOutcome("MISSING", is_error=True))
            assert [r["tool_use_id"] for r in results] == [b["id"] for b in blocks]
            for (name, n), result in zip(calls, results, strict=True):
                expected = oracle(name, n)
                if (result["content"], result.get("is_error", False)) != expected:
                    problems.append(f"{name}({n}) -> {result} != {expected}")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index, (account, turns) in enumerate(threads):
                tg.start_soon(one_thread, index, account, turns)
    assert not problems, problems
    asked = Counter((name, n, account) for account, turns in threads
                    for calls in turns for name, n in calls)
    keys = Counter((name, n) for name, n, _ in asked)  # tenants asking each (function, n)
    for (name, n), runs in tool.reads.items():
        if name == "square" and n % 7 == 0:
            continue  # errors are not cached
        assert runs <= keys[name, n], (name, n, runs, keys[name, n])
    assert tool.effects == sum(c for (name, _, _), c in asked.items() if name == "record")


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    names = [f"t{i}" for i in range(draw(st.integers(1, 9)))]
    return {name: draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
            for name in names}


def _has_cycle(requires: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2:
            return False
        state[node] = 1
        found = any(visit(dep) for dep in requires.get(node, ()))
        state[node] = 2
        return found

    return any(visit(node) for node in requires)


@settings(max_examples=300, deadline=None)
@given(requires=graphs(), data=st.data())
def test_random_dependency_graphs(requires: dict[str, list[str]], data: st.DataObject) -> None:
    """A cycle is always found and named by real edges; otherwise every plan lists each
    dependency before its dependents, is closed over allowed dependencies, reports the
    blocked ones, and is the same every time."""
    from agentrt import DependencyCycleError

    graph = DependencyGraph(requires)
    cycle = graph.find_cycle()
    assert (cycle is not None) is _has_cycle(requires)
    if cycle is not None:
        assert cycle[0] == cycle[-1] and len(cycle) >= 2
        assert all(b in requires[a] for a, b in itertools.pairwise(cycle))
        with pytest.raises(DependencyCycleError, match=" -> "):
            graph.check()
        return
    names = sorted(requires)
    wanted = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4))
    blocked = set(data.draw(st.lists(st.sampled_from(names), max_size=2)))
    allowed = [w for w in wanted if w not in blocked]
    plan = graph.plan(allowed, lambda name: name not in blocked)
    order = list(plan.order)
    assert len(order) == len(set(order)) and not blocked & set(order)
    assert set(allowed) <= set(order)
    for name in order:
        for dep in requires[name]:
            if dep in blocked:
                assert dep in plan.blocked.get(name, ())
            else:
                assert dep in order and order.index(dep) < order.index(name), (dep, name)
    assert plan == graph.plan(allowed, lambda name: name not in blocked)
    assert math.isfinite(len(order))
