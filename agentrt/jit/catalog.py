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
import os
import sys
from dataclasses import dataclass
from importlib.metadata import distributions
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from .._errors import ToolDefinitionError
from ..log import get_logger
from ..tools import Tool
from .dependencies import DependencyGraph
from .manifest import EntryPointRecord, summary_of

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from .manifest import Manifest, ManifestTool

__all__ = ["ENTRY_POINT_GROUP", "Catalog", "CatalogEntry", "Source", "import_path_of",
           "import_tool", "installed_entry_points", "installed_places", "load_catalog",
           "record_entry_points", "same_places"]

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
        """The entry of an imported tool class."""
        return cls(name=tool.name, source=source, import_path=import_path_of(tool),
                   summary=summary_of(tool.__doc__), version=tool.version,
                   requires=tuple(tool.requires), functions=tuple(tool.functions()), cls=tool)

    @classmethod
    def of_manifest(cls, row: ManifestTool, source: Source) -> CatalogEntry:
        """The entry of a tool known from its manifest row (not imported)."""
        return cls(name=row.name, source=source, import_path=row.location,
                   summary=row.summary, version=row.version, requires=row.requires,
                   functions=row.functions, fingerprint=row.fingerprint or None)


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
    dependency graph. Immutable once built, and checked when built: one tool per
    function, no unknown dependency, no dependency cycle (what concerns the
    manifest's tools alone was checked when it was written).

    ``entries`` are the tools described by their class (or by nothing: an entry
    point the manifest lacks). ``described`` names the manifest's tools the catalog
    holds too, with their source; their entries are built from the manifest's rows
    on first use. A name in both is a mistake :func:`load_catalog` has refused.
    """

    def __init__(self, entries: Iterable[CatalogEntry] = (), manifest: Manifest | None = None,
                 *, described: Mapping[str, Source] | None = None) -> None:
        self.manifest = manifest
        self._entries = {entry.name: entry for entry in entries}
        self._described = dict(described or {}) if manifest is not None else {}
        self._built: dict[str, CatalogEntry] = {}  # the described ones, on first use
        self._memo: dict[object, Any] = {}
        self._functions: dict[str, str] = {}  # of ``entries``; the manifest maps the rest
        for entry in self._entries.values():
            for fn in entry.functions:
                first = self._functions.setdefault(fn, entry.name)
                if first != entry.name:
                    self._duplicate(fn, first, entry.name)
                other = self._manifest_owner(fn)
                if other is not None:
                    self._duplicate(fn, other, entry.name)
        self.core_names = tuple(e.name for e in self._entries.values() if e.source == "core")
        requires: dict[str, Sequence[str]] = {}
        if manifest is not None:
            requires.update((n, d) for n, d in manifest.requires.items() if n in self._described)
        requires.update((e.name, e.requires) for e in self._entries.values() if e.requires)
        for name, deps in requires.items():
            for dep in deps:
                if dep not in self:
                    raise ToolDefinitionError(
                        f"tool {name!r} requires {dep!r}, which is not in this agent's "
                        f"catalog{did_you_mean(dep, self.names())}")
        self.graph = DependencyGraph(requires)
        # render_manifest refused any cycle among the manifest's tools, so a cycle can only
        # pass through a tool described by its class: the search starts from those.
        self.graph.check([e.name for e in self._entries.values() if e.requires])

    def _manifest_owner(self, function: str) -> str | None:
        """The manifest tool this catalog holds that defines ``function``, if any."""
        owner = self.manifest.owner(function) if self.manifest is not None else None
        return owner if owner in self._described else None

    def _duplicate(self, fn: str, first: str, second: str) -> None:
        raise ToolDefinitionError(
            f"function {fn!r} is defined by both tool {first!r} ({self.entry(first).import_path})"
            f" and tool {second!r} ({self.entry(second).import_path}); rename one "
            "(function(name=...))")

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._described

    def __iter__(self) -> Iterator[CatalogEntry]:
        return (self.entry(name) for name in self.names())

    def __len__(self) -> int:
        return len(self._entries) + len(self._described)

    def entry(self, name: str) -> CatalogEntry:
        """The tool's entry (built from the manifest on first use); ``KeyError`` if the
        catalog has no such tool."""
        found = self._entries.get(name) or self._built.get(name)
        if found is None:
            source = self._described[name]  # KeyError: not in the catalog
            assert self.manifest is not None
            found = self._built[name] = CatalogEntry.of_manifest(self.manifest.tool(name),
                                                                 source)
        return found

    def get(self, name: str) -> CatalogEntry | None:
        return self.entry(name) if name in self else None

    def tool_for(self, function: str) -> str | None:
        """The tool defining ``function``, from its class or the manifest; O(1)."""
        return self._functions.get(function) or self._manifest_owner(function)

    def names(self) -> list[str]:
        """Every tool of the catalog."""
        return [*self._entries, *self._described]

    def function_names(self) -> list[str]:
        """Every function of every catalog tool."""
        held = [] if self.manifest is None else [
            fn for fn, tool in self.manifest.functions.items() if tool in self._described]
        return [*self._functions, *held]

    def functions_of(self, name: str) -> tuple[str, ...] | None:
        """The tool's function names, without building its entry; None when nothing
        describes them (an entry point the manifest lacks). KeyError: not in the catalog."""
        entry = self._entries.get(name)
        if entry is not None:
            return entry.functions if entry.described else None
        if name not in self._described or self.manifest is None:
            raise KeyError(name)
        return self.manifest.functions_of(name)

    def details(self, name: str) -> dict[str, Any] | None:
        """A manifest tool's full entry (its functions' definitions), None for others."""
        return self.details_many([name])[name]

    def details_many(self, names: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """:meth:`details` of each name, read in one pass over the manifest."""
        wanted = list(names)
        held = [name for name in wanted if name in self._described]
        found = self.manifest.entries(held) if self.manifest is not None and held else {}
        return {name: found.get(name) for name in wanted}

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


def _imported(path: str, source: Source) -> CatalogEntry:
    """The entry of a path no manifest describes: imported now, with a warning."""
    log.warning("jit.not_in_manifest", import_path=path, imported=True,
                hint="run `agentrt tools manifest` so start-up need not import it")
    return CatalogEntry.of_class(import_tool(path), source)


def installed_entry_points() -> tuple[tuple[str, str], ...]:
    """(name, "pkg.mod:Class") of the ``agentrt.tools`` group; nothing is imported.

    Reads each distribution's entry_points.txt and parses only those that mention
    the group: a quarter of what ``importlib.metadata.entry_points`` costs.
    """
    pairs: dict[tuple[str, str], None] = {}
    for dist in distributions():
        text = dist.read_text("entry_points.txt")
        if text and ENTRY_POINT_GROUP in text:
            pairs.update(dict.fromkeys((ep.name, ep.value) for ep in dist.entry_points
                                       if ep.group == ENTRY_POINT_GROUP))
    return tuple(pairs)


def record_entry_points() -> EntryPointRecord:
    """The installed entry points and where the distributions are, for the manifest:
    the places are taken first, so that an install during the scan makes them stale."""
    places = installed_places()
    return EntryPointRecord(installed_entry_points(), places)


# Why a record: the entry-point scan reads the metadata of every installed distribution
# (some 2 ms for 80 of them), and the first agent of each fresh process paid it. The
# manifest, which the user regenerates when tools change, records the scan's result with
# the state of the directories the distributions live in, and start-up checks that state
# (a stat per sys.path directory) instead of scanning. Installing, upgrading or removing a
# distribution adds or removes an entry of its directory, which changes that directory's
# modification time. (Editing an installed entry_points.txt in place goes unseen:
# regenerate the manifest after doing that.)

_DISTRIBUTIONS = (".dist-info", ".egg-info")


def installed_places() -> tuple[tuple[str, bool, int], ...]:
    """For each existing ``sys.path`` entry: its absolute path, whether it holds
    distributions, and its modification time (ns)."""
    places = []
    for path in _search_path():
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            continue  # absent: it holds nothing (checked again if it appears)
        places.append((path, _holds_distributions(path), mtime))
    return tuple(places)


def same_places(recorded: Iterable[tuple[str, bool, int]]) -> bool:
    """Whether the distributions are still where ``recorded`` (:func:`installed_places`,
    of another process) saw them: each directory that held some is on ``sys.path`` with
    the same modification time, and every other ``sys.path`` entry holds none: recorded
    so with the same time, or listed now (``sys.path[0]``, the script's directory or the
    working directory, differs from one process to the next)."""
    was = {path: (holds, mtime) for path, holds, mtime in recorded}
    now = _search_path()
    if any(holds and path not in now for path, (holds, _) in was.items()):
        return False
    for path in now:
        held, mtime = was.get(path, (False, None))
        try:
            current: int | None = os.stat(path).st_mtime_ns
        except OSError:
            current = None
        if current == mtime:
            continue
        if held or (current is not None and _holds_distributions(path)):
            return False
    return True


def _search_path() -> dict[str, None]:
    """``sys.path`` as absolute paths, each once, in order."""
    return dict.fromkeys(os.path.abspath(entry) for entry in sys.path)


def _holds_distributions(path: str) -> bool:
    """Whether a sys.path entry holds distributions; one that cannot be listed (a zip
    file) is taken to."""
    try:
        with os.scandir(path) as listing:
            return any(entry.name.endswith(_DISTRIBUTIONS) for entry in listing)
    except OSError:
        return True


def load_catalog(
    *,
    core: Sequence[type[Tool]] = (),
    listed: Sequence[str | type[Tool]] = (),
    configured: Sequence[str] = (),
    manifest: Manifest | None = None,
    entry_points: Iterable[tuple[str, str]] = (),
) -> Catalog:
    """Build an agent's catalog from its sources (``entry_points``: the pairs of
    :func:`installed_entry_points`, or none). Raises ToolDefinitionError for a tool
    name claimed by two different tools (an entry point loses to an explicit source,
    with a warning), a duplicate function name or an unknown dependency;
    DependencyCycleError for a cycle.
    """
    explicit: dict[str, CatalogEntry] = {}  # described by a class, or by nothing
    described: dict[str, Source] = {}  # the manifest's tools, by name
    in_manifest = manifest.by_import_path if manifest is not None else {}

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
    for item in listed:
        if not isinstance(item, str):
            add(CatalogEntry.of_class(item, "agent"))
    paths: dict[str, Source] = {item: "agent" for item in listed if isinstance(item, str)}
    for path in configured:
        paths.setdefault(path, "config")
    for path, source in paths.items():
        if path in in_manifest:
            described.setdefault(in_manifest[path], source)
        else:
            add(_imported(path, source))
    taken = set(paths) if entry_points else set()
    taken.update(entry.import_path for entry in explicit.values())
    for name, path in entry_points:
        if path in taken:
            continue
        taken.add(path)
        if path in in_manifest:
            described.setdefault(in_manifest[path], "entry_point")
        else:
            log.warning("jit.not_in_manifest", import_path=path, tool=name, imported=False,
                        hint="its functions are unknown until it is activated; run "
                             "`agentrt tools manifest`")
            add(CatalogEntry(name=name, source="entry_point", import_path=path,
                             described=False))
    # A class named like a manifest tool the catalog holds: the same tool (the class
    # replaces the manifest's row), or a clash, which an entry point loses.
    for name in [n for n in explicit if n in described]:
        assert manifest is not None  # described names its tools
        entry, listed_path = explicit[name], manifest.location(name)
        if listed_path == entry.import_path:
            del described[name]
        elif entry.source == "entry_point":
            log.warning("jit.tool_shadowed", tool=name, kept=listed_path,
                        ignored=entry.import_path)
            del explicit[name]
        elif described[name] == "entry_point":
            log.warning("jit.tool_shadowed", tool=name, kept=entry.import_path,
                        ignored=listed_path)
            del described[name]
        else:
            raise ToolDefinitionError(f"two tools are named {name!r}: {entry.import_path} "
                                      f"and {listed_path}")
    return Catalog(explicit.values(), manifest, described=described)
