"""The tool manifest: what each catalog tool offers, known without importing it.

``agentrt tools manifest`` imports every tool once and writes the file; agents read
it instead of importing hundreds of modules. Format version 3 is JSON Lines, one
JSON document per line::

    {"format": "agentrt-tools-manifest", "version": 3, "tools": [ROW, ...], "sections": [...]}
    ENTRY of the first row's tool
    ENTRY of the second row's tool
    ...
    SECTION, one line for each name in "sections", in that order

The first line is the index, and all that start-up reads: it is parsed whole. It has
one row per tool, sorted by name, with what the catalog needs to list the tool, map
its functions to it and order its dependencies::

    {"name": "files", "kind": "python", "import_path": "jit_tools.files:Files",
     "version": "1", "summary": "Read and write files.", "requires": [],
     "functions": ["read_file", "write_file"], "fingerprint": "444065e2..."}

Line ``i + 2`` holds row ``i``'s entry: the row's fields, and for each function its
summary and its tool definition as the Messages API takes it (``name``,
``description``, ``input_schema``). An entry is parsed only when something needs it
(the deferred definitions of a first request, ``agentrt tools show``, a staleness
report), so a request that defers ten tools of a thousand parses ten lines.

``kind`` says what provides a tool: ``"python"``, a Tool class at ``import_path``;
``"mcp"``, the tools of the MCP server named ``server`` (each function's entry then
carries the server's ``annotations`` too). A section is derived data written with
the entries, such as a search index over them: the line ``{"section": NAME, ...}``,
read on first use (:meth:`Manifest.section`); a reader that does not use one skips it.

:func:`render_manifest` writes the file and checks what concerns its tools alone (one
tool per name, one tool per function, no dependency cycle). A file in an older format
(1 or 2) is refused with a :class:`ConfigError` saying to regenerate it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .._errors import ConfigError, ToolDefinitionError
from ..log import get_logger
from .dependencies import DependencyGraph

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping

    from ..tools import Tool

__all__ = ["DEFAULT_MANIFEST", "FORMAT", "VERSION", "Manifest", "ManifestTool", "ToolKind",
           "describe", "read_manifest", "render_manifest", "summary_of"]

log = get_logger("agentrt.jit")

DEFAULT_MANIFEST = Path("configs/tools.manifest.json")
FORMAT, VERSION = "agentrt-tools-manifest", 3
ToolKind: TypeAlias = Literal["python", "mcp"]
_ROW_FIELDS = ("name", "kind", "import_path", "server", "version", "summary", "requires",
               "functions", "fingerprint")
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
    """One row of the index. ``import_path`` is set for a ``"python"`` tool, ``server``
    for an ``"mcp"`` one; ``line`` is where its entry is (0 is the index)."""

    name: str
    kind: ToolKind
    import_path: str | None
    server: str | None
    version: str
    summary: str
    requires: tuple[str, ...]
    functions: tuple[str, ...]
    fingerprint: str
    line: int


def _row(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in _ROW_FIELDS if key in entry}


def render_manifest(entries: Iterable[Mapping[str, Any]],
                    sections: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The manifest text for ``entries`` (from :func:`describe`), sorted by tool name,
    then ``sections`` (name -> data) in name order.

    Raises :class:`ToolDefinitionError` when two tools share a name or a function name
    (the function map must point each name at exactly one tool), and
    :class:`DependencyCycleError` when their ``requires`` form a cycle.
    """
    by_source = {(e.get("import_path"), e.get("server")): e for e in entries}
    tools = sorted(by_source.values(), key=lambda e: e["name"])
    owners: dict[str, str] = {}
    functions: dict[str, str] = {}
    for entry in tools:
        where = entry.get("import_path") or f"MCP server {entry.get('server')!r}"
        other = owners.setdefault(entry["name"], where)
        if other != where:
            raise ToolDefinitionError(f"two tools are named {entry['name']!r}: {other} and "
                                      f"{where}; rename one (class attribute name)")
        for fn in entry["functions"]:
            owner = functions.setdefault(fn["name"], entry["name"])
            if owner != entry["name"]:
                raise ToolDefinitionError(
                    f"function {fn['name']!r} is defined by both tool {owner!r} and tool "
                    f"{entry['name']!r}; rename one (function(name=...))")
    DependencyGraph({e["name"]: e["requires"] for e in tools}).check()
    named = dict(sorted((sections or {}).items()))
    index = {"format": FORMAT, "version": VERSION,
             "tools": [{**_row(e), "functions": [f["name"] for f in e["functions"]]}
                       for e in tools],
             "sections": list(named)}
    lines = [index, *tools, *({"section": name, **data} for name, data in named.items())]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


class Manifest:
    """A manifest file's index, parsed whole; entries and sections read on first use.

    ``tools`` maps each tool's name to its row (sorted by name), ``by_import_path``
    each Python tool's import path to its row, ``functions`` each function to its
    tool, ``requires`` each tool that needs others to their names.
    """

    def __init__(self, path: Path, index_line: bytes, rows: Iterable[ManifestTool],
                 sections: Iterable[str] = ()) -> None:
        self.path = path
        self.tools = {row.name: row for row in rows}
        self.by_import_path = {row.import_path: row for row in self.tools.values()
                               if row.import_path is not None}
        self.functions = {fn: row.name for row in self.tools.values() for fn in row.functions}
        self.requires = {row.name: row.requires for row in self.tools.values() if row.requires}
        self.sections = tuple(sections)
        self._index_line = index_line
        self._lines: list[bytes] | None = None
        self._entries: dict[str, dict[str, Any] | None] = {}

    def __len__(self) -> int:
        return len(self.tools)

    def import_paths(self) -> list[str]:
        """The Python tools' import paths, by tool name."""
        return list(self.by_import_path)

    def entry(self, name: str) -> dict[str, Any] | None:
        """The tool's full entry (its functions' definitions), parsed on first use; None
        for a tool the manifest does not describe, or when the file was rewritten since
        its index was read (regenerated while this process runs: restart it)."""
        if name not in self._entries:
            row = self.tools.get(name)
            self._entries[name] = None if row is None else self._parse_entry(row)
        return self._entries[name]

    def _parse_entry(self, row: ManifestTool) -> dict[str, Any] | None:
        lines = self._read_lines()
        if lines is None or row.line >= len(lines):
            return None
        entry = self._parse(lines[row.line], f"line {row.line + 1}")
        if entry.get("name") != row.name or entry.get("fingerprint") != row.fingerprint:
            log.warning("jit.manifest_changed", manifest=str(self.path), tool=row.name,
                        hint="the file changed since its index was read; restart the process")
            return None
        return entry

    def section(self, name: str) -> dict[str, Any] | None:
        """A section's data (without its ``section`` key), or None when there is none."""
        if name not in self.sections:
            return None
        lines = self._read_lines()
        at = 1 + len(self.tools) + self.sections.index(name)
        if lines is None or at >= len(lines):
            return None
        data = self._parse(lines[at], f"line {at + 1}")
        if data.pop("section", None) != name:
            raise ConfigError(f"line {at + 1} is not section {name!r}; {_REGENERATE}",
                              field=str(self.path))
        return data

    def _read_lines(self) -> list[bytes] | None:
        """The file's lines, read once: None when it is no longer the file indexed."""
        if self._lines is None:
            try:
                lines = self.path.read_bytes().split(b"\n")
            except OSError as exc:
                raise ConfigError(f"cannot read the tool manifest ({exc})",
                                  field=str(self.path)) from exc
            if lines[0] != self._index_line:
                log.warning("jit.manifest_changed", manifest=str(self.path),
                            hint="the file changed since its index was read; restart the "
                                 "process")
                lines = []
            self._lines = lines
        return self._lines or None

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


def parse_index(path: Path, line: bytes) -> Manifest:
    """The manifest whose first line is ``line``: refused, with a ConfigError naming the
    file, when it is not a version-3 index (an older agentrt wrote it: regenerate it)."""
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
    try:
        rows = [_parse_row(raw, at + 1) for at, raw in enumerate(index["tools"])]
        sections = [str(name) for name in index.get("sections", ())]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed index ({type(exc).__name__}: {exc}); {_REGENERATE}",
                          field=str(path)) from exc
    return Manifest(path, line, rows, sections)


def _whole(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _parse_row(raw: Mapping[str, Any], line: int) -> ManifestTool:
    kind = raw["kind"]
    if kind not in ("python", "mcp"):
        raise ValueError(f"tool {raw['name']!r} has an unknown kind {kind!r}")
    return ManifestTool(
        name=str(raw["name"]), kind=kind, import_path=raw.get("import_path"),
        server=raw.get("server"), version=str(raw["version"]), summary=str(raw["summary"]),
        requires=tuple(raw["requires"]), functions=tuple(raw["functions"]),
        fingerprint=str(raw["fingerprint"]), line=line)


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
