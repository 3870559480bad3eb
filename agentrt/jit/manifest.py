"""The tool manifest: what each catalog tool offers, known without importing it.

``agentrt tools manifest`` imports every tool once and writes the file; agents
read it at start-up instead of importing hundreds of modules. It is one JSON
document laid out one section per line, so start-up parses only the sections it
needs (names, dependencies) and the rest on first use::

    {"format": "agentrt-tools-manifest", "version": 1,
    "names": {"<import path>": "<tool>"},
    "requires": {"<tool>": ["<tool>", ...]},
    "functions": {"<function>": "<tool>"},
    "index": {"<import path>": [name, version, summary, [requires], [functions], fingerprint]},
    "tools": [
    {"name": ..., "functions": [{"name": ..., "summary": ..., "definition": {...}}], ...},
    ...
    ]}

``tools`` holds each function's full tool definition (name, description,
input_schema) for whoever needs it (``agentrt tools show``, the staleness
report). A file that does not follow the layout (edited by hand, say) is still
read, just more slowly, as plain JSON.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError, ToolDefinitionError

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable, Mapping

    from ..tools import Tool

__all__ = ["DEFAULT_MANIFEST", "Manifest", "ManifestRow", "describe", "read_manifest",
           "render_manifest", "summary_of"]

DEFAULT_MANIFEST = Path("configs/tools.manifest.json")
FORMAT, VERSION = "agentrt-tools-manifest", 1
_HEAD = f'{{"format": "{FORMAT}", "version": {VERSION},\n'
_SECTIONS = ("names", "requires", "functions", "index")
_REGENERATE = "regenerate it with `agentrt tools manifest`"
_READ_MEMO_SIZE = 8


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One tool's index entry: enough to list it, map its functions and order it."""

    import_path: str
    name: str
    version: str
    summary: str
    requires: tuple[str, ...]
    functions: tuple[str, ...]
    fingerprint: str


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
    """sha256 over what the model and the loader see; the import path is not part of it."""
    content = {k: v for k, v in entry.items() if k not in ("import_path", "fingerprint")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def render_manifest(entries: Iterable[Mapping[str, Any]]) -> str:
    """The manifest text for ``entries`` (from :func:`describe`), sorted by tool name.

    Raises :class:`ToolDefinitionError` when two tools share a name or a function
    name: the function map must point each name at exactly one tool.
    """
    tools = sorted(entries, key=lambda e: (e["name"], e["import_path"]))
    names: dict[str, str] = {}
    functions: dict[str, str] = {}
    for entry in tools:
        other = names.setdefault(entry["name"], entry["import_path"])
        if other != entry["import_path"]:
            raise ToolDefinitionError(f"two tools are named {entry['name']!r}: {other} and "
                                      f"{entry['import_path']}; rename one (class attribute name)")
        for fn in entry["functions"]:
            owner = functions.setdefault(fn["name"], entry["name"])
            if owner != entry["name"]:
                raise ToolDefinitionError(
                    f"function {fn['name']!r} is defined by both tool {owner!r} and tool "
                    f"{entry['name']!r}; rename one (function(name=...))")
    sections = {
        "names": {e["import_path"]: e["name"] for e in tools},
        "requires": {e["name"]: e["requires"] for e in tools if e["requires"]},
        "functions": functions,
        "index": {e["import_path"]: [e["name"], e["version"], e["summary"], e["requires"],
                                     [f["name"] for f in e["functions"]], e["fingerprint"]]
                  for e in tools},
    }
    lines = [_HEAD.rstrip("\n"), *(f'"{k}": {_dumps(v)},' for k, v in sections.items()),
             '"tools": [', ",\n".join(_dumps(e) for e in tools), "]}"]
    return "\n".join(lines) + "\n"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


class Manifest:
    """A parsed manifest file: ``names`` and ``requires`` now, the function map, the
    index rows and the full entries on first use."""

    def __init__(self, path: Path, sections: Mapping[str, Any],
                 full: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self._sections = dict(sections)  # section -> parsed value, or its JSON text
        self._tools = None if full is None else _tools_of(full, path)
        self.names: Mapping[str, str] = self._section("names")
        self.requires: Mapping[str, list[str]] = self._section("requires")

    def _section(self, key: str) -> Any:
        value = self._sections[key]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"section {key!r} is not valid JSON ({exc}); {_REGENERATE}",
                                  field=str(self.path)) from exc
            if not isinstance(value, dict):
                raise ConfigError(f"section {key!r} must be an object; {_REGENERATE}",
                                  field=str(self.path))
            self._sections[key] = value
        return value

    @property
    def functions(self) -> Mapping[str, str]:
        """Function name -> tool name, over every tool of the manifest."""
        found: Mapping[str, str] = self._section("functions")
        return found

    def __contains__(self, import_path: object) -> bool:
        return import_path in self.names

    def __len__(self) -> int:
        return len(self.names)

    def import_paths(self) -> list[str]:
        return list(self.names)

    def row(self, import_path: str) -> ManifestRow | None:
        raw = self._section("index").get(import_path)
        if raw is None:
            return None
        try:
            name, version, summary, requires, functions, digest = raw
            return ManifestRow(import_path, str(name), str(version), str(summary),
                               tuple(requires), tuple(functions), str(digest))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"malformed index entry for {import_path!r} ({exc}); "
                              f"{_REGENERATE}", field=str(self.path)) from exc

    def details(self, import_path: str) -> dict[str, Any] | None:
        """The full entry (with function definitions); parses the whole file once."""
        if self._tools is None:
            self._tools = _tools_of(_load_json(self.path), self.path)
        return self._tools.get(import_path)


def _tools_of(full: Mapping[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    tools = full.get("tools")
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ConfigError(f"`tools` must be a list of objects; {_REGENERATE}", field=str(path))
    return {str(t.get("import_path")): t for t in tools}


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the tool manifest ({exc}); {_REGENERATE}",
                          field=str(path)) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"not an agentrt tool manifest (expected format {FORMAT!r})",
                          field=str(path))
    return data


def _parse(path: Path) -> Manifest:
    """Section lines kept as text, parsed on use, when the file has the layout
    :func:`render_manifest` writes; otherwise the whole file as plain JSON."""
    try:
        with path.open(encoding="utf-8") as file:
            head = file.readline()
            lines = [file.readline() for _ in _SECTIONS]
    except OSError as exc:
        raise ConfigError(f"cannot read the tool manifest ({exc})", field=str(path)) from exc
    prefixes = [f'"{key}": ' for key in _SECTIONS]
    if head == _HEAD and all(line.startswith(prefix) and line.endswith(",\n")
                             for line, prefix in zip(lines, prefixes, strict=True)):
        return Manifest(path, {key: line[len(prefix):-2] for key, line, prefix
                               in zip(_SECTIONS, lines, prefixes, strict=True)})
    full = _load_json(path)
    if not all(isinstance(full.get(key), dict) for key in _SECTIONS):
        raise ConfigError(f"{', '.join(_SECTIONS)} must be objects; {_REGENERATE}",
                          field=str(path))
    return Manifest(path, {key: full[key] for key in _SECTIONS}, full)


# Parsed manifests by file identity (path, mtime, size). A memo of immutable file
# contents, like sys.modules for imports: every agent of the process built from the
# same file shares one parse, and a regenerated file has a new identity.
_read: dict[tuple[str, int, int], Manifest] = {}


def read_manifest(path: str | os.PathLike[str]) -> Manifest | None:
    """The manifest at ``path``, or None when there is no such file."""
    file = Path(path)
    try:
        stat = file.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the tool manifest ({exc})", field=str(file)) from exc
    key = (str(file.absolute()), stat.st_mtime_ns, stat.st_size)
    found = _read.get(key)
    if found is None:
        found = _parse(file)
        if len(_read) >= _READ_MEMO_SIZE:
            _read.pop(next(iter(_read)))
        _read[key] = found
    return found
