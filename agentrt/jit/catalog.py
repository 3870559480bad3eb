"""The catalog: every tool an agent may load, known by name without importing it.

Sources, in precedence order: the agent's core tools, its ``tool_catalog``, the
config's ``catalog``, and the ``agentrt.tools`` entry-point group (installed
packages adding tools). An import path's metadata comes from the manifest; a
path missing from it is imported at start-up (with a warning), except for an
entry point, which is listed by name and imported only when activated.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import sys
from dataclasses import dataclass
from importlib.metadata import distributions
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from .._errors import ConfigError, ToolDefinitionError
from ..log import get_logger
from ..tools import Tool
from .dependencies import DependencyGraph
from .manifest import summary_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from .manifest import Manifest, ManifestRow

__all__ = ["ENTRY_POINT_GROUP", "Catalog", "CatalogEntry", "Source", "import_path_of",
           "import_tool", "installed_entry_points", "load_catalog"]

log = get_logger("agentrt.jit")

ENTRY_POINT_GROUP = "agentrt.tools"
_T = TypeVar("_T")
Source: TypeAlias = Literal["core", "agent", "config", "entry_point"]


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What the catalog knows about one tool. ``cls`` is set only when the class was
    already imported (core tools, classes listed directly); ``described`` is False
    for an entry point missing from the manifest: its functions are unknown until
    it is imported."""

    name: str
    source: Source
    import_path: str
    summary: str = ""
    version: str | None = None
    requires: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    fingerprint: str | None = None
    cls: type[Tool] | None = None
    described: bool = True

    @classmethod
    def of_class(cls, tool: type[Tool], source: Source) -> CatalogEntry:
        return cls(name=tool.name, source=source, import_path=import_path_of(tool),
                   summary=summary_of(tool.__doc__), version=tool.version,
                   requires=tuple(tool.requires), functions=tuple(tool.functions()), cls=tool)

    @classmethod
    def of_row(cls, row: ManifestRow, source: Source) -> CatalogEntry:
        return cls(name=row.name, source=source, import_path=row.import_path,
                   summary=row.summary, version=row.version, requires=row.requires,
                   functions=row.functions, fingerprint=row.fingerprint)


def import_path_of(tool: type[Tool]) -> str:
    return f"{tool.__module__}:{tool.__qualname__}"


def import_tool(path: str) -> type[Tool]:
    """``"package.module:Class"`` -> the class; any failure is a ToolDefinitionError."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ToolDefinitionError(f"cannot import tool {path!r}: "
                                  f"{type(exc).__name__}: {exc}") from exc
    found: object = module
    for part in attr.split("."):
        found = getattr(found, part, None)
    if not (inspect.isclass(found) and issubclass(found, Tool)):
        raise ToolDefinitionError(f"{path!r} is not a Tool subclass")
    return found


class Catalog:
    """Tool name -> entry and function name -> tool name, both O(1), plus the
    dependency graph. Immutable once built; checked for duplicate function names,
    unknown dependencies and cycles when it is built.

    ``entries`` are described by their class (or are entry points nothing
    describes); ``from_manifest`` lists ``(name, import path, source)`` of tools the
    manifest describes: their entries are built on first use, so building a catalog
    of a thousand tools costs a few dictionary operations per tool.
    """

    def __init__(self, entries: Iterable[CatalogEntry] = (), manifest: Manifest | None = None,
                 *, from_manifest: Iterable[tuple[str, str, Source]] = ()) -> None:
        self.manifest = manifest
        self._all: dict[str, CatalogEntry | tuple[str, Source]] = {}
        self._functions: dict[str, str] = {}  # of the class-described entries
        self._memo: dict[object, Any] = {}
        explicit = list(entries)
        for entry in explicit:
            self._all[entry.name] = entry
            for fn in entry.functions:
                owner = self._functions.setdefault(fn, entry.name)
                if owner != entry.name:
                    self._duplicate(fn, owner, entry.name)
        lazy = {name: (path, source) for name, path, source in from_manifest} if manifest else {}
        self._all.update(lazy)
        self._in_manifest = lazy.keys()  # names described by the manifest; O(1) membership
        requires = {e.name: e.requires for e in explicit if e.requires}
        if self._in_manifest:
            assert manifest is not None
            functions = manifest.functions
            for fn, owner in self._functions.items():
                other = functions.get(fn)
                if other is not None and other != owner and other in self._in_manifest:
                    self._duplicate(fn, other, owner)
            requires.update((name, tuple(deps)) for name, deps in manifest.requires.items()
                            if name in self._in_manifest)
        for name, deps in requires.items():
            for dep in deps:
                if dep not in self._all:
                    raise ToolDefinitionError(
                        f"tool {name!r} requires {dep!r}, which is not in this agent's "
                        f"catalog{did_you_mean(dep, self._all)}")
        self.core_names = tuple(e.name for e in explicit if e.source == "core")
        self.graph = DependencyGraph(requires)
        self.graph.check()

    def _duplicate(self, fn: str, first: str, second: str) -> None:
        raise ToolDefinitionError(
            f"function {fn!r} is defined by both tool {first!r} ({self.entry(first).import_path})"
            f" and tool {second!r} ({self.entry(second).import_path}); rename one "
            "(function(name=...))")

    def __contains__(self, name: object) -> bool:
        return name in self._all

    def __iter__(self) -> Iterator[CatalogEntry]:
        return (self.entry(name) for name in list(self._all))

    def __len__(self) -> int:
        return len(self._all)

    def entry(self, name: str) -> CatalogEntry:
        found = self._all[name]
        if isinstance(found, CatalogEntry):
            return found
        path, source = found
        row = self.manifest.row(path) if self.manifest is not None else None
        if row is None:
            raise ConfigError(f"{path!r} is listed but has no index entry; regenerate it with "
                              "`agentrt tools manifest`",
                              field=str(self.manifest.path if self.manifest else "manifest"))
        entry = self._all[name] = CatalogEntry.of_row(row, source)
        return entry

    def get(self, name: str) -> CatalogEntry | None:
        return self.entry(name) if name in self._all else None

    def tool_for(self, function: str) -> str | None:
        """The tool defining ``function``, from the manifest or the class; O(1)."""
        owner = self._functions.get(function)
        if owner is None and self._in_manifest:
            assert self.manifest is not None
            owner = self.manifest.functions.get(function)
            if owner not in self._in_manifest:
                return None
        return owner

    def names(self) -> list[str]:
        return list(self._all)

    def function_names(self) -> list[str]:
        names = list(self._functions)
        if self._in_manifest:
            assert self.manifest is not None
            names += [fn for fn, t in self.manifest.functions.items() if t in self._in_manifest]
        return names

    def memo(self, key: object, build: Callable[[], _T]) -> _T:
        """What is derived from the whole catalog (a loader's tool listing, its deferred
        definitions), built once. ``key`` must determine the value's type."""
        found: _T | None = self._memo.get(key)
        if found is None:
            found = self._memo[key] = build()
        return found


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _entry_for_path(path: str, source: Source,
                    manifest: Manifest | None) -> CatalogEntry | tuple[str, str, Source]:
    """``(name, path, source)`` when the manifest describes the path (nothing imported);
    otherwise the imported class's entry, with a warning."""
    name = manifest.names.get(path) if manifest is not None else None
    if name is not None:
        return (name, path, source)
    log.warning("jit.not_in_manifest", import_path=path, imported=True,
                hint="run `agentrt tools manifest` so start-up need not import it")
    return CatalogEntry.of_class(import_tool(path), source)


# Entry points by sys.path: scanning installed distributions costs milliseconds,
# and what is installed does not change while sys.path stays the same.
_scanned: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}


def installed_entry_points() -> tuple[tuple[str, str], ...]:
    """(name, "pkg.mod:Class") of the ``agentrt.tools`` group; nothing is imported.

    Reads each distribution's entry_points.txt and parses only those that mention
    the group: a quarter of what ``importlib.metadata.entry_points`` costs.
    """
    key = tuple(sys.path)
    found = _scanned.get(key)
    if found is None:
        pairs: dict[tuple[str, str], None] = {}
        for dist in distributions():
            text = dist.read_text("entry_points.txt")
            if text and ENTRY_POINT_GROUP in text:
                pairs.update(dict.fromkeys((ep.name, ep.value) for ep in dist.entry_points
                                           if ep.group == ENTRY_POINT_GROUP))
        found = tuple(pairs)
        _scanned.clear()
        _scanned[key] = found
    return found


def load_catalog(
    *,
    core: Sequence[type[Tool]] = (),
    listed: Sequence[str | type[Tool]] = (),
    configured: Sequence[str] = (),
    manifest: Manifest | None = None,
    include_entry_points: bool = True,
) -> Catalog:
    """Build an agent's catalog. Raises ToolDefinitionError for a tool name claimed by
    two different classes (an entry point loses to an explicit source, with a warning),
    a duplicate function name or an unknown dependency; DependencyCycleError for a cycle.
    """
    found: dict[str, CatalogEntry | tuple[str, str, Source]] = {}

    def add(item: CatalogEntry | tuple[str, str, Source]) -> None:
        name, path, source = ((item.name, item.import_path, item.source)
                              if isinstance(item, CatalogEntry) else item)
        known = found.get(name)
        if known is None:
            found[name] = item
            return
        known_path = known.import_path if isinstance(known, CatalogEntry) else known[1]
        if known_path == path:
            return
        if source == "entry_point":
            log.warning("jit.tool_shadowed", tool=name, kept=known_path, ignored=path)
            return
        raise ToolDefinitionError(f"two tools are named {name!r}: {known_path} and {path}")

    for tool in core:
        add(CatalogEntry.of_class(tool, "core"))
    names = manifest.names if manifest is not None else {}
    for item in listed:
        if isinstance(item, str):
            name = names.get(item)
            if name is not None and name not in found:  # the common case, kept cheap
                found[name] = (name, item, "agent")
            else:
                add(_entry_for_path(item, "agent", manifest))
        else:
            add(CatalogEntry.of_class(item, "agent"))
    for path in configured:
        add(_entry_for_path(path, "config", manifest))
    points = installed_entry_points() if include_entry_points else ()
    if points:
        seen = {e.import_path if isinstance(e, CatalogEntry) else e[1] for e in found.values()}
        for name, path in points:
            if path in seen:
                continue
            described = manifest.names.get(path) if manifest is not None else None
            if described is not None:
                add((described, path, "entry_point"))
                continue
            log.warning("jit.not_in_manifest", import_path=path, tool=name, imported=False,
                        hint="its functions are unknown until it is activated; run "
                             "`agentrt tools manifest`")
            add(CatalogEntry(name=name, source="entry_point", import_path=path,
                             described=False))
    entries = [e for e in found.values() if isinstance(e, CatalogEntry)]
    return Catalog(entries, manifest, from_manifest=[e for e in found.values()
                                                     if not isinstance(e, CatalogEntry)])
