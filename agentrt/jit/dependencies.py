"""Tool dependencies: a cycle check at start-up, and a load order for each activation.

Tools name the tools they need (``Tool.requires``). Activating one activates its
dependencies first. The order is deterministic (the same request always loads the
same tools in the same order) because the run's tools list is rebuilt from it and
must come out byte-identical in every process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._errors import DependencyCycleError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = ["DependencyGraph", "LoadPlan"]


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What one activation loads.

    ``order`` lists the tools to activate, every dependency before its dependents.
    ``blocked`` maps a tool to the dependencies it declares but the policy refuses:
    they are skipped, and the tool is loaded *degraded*.
    """

    order: tuple[str, ...]
    requested: frozenset[str]
    blocked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class DependencyGraph:
    """``requires``: tool -> the tools it needs, in declared order.

    Tools absent from the mapping need nothing. The mapping is kept as given, not
    copied (a catalog passes its manifest's section for a thousand tools, so building
    the graph costs nothing per tool). It is checked for cycles once (:meth:`check`),
    when the catalog is built, so a cycle fails at start-up.
    """

    def __init__(self, requires: Mapping[str, Sequence[str]]) -> None:
        self._requires = requires
        self._layers: dict[str, int] = {}

    def requires(self, name: str) -> tuple[str, ...]:
        """The tools ``name`` requires directly."""
        return tuple(self._requires.get(name, ()))

    def check(self, roots: Iterable[str] | None = None) -> None:
        """Raise :class:`DependencyCycleError` naming the first cycle found (in name order).

        ``roots`` limits the search to what they reach: a catalog whose manifest was
        checked when it was written (no cycle among its tools) need only search from
        the tools it holds as classes, since any cycle now must pass through one of
        them. Layers found on the way are kept, so later look-ups are O(1).
        """
        for root in sorted(self._requires if roots is None else roots):
            _depths(root, self.requires, self._layers)

    def find_cycle(self) -> tuple[str, ...] | None:
        """A cycle as ``(a, b, ..., a)``, or None."""
        try:
            self.check()
        except DependencyCycleError as exc:
            return exc.cycle
        return None

    def layer(self, name: str) -> int:
        """0 for a tool that needs nothing, else one more than its deepest dependency.

        Used to order the tools activated together so dependencies come first.
        """
        if name not in self._layers:
            _depths(name, self.requires, self._layers)
        return self._layers[name]

    def plan(self, requested: Iterable[str], allowed: Callable[[str], bool]) -> LoadPlan:
        """Closure of ``requested`` over allowed dependencies, in load order.

        Order: by layer within the closure (dependencies first); within a layer the
        requested tools before plain dependencies; otherwise request order, then the
        order in which dependencies were discovered. The caller has already refused
        requested tools the policy blocks; blocked *dependencies* are skipped here.
        """
        wanted = list(dict.fromkeys(requested))
        rank = {name: index for index, name in enumerate(wanted)}
        blocked: dict[str, list[str]] = {}
        queue = list(wanted)
        for node in queue:  # BFS; the list grows as dependencies are discovered
            for dep in self.requires(node):
                if not allowed(dep):
                    blocked.setdefault(node, []).append(dep)
                elif dep not in rank:
                    rank[dep] = len(rank)
                    queue.append(dep)
        local: dict[str, int] = {}
        for name in rank:
            _depths(name, lambda n: [d for d in self.requires(n) if d in rank], local)
        chosen = frozenset(wanted)
        order = sorted(rank, key=lambda n: (local[n], n not in chosen, rank[n]))
        return LoadPlan(tuple(order), chosen, {k: tuple(v) for k, v in blocked.items()})


def _depths(root: str, deps_of: Callable[[str], Sequence[str]],
            memo: dict[str, int]) -> None:
    """Fill ``memo`` with the depth of ``root`` and everything below it (iterative DFS)."""
    if root in memo:
        return
    path = [root]
    stack = [iter(deps_of(root))]
    while stack:
        dep = next(stack[-1], None)
        if dep is None:
            stack.pop()
            node = path.pop()
            memo[node] = 1 + max((memo[d] for d in deps_of(node)), default=-1)
        elif dep in path:
            raise DependencyCycleError((*path[path.index(dep):], dep))
        elif dep not in memo:
            path.append(dep)
            stack.append(iter(deps_of(dep)))
