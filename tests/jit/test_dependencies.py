from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentrt import DependencyCycleError
from agentrt.jit import DependencyGraph

NAMES = [f"t{i}" for i in range(12)]


def test_dependencies_load_first_requested_first_within_a_layer() -> None:
    # The seed's example: presentation and image_edit need files.
    graph = DependencyGraph({"presentation": ["files"], "image_edit": ["files"]})
    plan = graph.plan(["presentation", "web_search", "image_edit"], lambda _: True)
    assert plan.order == ("web_search", "files", "presentation", "image_edit")
    assert plan.blocked == {}


def test_a_blocked_dependency_is_skipped_and_reported_not_loaded() -> None:
    graph = DependencyGraph({"presentation": ["files", "web"], "files": ["disk"]})
    plan = graph.plan(["presentation"], lambda name: name != "files")
    assert plan.order == ("web", "presentation")  # disk is only needed by the blocked files
    assert plan.blocked == {"presentation": ("files",)}


def test_duplicates_in_the_request_are_loaded_once() -> None:
    plan = DependencyGraph({"a": ["b"]}).plan(["a", "b", "a"], lambda _: True)
    assert plan.order == ("b", "a") and plan.requested == {"a", "b"}


@pytest.mark.parametrize(("edges", "cycle"), [
    ({"a": ["b"], "b": ["a"]}, ("a", "b", "a")),
    ({"a": ["a"]}, ("a", "a")),
    ({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}, ("a", "b", "c", "a")),
])
def test_a_cycle_is_rejected_naming_it(edges: dict[str, list[str]],
                                       cycle: tuple[str, ...]) -> None:
    with pytest.raises(DependencyCycleError) as caught:
        DependencyGraph(edges).check()
    assert caught.value.cycle == cycle
    assert " -> ".join(cycle) in str(caught.value)


def test_deep_chains_do_not_recurse() -> None:
    edges = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    graph = DependencyGraph(edges)
    graph.check()
    assert graph.layer("n0") == 5000
    assert graph.plan(["n4990"], lambda _: True).order == tuple(f"n{i}" for i in range(5000, 4989,
                                                                                     -1))


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Edges only from a later name to an earlier one in a random permutation: acyclic."""
    order = draw(st.permutations(NAMES))
    edges: dict[str, list[str]] = {}
    for i, name in enumerate(order):
        if i:
            deps = draw(st.lists(st.sampled_from(order[:i]), max_size=4, unique=True))
            if deps:
                edges[name] = deps
    return edges


def _edges_respected(order: tuple[str, ...], edges: dict[str, list[str]],
                     allowed: frozenset[str]) -> None:
    position = {name: i for i, name in enumerate(order)}
    for node, deps in edges.items():
        for dep in deps:
            if node in position and dep in allowed:
                assert dep in position and position[dep] < position[node], (node, dep, order)


@settings(max_examples=100)
@given(edges=dags(), data=st.data())
def test_for_random_dags_every_edge_is_respected(edges: dict[str, list[str]],
                                                 data: st.DataObject) -> None:
    requested = data.draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6))
    blocked = frozenset(data.draw(st.sets(st.sampled_from(NAMES), max_size=3)))
    requested = [r for r in requested if r not in blocked] or [NAMES[0]]
    allowed = frozenset(NAMES) - blocked | set(requested)
    graph = DependencyGraph(edges)
    graph.check()
    plan = graph.plan(requested, lambda name: name in allowed)

    _edges_respected(plan.order, edges, allowed)
    # Exactly the closure of the request over allowed dependencies, each tool once.
    closure, queue = set(requested), list(requested)
    for node in queue:
        for dep in edges.get(node, []):
            if dep in allowed and dep not in closure:
                closure.add(dep)
                queue.append(dep)
    assert sorted(plan.order) == sorted(closure)
    # Every blocked dependency is reported against a loaded tool that declares it.
    for tool, deps in plan.blocked.items():
        assert tool in closure and all(d not in allowed and d in edges[tool] for d in deps)
    # The same request always gives the same order.
    assert DependencyGraph(edges).plan(requested, lambda n: n in allowed) == plan


@settings(max_examples=100)
@given(edges=dags(), data=st.data())
def test_requested_tools_come_before_plain_dependencies_of_their_layer(
        edges: dict[str, list[str]], data: st.DataObject) -> None:
    requested = data.draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    graph = DependencyGraph(edges)
    plan = graph.plan(requested, lambda _: True)
    local: dict[str, int] = {}
    for name in plan.order:  # order respects edges, so dependencies are already known
        local[name] = 1 + max((local[d] for d in edges.get(name, []) if d in local), default=-1)
    keys = [(local[n], n not in plan.requested) for n in plan.order]
    assert keys == sorted(keys)
    firsts = [n for n in plan.order if n in plan.requested]
    by_layer = sorted(firsts, key=lambda n: (local[n], requested.index(n)))
    assert firsts == by_layer  # within a layer, in the order they were asked for


@settings(max_examples=100)
@given(edges=dags(), data=st.data())
def test_random_graphs_with_a_cycle_are_rejected(edges: dict[str, list[str]],
                                                 data: st.DataObject) -> None:
    # Close a cycle: a path a -> ... -> b exists or not; add b -> ... -> a both ways.
    a, b = data.draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=2, unique=True))
    edges = {k: list(v) for k, v in edges.items()}
    edges.setdefault(a, []).append(b)
    edges.setdefault(b, []).append(a)
    with pytest.raises(DependencyCycleError) as caught:
        DependencyGraph(edges).check()
    cycle = caught.value.cycle
    assert cycle[0] == cycle[-1] and len(cycle) >= 2
    for node, dep in itertools.pairwise(cycle):
        assert dep in edges[node]  # a real cycle of the graph, not a made-up one
    assert DependencyGraph(edges).find_cycle() == cycle
