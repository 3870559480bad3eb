"""The tool manifest: what each catalog tool offers, known without importing it.

``agentrt tools manifest`` imports every tool once and writes the file; agents read
it instead of importing hundreds of modules. Format version 4 is JSON Lines, one
JSON document per line::

    {"format": "agentrt-tools-manifest", "version": 4, "tools": INDEX, "sections": [NAME, ...],
     "entry_points": RECORD}
    DETAILS
    the entry of the index's first tool
    the entry of its second tool
    ...
    one line for each section named in "sections", in that order

The first line is all that start-up reads, and it is parsed whole. Its index is what
building a catalog needs, a table stored by columns, so that it parses into a few
lists and maps whatever the number of tools (an object per tool would make the parse
run the garbage collector over the whole process at a thousand tools)::

    {"name": ["browser", "files", ...],                  the tools, sorted by name
     "kind": ["python", "python", ...],                  each column in that order
     "location": ["jit_tools.browser:Browser", ...],
     "requires": {"presentation": ["files"]},            the tools that need others
     "functions": ["open_url", "read_file list_files write_file delete_file", ...]}

``functions`` holds each tool's function names, space-separated (a Messages API tool
name has no space; an MCP tool's is ""). At a thousand tools the column parses in about
0.4 ms where a map with an entry per function (format 3) took 1.0 ms. The function map
(function name -> tool) is built from it on first use, the first call of a function
that is not active yet (about 0.45 ms more): start-up only asks whether the manifest
defines the few functions of the agent's own classes, which one scan of the column's
text answers.

``entry_points``, written when the config takes tools from entry points, records the
``agentrt.tools`` entry points installed then and where the distributions were, so that
start-up need not scan them while that still holds (:class:`EntryPointRecord`)::

    {"found": [["browser", "plugins.browser:Browser"], ...],
     "places": [["/venv/lib/python3.11/site-packages", true, 1796399728865626214], ...]}
                                          each sys.path directory, whether it holds
                                          distributions, its modification time (ns)

The second line, read when first needed (a listing of the tools, an activation),
has the columns that only describe them: ``{"version": [...], "summary": [...],
"fingerprint": [...]}``, in the index's order.

Line ``i + 3`` holds the entry of the index's tool ``i``: its fields, and each
function's summary and tool definition as the Messages API takes it (``name``,
``description``, ``input_schema``). An entry is parsed only when something needs
it (the deferred definitions of a first request, ``agentrt tools show``, a
staleness report), so a request that defers ten tools of a thousand parses ten lines.

``kind`` says what provides a tool, and ``location`` where it is found: for
``"python"``, a Tool class at that import path (the entry's ``import_path``); for
``"mcp"``, the tools of the MCP server of that name (the entry's ``server``, and
each function carries the server's ``annotations``). A section is derived data
written with the entries, such as a search index over them: the line
``{"section": NAME, ...}``, read on first use (:meth:`Manifest.section`).

:func:`render_manifest` writes the file and checks what concerns its tools alone (one
tool per name, one tool per function, no dependency cycle). A file in an older format
(1, 2 or 3) is refused with a :class:`ConfigError` saying to regenerate it.
"""

from __future__ import annotations

import gc
import hashlib
import inspect
import json
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .._errors import ConfigError, ToolDefinitionError
from ..log import get_logger
from .dependencies import DependencyGraph

if TYPE_CHECKING:
    import os
    from collections.abc import Collection, Iterable, Iterator, Mapping

    from ..tools import Tool

__all__ = ["DEFAULT_MANIFEST", "FORMAT", "VERSION", "EntryPointRecord", "Manifest",
           "ManifestTool", "ToolKind", "collector_paused", "describe", "read_manifest",
           "render_manifest", "summary_of"]

log = get_logger("agentrt.jit")

DEFAULT_MANIFEST = Path("configs/tools.manifest.json")
FORMAT, VERSION = "agentrt-tools-manifest", 4
ToolKind: TypeAlias = Literal["python", "mcp"]
_REGENERATE = "regenerate it with `agentrt tools manifest`"


def summary_of(text: str | None) -> str:
    """The first line of a docstring: the one-line summary a catalog listing shows."""
    for line in inspect.cleandoc(text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe(cls: type[Tool], import_path: str) -> dict[str, Any]:
    """A tool's full manifest entry, from its class. Deterministic: same class, same bytes."""
    entry: dict[str, Any] = {
        "name": cls.name,
        "kind": "python",
        "import_path": import_path,
        "version": cls.version,
        "summary": summary_of(cls.__doc__),
        "requires": list(cls.requires),
        "functions": [{"name": spec.name, "summary": summary_of(spec.description),
                       "definition": spec.definition()} for spec in cls.functions().values()],
    }
    entry["fingerprint"] = fingerprint(entry)
    return entry


def fingerprint(entry: Mapping[str, Any]) -> str:
    """sha256 over what the model and the loader see (not where the tool is found)."""
    content = {k: v for k, v in entry.items()
               if k not in ("kind", "import_path", "server", "fingerprint")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ManifestTool:
    """One tool of the manifest: ``location`` is its import path (``"python"``) or its
    server's name (``"mcp"``); ``line`` is where its entry is, counting from 0."""

    name: str
    kind: ToolKind
    location: str
    version: str
    summary: str
    requires: tuple[str, ...]
    functions: tuple[str, ...]
    fingerprint: str
    line: int


@dataclass(frozen=True, slots=True)
class EntryPointRecord:
    """The ``agentrt.tools`` entry points installed when the manifest was written
    (``found``: name and import path), and where the distributions were then
    (``places``: each ``sys.path`` directory, whether it held any, its modification
    time), so that start-up can use ``found`` without scanning while ``places`` still
    hold: see :func:`agentrt.jit.catalog.same_places`."""

    found: tuple[tuple[str, str], ...]
    places: tuple[tuple[str, bool, int], ...]


def _location(entry: Mapping[str, Any]) -> str:
    return str(entry["import_path"] if entry["kind"] == "python" else entry["server"])


def render_manifest(entries: Iterable[Mapping[str, Any]],
                    sections: Mapping[str, Mapping[str, Any]] | None = None, *,
                    entry_points: EntryPointRecord | None = None) -> str:
    """The manifest text for ``entries`` (from :func:`describe`), sorted by tool name,
    then ``sections`` (name -> data) in name order: always ``search``, the words of
    the search index (:func:`agentrt.jit.search.manifest_section`). ``entry_points``:
    the installed entry points and where they were found
    (:func:`agentrt.jit.catalog.record_entry_points`), recorded in the index.

    Raises :class:`ToolDefinitionError` when two tools share a name or a function name
    (the function map must point each name at exactly one tool), and
    :class:`DependencyCycleError` when their ``requires`` form a cycle.
    """
    tools = sorted({(e["kind"], _location(e)): e for e in entries}.values(),
                   key=lambda e: e["name"])
    owners: dict[str, str] = {}
    functions: dict[str, str] = {}  # checked here, rebuilt by readers from the column
    for entry in tools:
        where = _location(entry)
        other = owners.setdefault(entry["name"], where)
        if other != where:
            raise ToolDefinitionError(f"two tools are named {entry['name']!r}: {other} and "
                                      f"{where}; rename one (class attribute name)")
        if entry["kind"] == "mcp":  # named per agent (a prefix): see agentrt.mcp
            continue
        for fn in entry["functions"]:
            owner = functions.setdefault(fn["name"], entry["name"])
            if owner != entry["name"]:
                raise ToolDefinitionError(
                    f"function {fn['name']!r} is defined by both tool {owner!r} and tool "
                    f"{entry['name']!r}; rename one (function(name=...))")
    requires = {e["name"]: e["requires"] for e in tools if e["requires"]}
    DependencyGraph(requires).check()
    from .search import SECTION, manifest_section  # the search index's words

    named = dict(sorted({SECTION: manifest_section(tools), **(sections or {})}.items()))
    index = {"format": FORMAT, "version": VERSION,
             "tools": {"name": [e["name"] for e in tools], "kind": [e["kind"] for e in tools],
                       "location": [_location(e) for e in tools], "requires": requires,
                       "functions": [" ".join(fn["name"] for fn in e["functions"])
                                     if e["kind"] == "python" else "" for e in tools]},
             "sections": list(named)}
    if entry_points is not None:
        index["entry_points"] = {"found": [list(pair) for pair in entry_points.found],
                                 "places": [list(place) for place in entry_points.places]}
    details = {key: [e[key] for e in tools] for key in _DETAILS}
    lines = [index, details, *tools,
             *({"section": name, **data} for name, data in named.items())]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


_INDEX = ("name", "kind", "location", "functions")
_DETAILS = ("version", "summary", "fingerprint")
_FIRST_ENTRY = 2  # the line of the first tool's entry, counting from 0


class Manifest:
    """A manifest file's index, parsed whole; the details, entries and sections are
    read on first use.

    ``names`` lists its tools (sorted), ``by_import_path`` maps each Python tool's
    import path to its name, ``functions`` each function to its tool, ``requires``
    each tool that needs others to their names; :meth:`tool` gives one tool's row.
    """

    def __init__(self, path: Path, index_line: bytes, columns: Mapping[str, list[str]],
                 requires: dict[str, list[str]], sections: Iterable[str] = (),
                 entry_points: EntryPointRecord | None = None) -> None:
        """Takes the parsed columns and maps as they are (not copied)."""
        self.path = path
        self.entry_points = entry_points
        self.names = columns["name"]
        try:
            text = " ".join(columns["functions"])
        except TypeError:  # an item that is not a str
            raise ConfigError(f"malformed index: `tools.functions` must list strings; "
                              f"{_REGENERATE}", field=str(path)) from None
        # Spaces alone separate the names here (no tab, newline or other white space, which
        # split() would take as separators too): then " name " is in it exactly when the
        # map would hold the name. Otherwise owner() builds the map.
        self._function_text = f" {text} " if text.isprintable() else None
        self._functions: dict[str, str] | None = None
        self.requires = requires
        self.sections = tuple(sections)
        self.by_import_path = {location: name for name, kind, location in zip(
            self.names, columns["kind"], columns["location"], strict=True) if kind == "python"}
        self._columns = columns
        self._tools: dict[str, ManifestTool] = {}
        self._index_line = index_line
        self._details: Mapping[str, list[str]] | None = None
        self._entries: dict[str, dict[str, Any] | None] = {}
        self._stale = False
        # the file's (path, modification time, size) when a CatalogCache read it: what
        # names this version of it in the caches of a process (agentrt.mcp's classes)
        self.stamp: tuple[str, int, int] | None = None

    @property
    def functions(self) -> dict[str, str]:
        """Each function's tool. Built on first use (the first call of a function that is
        not active yet), not at start-up: some 0.45 ms at a thousand tools."""
        if self._functions is None:
            self._functions = {function: name for name, functions in zip(
                self.names, self._columns["functions"], strict=True)
                for function in functions.split()}
        return self._functions

    def owner(self, function: str) -> str | None:
        """The tool defining ``function``. Before the map is built, a function that no
        tool defines is told by one scan of the column's text: start-up asks this of the
        few functions of an agent's own classes, and builds no map for them."""
        if (self._functions is None and self._function_text is not None
                and f" {function} " not in self._function_text):
            return None
        return self.functions.get(function)

    @cached_property
    def _position(self) -> dict[str, int]:
        return dict(zip(self.names, range(len(self.names)), strict=True))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._position

    def import_paths(self) -> list[str]:
        """The Python tools' import paths, by tool name."""
        return list(self.by_import_path)

    def location(self, name: str) -> str:
        """Where the tool is found: its import path, or its MCP server's name."""
        return self._columns["location"][self._position[name]]

    def functions_of(self, name: str) -> tuple[str, ...]:
        """The tool's functions, in class order."""
        return tuple(self._columns["functions"][self._position[name]].split())

    def tool(self, name: str) -> ManifestTool:
        """The row of the tool ``name`` (KeyError when the manifest lacks it). The first
        call reads the details line."""
        found = self._tools.get(name)
        if found is None:
            at = self._position[name]
            details = self._read_details()
            version, summary, digest = (details[key][at] for key in _DETAILS)
            found = self._tools[name] = ManifestTool(
                name, self._columns["kind"][at], self.location(name),  # type: ignore[arg-type]
                version, summary, tuple(self.requires.get(name, ())),
                self.functions_of(name), digest, _FIRST_ENTRY + at)
        return found

    def _read_details(self) -> Mapping[str, list[str]]:
        """The second line's columns; empty ones from a file rewritten since its index
        was read."""
        if self._details is None:
            line = self._read_lines({1}).get(1)
            if line is None:
                self._details = {key: [""] * len(self.names) for key in _DETAILS}
            else:
                details = self._parse(line, "line 2")
                for key in _DETAILS:
                    column = details.get(key)
                    if not (isinstance(column, list) and len(column) == len(self.names)):
                        raise ConfigError(f"line 2: `{key}` must list one item per tool; "
                                          f"{_REGENERATE}", field=str(self.path))
                self._details = details
        return self._details

    def entry(self, name: str) -> dict[str, Any] | None:
        """The tool's full entry (its functions' definitions); see :meth:`entries`."""
        return self.entries([name])[name]

    def entries(self, names: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """The full entries of these tools, each parsed once, on first use, in one pass
        over the file; None for a tool the manifest does not describe, or when the file
        was rewritten since its index was read (regenerated while this process runs:
        restart it)."""
        wanted = list(names)
        lines = {self.tool(name).line: name for name in wanted
                 if name in self and name not in self._entries}
        found = self._read_lines(lines)
        with collector_paused():  # an entry parses into thousands of objects: see below
            self._parse_entries(lines, found)
        return {name: self._entries.get(name) for name in wanted}

    def _parse_entries(self, lines: Mapping[int, str], found: Mapping[int, bytes]) -> None:
        for number, name in lines.items():
            line = found.get(number)
            entry = None if line is None else self._parse(line, f"line {number + 1}")
            row = self.tool(name)
            if entry is not None and (entry.get("name"), entry.get("fingerprint")) != (
                    row.name, row.fingerprint):
                self._changed()
                entry = None
            self._entries[name] = entry

    def section(self, name: str) -> dict[str, Any] | None:
        """A section's data (without its ``section`` key), or None when there is none."""
        if name not in self.sections:
            return None
        at = _FIRST_ENTRY + len(self.names) + self.sections.index(name)
        line = self._read_lines({at}).get(at)
        if line is None:
            return None
        data = self._parse(line, f"line {at + 1}")
        if data.pop("section", None) != name:
            raise ConfigError(f"line {at + 1} is not section {name!r}; {_REGENERATE}",
                              field=str(self.path))
        return data

    def _read_lines(self, numbers: Collection[int]) -> dict[int, bytes]:
        """The lines of these numbers (counting from 0), in one pass over the file that
        keeps no other line; none when the file is no longer the one indexed."""
        if not numbers:
            return {}
        found: dict[int, bytes] = {}
        try:
            with self.path.open("rb") as file:
                for number, line in enumerate(file):
                    if number == 0 and line.removesuffix(b"\n") != self._index_line:
                        self._changed()
                        return {}
                    if number in numbers:
                        found[number] = line
                        if len(found) == len(numbers):
                            break
        except OSError as exc:
            raise ConfigError(f"cannot read the tool manifest ({exc})",
                              field=str(self.path)) from exc
        return found

    def _changed(self) -> None:
        """Say once that the file is no longer the one indexed."""
        if self._stale:
            return
        self._stale = True
        log.warning("jit.manifest_changed", manifest=str(self.path),
                    hint="the file changed since its index was read; restart the process")

    def _parse(self, line: bytes, where: str) -> dict[str, Any]:
        try:
            found = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{where} is not JSON ({exc}); {_REGENERATE}",
                              field=str(self.path)) from exc
        if not isinstance(found, dict):
            raise ConfigError(f"{where} is not a JSON object; {_REGENERATE}",
                              field=str(self.path))
        return found


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while entries parse: the objects of a few parsed schemas
    (an MCP server's entry is some 8 KB of JSON) would otherwise trigger collections
    that walk every object of the process, costing a millisecond per entry in a process
    that has imported the SDK, where the parse itself takes some 30 µs."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_index(path: Path, line: bytes) -> Manifest:
    """The manifest whose first line is ``line``: refused, with a ConfigError naming the
    file, when it is not a version-4 index (an older agentrt wrote it: regenerate it)."""
    try:
        index = json.loads(line)
    except ValueError:
        index = None
    if not (isinstance(index, dict) and index.get("format") == FORMAT):
        index = _whole(path)  # formats 1 and 2 were one JSON document
        if not (isinstance(index, dict) and index.get("format") == FORMAT):
            raise ConfigError(f"not an agentrt tool manifest (expected format {FORMAT!r}); "
                              f"{_REGENERATE}", field=str(path))
    if index.get("version") != VERSION:
        raise ConfigError(f"tool manifest format version {index.get('version')!r} (this "
                          f"agentrt reads version {VERSION}); {_REGENERATE}", field=str(path))
    table = index.get("tools")
    problem = _check_table(table)
    if problem is not None:
        raise ConfigError(f"malformed index: {problem}; {_REGENERATE}", field=str(path))
    assert isinstance(table, dict)
    sections = index.get("sections", [])
    if not (isinstance(sections, list) and all(isinstance(n, str) for n in sections)):
        raise ConfigError(f"malformed index: `sections` must list names; {_REGENERATE}",
                          field=str(path))
    return Manifest(path, line, {key: table[key] for key in _INDEX}, table["requires"],
                    sections, _entry_points(index.get("entry_points"), path))


def _entry_points(recorded: object, path: Path) -> EntryPointRecord | None:
    """The index's record of the installed entry points, if it has one."""
    if recorded is None:
        return None
    found = recorded.get("found") if isinstance(recorded, dict) else None
    places = recorded.get("places") if isinstance(recorded, dict) else None
    if not (isinstance(found, list) and all(_row(pair, str, str) for pair in found)
            and isinstance(places, list) and all(_row(row, str, bool, int) for row in places)):
        raise ConfigError(f"malformed index: `entry_points`; {_REGENERATE}", field=str(path))
    return EntryPointRecord(tuple((name, value) for name, value in found),
                            tuple((where, holds, mtime) for where, holds, mtime in places))


def _row(row: object, *types: type) -> bool:
    return isinstance(row, list) and len(row) == len(types) and all(
        isinstance(value, kind) for value, kind in zip(row, types, strict=True))


def _check_table(table: object) -> str | None:
    """What is wrong with the index's table, if anything. The columns' lengths and the
    maps' shapes are checked here; each value's type where it is used."""
    if not isinstance(table, dict):
        return "`tools` must be an object"
    for key in _INDEX:
        column = table.get(key)
        if not isinstance(column, list):
            return f"`tools.{key}` must be a list"
        if len(column) != len(table["name"]):
            return f"`tools.{key}` must have one item per tool"
    kinds = table["kind"]
    if kinds.count("python") + kinds.count("mcp") != len(kinds):  # no Python code per item
        unknown = next(kind for kind in kinds if kind not in ("python", "mcp"))
        return f"unknown tool kind {unknown!r}"
    if not isinstance(table.get("requires"), dict):
        return "`tools.requires` must be an object"
    return None


def _whole(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def read_manifest(path: str | os.PathLike[str]) -> Manifest | None:
    """The manifest at ``path`` (its index; entries are read on use), or None when there
    is no such file. Not cached: :class:`~agentrt.jit.cache.CatalogCache` keeps what a
    Runtime's agents read."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            line = handle.readline()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the tool manifest ({exc})", field=str(file)) from exc
    return parse_index(file, line.removesuffix(b"\n"))
