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
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import distributions
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from .._errors import ConfigError, ToolDefinitionError
from ..log import get_logger
from ..tools import Tool
from .dependencies import DependencyGraph
from .manifest import summary_of

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

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

    ``entries`` are described by their class (or are entry points nothing describes).
    ``described`` names the tools of ``manifest`` the catalog holds too, or is
    ``"all"`` for every one of them: the usual case (an agent listing the tools its
    manifest was written for), which costs nothing per tool to build; their entries
    are built from the manifest on first use. ``sources`` gives the source of those
    that are not the agent's own (``"agent"``). An entry of ``entries`` named like a
    manifest tool takes its place (:func:`load_catalog` checked they are one class).

    What the manifest alone determines was checked when it was written (its
    :attr:`~Manifest.checked`): no cycle among its tools, no function defined twice.
    So building checks only what involves ``entries``: their functions against the
    manifest's (looked up, not parsed), their dependencies, the manifest's
    dependencies on tools outside it, and cycles through them. A manifest read from
    another layout is checked in full.
    """

    def __init__(self, entries: Iterable[CatalogEntry] = (), manifest: Manifest | None = None,
                 *, described: Collection[str] | Literal["all"] = (),
                 sources: Mapping[str, Source] | None = None) -> None:
        self.manifest = manifest
        self._entries: dict[str, CatalogEntry] = {}
        self._built: dict[str, CatalogEntry] = {}  # manifest entries, on first use
        self._functions: dict[str, str] = {}  # of the class-described entries
        self._memo: dict[object, Any] = {}
        self._names: list[str] | None = None
        for entry in entries:
            self._entries[entry.name] = entry
            for fn in entry.functions:
                owner = self._functions.setdefault(fn, entry.name)
                if owner != entry.name:
                    self._duplicate(fn, owner, entry.name)
        self.core_names = tuple(e.name for e in self._entries.values() if e.source == "core")
        self._every = manifest is not None and described == "all"
        self._scope = frozenset() if manifest is None or described == "all" else frozenset(
            described)
        self._holds_manifest_tools = self._every or bool(self._scope)
        self._sources = dict(sources or {})
        requires: dict[str, Sequence[str]] = {e.name: e.requires for e in self._entries.values()}
        graph: Mapping[str, Sequence[str]] = requires
        checks: list[tuple[str, Sequence[str]]] = list(requires.items())
        trusted = manifest is None or manifest.checked
        if manifest is not None and self._holds_manifest_tools:
            for fn, other in manifest.owners(self._functions).items():
                if other != self._functions[fn] and self._described(other):
                    self._duplicate(fn, other, self._functions[fn])
            if self._every and trusted:  # only the edges leaving the manifest need a look
                checks += [(n, d) for n, d in manifest.outside.items() if n not in self._entries]
                graph = _Edges(requires, manifest)
            else:
                held = {n: d for n, d in manifest.requires.items() if self._described(n)}
                checks += held.items()
                graph = {**held, **requires}
        for name, deps in checks:
            for dep in deps:
                if dep not in self:
                    raise ToolDefinitionError(
                        f"tool {name!r} requires {dep!r}, which is not in this agent's "
                        f"catalog{did_you_mean(dep, self.names())}")
        self.graph = DependencyGraph(graph)
        # A checked manifest has no cycle: any cycle passes through an entry's class.
        self.graph.check([n for n, d in requires.items() if d] if trusted else None)

    def _described(self, name: str) -> bool:
        """Is ``name`` a manifest tool this catalog holds (and no entry replaces)?"""
        if self.manifest is None or name in self._entries:
            return False
        return name in self.manifest.by_name if self._every else name in self._scope

    def _duplicate(self, fn: str, first: str, second: str) -> None:
        raise ToolDefinitionError(
            f"function {fn!r} is defined by both tool {first!r} ({self.entry(first).import_path})"
            f" and tool {second!r} ({self.entry(second).import_path}); rename one "
            "(function(name=...))")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or self._described(name))

    def __iter__(self) -> Iterator[CatalogEntry]:
        return (self.entry(name) for name in self.names())

    def __len__(self) -> int:
        return len(self._all_names())

    def entry(self, name: str) -> CatalogEntry:
        found = self._entries.get(name) or self._built.get(name)
        if found is not None:
            return found
        if not self._described(name):
            raise KeyError(name)
        assert self.manifest is not None
        path = self.manifest.by_name[name]
        row = self.manifest.row(path)
        if row is None:
            raise ConfigError(f"{path!r} is listed but has no index entry; regenerate it with "
                              "`agentrt tools manifest`", field=str(self.manifest.path))
        entry = self._built[name] = CatalogEntry.of_row(row, self._sources.get(name, "agent"))
        return entry

    def get(self, name: str) -> CatalogEntry | None:
        return self.entry(name) if name in self else None

    def tool_for(self, function: str) -> str | None:
        """The tool defining ``function``, from the manifest or the class; O(1)."""
        owner = self._functions.get(function)
        if owner is None and self.manifest is not None and self._holds_manifest_tools:
            owner = self.manifest.functions.get(function)
            if owner is None or not self._described(owner):
                return None
        return owner

    def names(self) -> list[str]:
        return list(self._all_names())

    def _all_names(self) -> list[str]:
        if self._names is None:
            found = [*self._entries]
            if self.manifest is not None and self._holds_manifest_tools:
                found += [n for n in self.manifest.tool_names if self._described(n)]
            self._names = found
        return self._names

    def function_names(self) -> list[str]:
        names = list(self._functions)
        if self.manifest is not None and self._holds_manifest_tools:
            names += [fn for fn, t in self.manifest.functions.items() if self._described(t)]
        return names

    def memo(self, key: object, build: Callable[[], _T]) -> _T:
        """What is derived from the whole catalog (a loader's tool listing, its deferred
        definitions), built once. ``key`` must determine the value's type."""
        found: _T | None = self._memo.get(key)
        if found is None:
            found = self._memo[key] = build()
        return found


class _Edges(Mapping[str, "Sequence[str]"]):
    """A catalog's dependency edges: its classes' own, then the manifest's for every
    other tool. The manifest's are parsed on the first look-up, which start-up need
    not make: a checked manifest has no cycle of its own to search for."""

    def __init__(self, own: Mapping[str, Sequence[str]], manifest: Manifest) -> None:
        self._own = own
        self._manifest = manifest

    def __getitem__(self, name: str) -> Sequence[str]:
        found = self._own.get(name)
        return found if found is not None else self._manifest.requires[name]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._manifest.requires, **self._own})

    def __len__(self) -> int:
        return len({**self._manifest.requires, **self._own})


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _imported(path: str, source: Source) -> CatalogEntry:
    """The entry of a path no manifest describes: imported now, with a warning."""
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

    The listed import paths are compared with the manifest's as sets (C-level work):
    when they are the same, the catalog holds the whole manifest and nothing is done
    per tool. Otherwise each is looked up (in dictionaries built once per manifest).
    """
    explicit: dict[str, CatalogEntry] = {}  # described by a class, or by nothing

    def add(entry: CatalogEntry) -> None:
        known = explicit.get(entry.name)
        if known is None:
            explicit[entry.name] = entry
        elif known.import_path == entry.import_path:
            return
        elif entry.source == "entry_point":
            log.warning("jit.tool_shadowed", tool=entry.name, kept=known.import_path,
                        ignored=entry.import_path)
        else:
            raise ToolDefinitionError(f"two tools are named {entry.name!r}: "
                                      f"{known.import_path} and {entry.import_path}")

    for tool in core:
        add(CatalogEntry.of_class(tool, "core"))
    paths, classes = _partition(listed)
    for cls in classes:
        add(CatalogEntry.of_class(cls, "agent"))
    wanted = set(paths)
    # The manifest's tools the catalog holds: all of them, or these paths (-> source).
    every = (manifest is not None and len(wanted) == len(manifest.paths)
             and wanted.issuperset(manifest.paths))
    chosen: dict[str, Source] = {}
    if not every:
        in_manifest = manifest.by_path if manifest is not None else {}
        chosen = dict.fromkeys(wanted.intersection(in_manifest), "agent")
        if len(chosen) < len(wanted):
            for path in dict.fromkeys(paths):  # in the listed order
                if path not in in_manifest:
                    add(_imported(path, "agent"))
    for path in configured:
        if path in wanted or path in chosen:
            continue
        if manifest is not None and path in manifest:
            chosen[path] = "config"
        else:
            add(_imported(path, "config"))
    points = installed_entry_points() if include_entry_points else ()
    if points:
        seen = wanted | chosen.keys() | {e.import_path for e in explicit.values()}
        for name, path in points:
            if path in seen:
                continue
            if manifest is not None and path in manifest:
                chosen[path] = "entry_point"
                continue
            log.warning("jit.not_in_manifest", import_path=path, tool=name, imported=False,
                        hint="its functions are unknown until it is activated; run "
                             "`agentrt tools manifest`")
            add(CatalogEntry(name=name, source="entry_point", import_path=path,
                             described=False))
    if manifest is None:
        return Catalog(explicit.values())
    # A class named like a manifest tool the catalog holds: the same tool (the class
    # replaces the manifest's entry), or a clash, which an entry point loses.
    for name, path in manifest.paths_of(explicit).items():
        entry = explicit[name]
        if path == entry.import_path or not (every or path in chosen):
            continue
        if entry.source == "entry_point":
            log.warning("jit.tool_shadowed", tool=name, kept=path, ignored=entry.import_path)
            del explicit[name]
        elif chosen.get(path) == "entry_point":
            log.warning("jit.tool_shadowed", tool=name, kept=entry.import_path, ignored=path)
            del chosen[path]
        else:
            raise ToolDefinitionError(f"two tools are named {name!r}: {entry.import_path} "
                                      f"and {path}")
    if every:
        return Catalog(explicit.values(), manifest, described="all")
    names = manifest.by_path
    return Catalog(explicit.values(), manifest, described=[names[p] for p in chosen],
                   sources={names[p]: s for p, s in chosen.items() if s != "agent"})


def _partition(listed: Sequence[str | type[Tool]]) -> tuple[Sequence[str], list[type[Tool]]]:
    """Import paths and classes; a list of paths alone is passed through (C-level check)."""
    if set(map(type, listed)) <= {str}:
        return listed, []  # type: ignore[return-value]  # all of them are str
    return ([i for i in listed if isinstance(i, str)],
            [i for i in listed if not isinstance(i, str)])
