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
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal, TypeAlias

from .._errors import ToolDefinitionError
from ..log import get_logger
from ..tools import Tool
from .dependencies import DependencyGraph
from .manifest import summary_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from .manifest import Manifest, ManifestRow

__all__ = ["ENTRY_POINT_GROUP", "Catalog", "CatalogEntry", "Source", "import_path_of",
           "import_tool", "installed_entry_points", "load_catalog"]

log = get_logger("agentrt.jit")

ENTRY_POINT_GROUP = "agentrt.tools"
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
    unknown dependencies and cycles when it is built."""

    def __init__(self, entries: Iterable[CatalogEntry], manifest: Manifest | None = None) -> None:
        self.manifest = manifest
        self._entries: dict[str, CatalogEntry] = {}
        self._functions: dict[str, str] = {}
        for entry in entries:
            self._entries[entry.name] = entry
            for fn in entry.functions:
                owner = self._functions.setdefault(fn, entry.name)
                if owner != entry.name:
                    raise ToolDefinitionError(
                        f"function {fn!r} is defined by both tool {owner!r} "
                        f"({self._entries[owner].import_path}) and tool {entry.name!r} "
                        f"({entry.import_path}); rename one (function(name=...))")
        for entry in self._entries.values():
            for dep in entry.requires:
                if dep not in self._entries:
                    raise ToolDefinitionError(
                        f"tool {entry.name!r} requires {dep!r}, which is not in this agent's "
                        f"catalog{did_you_mean(dep, self._entries)}")
        self.graph = DependencyGraph({e.name: e.requires for e in self._entries.values()
                                      if e.requires})
        self.graph.check()

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> CatalogEntry:
        return self._entries[name]

    def get(self, name: str) -> CatalogEntry | None:
        return self._entries.get(name)

    def tool_for(self, function: str) -> str | None:
        """The tool defining ``function``, from the manifest or the class; O(1)."""
        return self._functions.get(function)

    def names(self) -> list[str]:
        return list(self._entries)

    def function_names(self) -> list[str]:
        return list(self._functions)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _entry_for_path(path: str, source: Source, manifest: Manifest | None) -> CatalogEntry:
    row = manifest.row(path) if manifest is not None else None
    if row is not None:
        return CatalogEntry.of_row(row, source)
    log.warning("jit.not_in_manifest", import_path=path, imported=True,
                hint="run `agentrt tools manifest` so start-up need not import it")
    return CatalogEntry.of_class(import_tool(path), source)


# Entry points by sys.path: scanning installed distributions costs milliseconds,
# and what is installed does not change while sys.path stays the same.
_scanned: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}


def installed_entry_points() -> tuple[tuple[str, str], ...]:
    """(name, "pkg.mod:Class") of the ``agentrt.tools`` group; nothing is imported."""
    key = tuple(sys.path)
    found = _scanned.get(key)
    if found is None:
        found = tuple((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))
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
    entries: dict[str, CatalogEntry] = {}

    def add(entry: CatalogEntry) -> None:
        known = entries.get(entry.name)
        if known is None:
            entries[entry.name] = entry
        elif known.import_path != entry.import_path:
            if entry.source == "entry_point":
                log.warning("jit.tool_shadowed", tool=entry.name, kept=known.import_path,
                            ignored=entry.import_path)
                return
            raise ToolDefinitionError(f"two tools are named {entry.name!r}: "
                                      f"{known.import_path} and {entry.import_path}")

    for tool in core:
        add(CatalogEntry.of_class(tool, "core"))
    for item in listed:
        add(_entry_for_path(item, "agent", manifest) if isinstance(item, str)
            else CatalogEntry.of_class(item, "agent"))
    for path in configured:
        add(_entry_for_path(path, "config", manifest))
    if include_entry_points:
        seen = {e.import_path for e in entries.values()}
        for name, path in installed_entry_points():
            if path in seen:
                continue
            row = manifest.row(path) if manifest is not None else None
            if row is None:
                log.warning("jit.not_in_manifest", import_path=path, tool=name, imported=False,
                            hint="its functions are unknown until it is activated; run "
                                 "`agentrt tools manifest`")
                add(CatalogEntry(name=name, source="entry_point", import_path=path,
                                 described=False))
            else:
                add(CatalogEntry.of_row(row, "entry_point"))
    return Catalog(entries.values(), manifest)
