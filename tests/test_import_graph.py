"""The package's import graph points one way: no module of agentrt imports, even only
for type checking, a module that imports it back (directly or through others).

Built with ``ast`` from the source, so it counts ``TYPE_CHECKING`` imports and imports
inside functions alike: a cycle among annotations is still a cycle a reader has to
hold in their head.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agentrt

ROOT = Path(agentrt.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["agentrt", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(current: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def import_graph() -> dict[str, set[str]]:
    """Module -> the agentrt modules it imports (``from pkg import mod`` names ``pkg.mod``)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                # ``import agentrt.x.y`` names every package on the way; the deepest known wins
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("agentrt"):
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (its modules, first repeated at the end), or None. Iterative DFS."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path: list[str] = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_found_when_there_is_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_storage_imports_nothing_above_it() -> None:
    """``agentrt.thread`` holds storage only: the loop, the pipeline, tools and the LLM
    client are above it."""
    above = ("agentrt.loop", "agentrt.pipeline", "agentrt.llm", "agentrt.jit", "agentrt.tools",
             "agentrt.agent", "agentrt.runtime")
    for module, imports in import_graph().items():
        if module.startswith("agentrt.thread"):
            wrong = sorted(i for i in imports if i.startswith(above))
            assert not wrong, f"{module} imports {wrong}"


# What each layer must not import (docs/architecture.md states the same direction).
_LAYERS = {
    "agentrt.tools": ("agentrt.pipeline", "agentrt.llm", "agentrt.loop", "agentrt.jit",
                      "agentrt.agent", "agentrt.runtime"),
    "agentrt.pipeline": ("agentrt.llm", "agentrt.loop", "agentrt.jit", "agentrt.agent",
                         "agentrt.runtime"),
    "agentrt.llm": ("agentrt.pipeline", "agentrt.tools", "agentrt.loop", "agentrt.jit",
                    "agentrt.agent", "agentrt.runtime"),
    "agentrt.loop": ("agentrt.jit", "agentrt.agent", "agentrt.runtime"),
    "agentrt.jit": ("agentrt.loop", "agentrt.agent", "agentrt.pipeline", "agentrt.llm"),
    "agentrt.runtime": ("agentrt.loop", "agentrt.agent"),
}


def test_layers_point_down() -> None:
    """The dependency direction of docs/architecture.md: each layer imports only below it."""
    graph = import_graph()
    for layer, forbidden in _LAYERS.items():
        for module, imports in graph.items():
            if module == layer or module.startswith(layer + "."):
                wrong = sorted(i for i in imports if i.startswith(forbidden))
                assert not wrong, f"{module} imports {wrong}"
    importers = {m for m, imports in graph.items() if "agentrt.agent" in imports}
    # and the testing helpers, and agentrt.temporal (above the agent: it runs agents)
    assert {m for m in importers
            if not m.startswith(("agentrt.testing.", "agentrt.temporal."))} <= {
        "agentrt", "agentrt._chat", "agentrt._target"}, importers
