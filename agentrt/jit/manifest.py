"""The tool manifest: what each catalog tool offers, known without importing it.

``agentrt tools manifest`` imports every tool once and writes the file; agents
read it at start-up instead of importing hundreds of modules. It is one JSON
document laid out one section per line (version 2)::

    {"format": "agentrt-tools-manifest", "version": 2, "startup_bytes": <n>,
    "paths": ["<import path>", ...],
    "by_name": {"<tool>": "<import path>"},
    "requires": {"<tool>": ["<tool>", ...]},
    "outside": {"<tool>": ["<tool>", ...]},
    "functions": {"<function>": "<tool>"},
    "index": {"<import path>": [name, version, summary, [requires], [functions], fingerprint]},
    "tools": [
    {"name": ..., "functions": [{"name": ..., "summary": ..., "definition": {...}}], ...},
    ...
    ]}

``paths`` lists the values of ``by_name``, both by tool name. ``outside`` is
the part of ``requires`` that names tools the manifest does not describe (an
agent's core tool, say). ``tools`` holds each function's full tool definition
(name, description, input_schema) for whoever needs it (``agentrt tools show``,
the staleness report).

Start-up cost must not grow with the catalog, so the layout serves it:

- ``startup_bytes`` is the length of the lines start-up reads (``paths`` to
  ``functions``): one ``read`` gets them, where reading long lines one by one
  costs as much again as parsing them. Each is parsed when needed; ``index``
  and ``tools`` stay in the file until first used;
- ``paths`` is all an agent listing every tool of the manifest needs (its catalog
  is then the whole manifest: one set comparison), and a list parses in a third
  of the time of the ``by_name`` object it repeats;
- ``by_name`` and ``functions`` are not parsed at start-up: the few names and
  functions of an agent's own classes are looked up in their text
  (:meth:`Manifest.paths_of`, :meth:`Manifest.owners`); each map is parsed on
  first use, for the O(1) look-ups at run time;
- what concerns the manifest alone is checked when it is written:
  :func:`render_manifest` refuses two tools with one name, a function defined by
  two tools and a dependency cycle. Start-up then checks only what involves other
  sources: the agent's own classes, and the ``outside`` dependencies.

A file that does not follow this layout (reformatted, edited by hand so that the
start-up lines change length, written by version 1) is still read, more slowly,
as plain JSON, and is then checked in full at start-up (:attr:`Manifest.checked`
is False); a version this code does not know is a ConfigError naming the file.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError, ToolDefinitionError
from .dependencies import DependencyGraph

if TYPE_CHECKING:
    import os
    from collections.abc import Collection, Iterable, Mapping

    from ..tools import Tool

__all__ = ["DEFAULT_MANIFEST", "Manifest", "ManifestRow", "describe", "read_manifest",
           "render_manifest", "summary_of"]

DEFAULT_MANIFEST = Path("configs/tools.manifest.json")
FORMAT, VERSION = "agentrt-tools-manifest", 2
_HEAD = f'{{"format": "{FORMAT}", "version": {VERSION}, "startup_bytes": '
_STARTUP = ("paths", "by_name", "requires", "outside", "functions")  # in one read
_REGENERATE = "regenerate it with `agentrt tools manifest`"
_READ_MEMO_SIZE = 8
# Looking a key up in an object's text scans it (in C, ~40 times faster per character
# than parsing it); past this many look-ups, parsing the object is cheaper.
_SEARCH_LIMIT = 32
_VALUE_WINDOW = 4096  # bytes decoded after a key found in the text (longer: parsed)
_PLAIN_KEY = re.compile(r"[\w.-]+")  # written as is by json.dumps(ensure_ascii=False)
_DECODER = json.JSONDecoder()


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

    Checks what concerns these tools alone, so that agents need not at start-up:
    raises :class:`ToolDefinitionError` when two tools share a name or a function
    name (the function map must point each name at exactly one tool), and
    :class:`DependencyCycleError` when their ``requires`` form a cycle.
    """
    tools = list({e["import_path"]: e for e in sorted(
        entries, key=lambda e: (e["name"], e["import_path"]))}.values())
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
    requires = {e["name"]: e["requires"] for e in tools if e["requires"]}
    DependencyGraph(requires).check()
    startup = {
        "paths": [e["import_path"] for e in tools],
        "by_name": {e["name"]: e["import_path"] for e in tools},
        "requires": requires,
        "outside": {name: outside for name, deps in requires.items()
                    if (outside := [d for d in deps if d not in names])},
        "functions": functions,
    }
    index = {e["import_path"]: [e["name"], e["version"], e["summary"], e["requires"],
                                [f["name"] for f in e["functions"]], e["fingerprint"]]
             for e in tools}
    lines = "".join(f'"{key}": {_dumps(value)},\n' for key, value in startup.items())
    full = ",\n".join(_dumps(e) for e in tools)
    return (f'{_HEAD}{len(lines.encode())},\n{lines}"index": {_dumps(index)},\n'
            f'"tools": [\n{full}\n]}}\n')


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


class Manifest:
    """A parsed manifest file. ``paths`` and ``outside`` are parsed when it is read;
    the dependencies, the name and function maps, the index rows and the full
    entries on first use.

    ``checked`` is True for a file in the exact layout :func:`render_manifest` writes,
    which checked it: no two tools share a name or a function, and ``requires`` has
    no cycle. (A hand edit that keeps the layout, and the length of the start-up
    lines, is not noticed; ``agentrt tools manifest --check`` notices it.)
    """

    def __init__(self, path: Path, sections: Mapping[str, Any], *, checked: bool,
                 block: bytes = b"", index_at: int | None = None,
                 full: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.checked = checked
        # section -> parsed value, or the slice of ``block`` (the start-up lines) holding
        # its JSON text; ``index`` missing: it is the line at ``index_at`` in the file.
        self._sections = dict(sections)
        self._block = block
        self._index_at = index_at
        self._tools = None if full is None else _tools_of(full, path)
        self._by_path: dict[str, str] | None = None
        self.paths: list[str] = self._section("paths", list)
        self.outside: Mapping[str, list[str]] = self._section("outside", dict)

    def _section(self, key: str, kind: type = dict) -> Any:
        value = self._sections.get(key)
        if value is None:
            value = self._read_line(key)
        if isinstance(value, slice | bytes):
            try:
                value = json.loads(self._block[value] if isinstance(value, slice) else value)
            except ValueError as exc:
                raise ConfigError(f"section {key!r} is not valid JSON ({exc}); {_REGENERATE}",
                                  field=str(self.path)) from exc
            if not isinstance(value, kind):
                raise ConfigError(f"section {key!r} must be {_KINDS[kind]}; {_REGENERATE}",
                                  field=str(self.path))
            self._sections[key] = value
        return value

    def _read_line(self, key: str) -> bytes | dict[str, Any]:
        """A section start-up left in the file: read from where it was, or, when the
        file has changed since (regenerated while the agent runs), from the whole of
        it, as :meth:`details` reads the entries."""
        prefix = f'"{key}": '.encode()
        if self._index_at is not None:
            try:
                with self.path.open("rb") as file:
                    file.seek(self._index_at)
                    line = file.readline()
            except OSError as exc:
                raise ConfigError(f"cannot read the tool manifest ({exc})",
                                  field=str(self.path)) from exc
            if line.startswith(prefix) and line.endswith(b",\n"):
                return line[len(prefix):-2]
        value = _load_json(self.path).get(key)
        if not isinstance(value, dict):
            raise ConfigError(f"`{key}` must be an object; {_REGENERATE}", field=str(self.path))
        return value

    @property
    def requires(self) -> Mapping[str, list[str]]:
        """Tool -> the tools it needs (those that need any), parsed on first use."""
        found: Mapping[str, list[str]] = self._section("requires")
        return found

    @property
    def by_name(self) -> Mapping[str, str]:
        """Tool name -> import path, parsed on first use."""
        found: Mapping[str, str] = self._section("by_name")
        return found

    @property
    def tool_names(self) -> list[str]:
        """The tools' names, sorted."""
        return list(self.by_name)

    @property
    def by_path(self) -> Mapping[str, str]:
        """Import path -> tool name, built on first use."""
        if self._by_path is None:
            self._by_path = dict(zip(self.by_name.values(), self.by_name, strict=True))
        return self._by_path

    @property
    def functions(self) -> Mapping[str, str]:
        """Function name -> tool name, over every tool of the manifest."""
        found: Mapping[str, str] = self._section("functions")
        return found

    def paths_of(self, names: Collection[str]) -> dict[str, str]:
        """Tool name -> import path for those of ``names`` the manifest describes (an
        agent's own classes at start-up); see :meth:`_look_up`."""
        return self._look_up("by_name", names)

    def owners(self, functions: Collection[str]) -> dict[str, str]:
        """Function -> tool for those of ``functions`` the manifest defines (the
        functions of an agent's own classes at start-up); see :meth:`_look_up`."""
        return self._look_up("functions", functions)

    def _look_up(self, section: str, keys: Collection[str]) -> dict[str, str]:
        """``key -> value`` for those of ``keys`` in the object ``section``.

        While the object is unparsed and the keys are few, each is looked up in its
        text instead, which costs one C-level search rather than a parse per tool of
        the manifest: for a key of word characters, dots and dashes (written as is),
        ``"key":`` right after ``{`` or a space can only be that key (inside a string
        its quotes would be escaped, and a value is followed by a comma or a brace),
        and the value after it is decoded alone.
        """
        raw = self._sections[section]
        if (isinstance(raw, slice) and len(keys) <= _SEARCH_LIMIT
                and all(_PLAIN_KEY.fullmatch(key) for key in keys)):
            block, found = self._block, {}
            for key in keys:
                needle = f'"{key}":'.encode()
                at = block.find(needle, raw.start, raw.stop)
                while at > 0 and block[at - 1] not in b"{ ":
                    at = block.find(needle, at + 1, raw.stop)
                if at < 0:
                    continue
                start = at + len(needle)
                # the value alone: a name or an import path, well within the window
                window = block[start:min(start + _VALUE_WINDOW, raw.stop)].decode(
                    "utf-8", errors="replace")
                try:
                    value, _ = _DECODER.raw_decode(window.lstrip(" \t\n\r"))
                except ValueError:
                    break  # not what render_manifest writes: parse it, and say what is wrong
                if not isinstance(value, str):
                    break
                found[key] = value
            else:
                return found
        table: Mapping[str, object] = self._section(section)
        return {key: str(table[key]) for key in keys if key in table}

    def __contains__(self, import_path: object) -> bool:
        return import_path in self.by_path

    def __len__(self) -> int:
        return len(self.paths)

    def import_paths(self) -> list[str]:
        return list(self.paths)

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


_KINDS: dict[type, str] = {dict: "an object", list: "a list"}


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
    """The start-up lines kept as bytes, parsed on use, when the file has the layout
    :func:`render_manifest` writes; otherwise the whole file as plain JSON."""
    try:
        with path.open("rb") as file:
            size = _startup_bytes(file.readline())
            block = file.read(size) if size is not None else b""
            index_at = file.tell()
    except OSError as exc:
        raise ConfigError(f"cannot read the tool manifest ({exc})", field=str(path)) from exc
    sections = _startup_sections(block) if size is not None and len(block) == size else None
    if sections is not None:
        return Manifest(path, sections, checked=True, block=block, index_at=index_at)
    return _from_json(path, _load_json(path))


def _startup_bytes(head: bytes) -> int | None:
    prefix = _HEAD.encode()
    if head.startswith(prefix) and head.endswith(b",\n") and head[len(prefix):-2].isdigit():
        return int(head[len(prefix):-2])
    return None


def _startup_sections(block: bytes) -> dict[str, slice] | None:
    """Where each start-up section's JSON text is in ``block``, or None when the lines
    are not the expected ones. Slices, not copies: splitting the block would copy a
    long line, which costs more than finding its ends."""
    sections = {}
    start = 0
    for key in _STARTUP:
        prefix = f'"{key}": '.encode()
        end = block.find(b"\n", start)
        if end < 0 or not block.startswith(prefix, start) or block[end - 1:end] != b",":
            return None
        sections[key] = slice(start + len(prefix), end - 1)
        start = end + 1
    return sections if start == len(block) else None


def _from_json(path: Path, full: dict[str, Any]) -> Manifest:
    """A manifest of any layout (version 1 too) from its parsed JSON, checked in full
    where the layout's checks are skipped; ``checked`` is False: start-up checks the
    dependencies again."""
    version = full.get("version")
    if version == 1:  # names: {path: name}
        names = full.get("names")
        if not (isinstance(names, dict) and all(isinstance(n, str) for n in names.values())):
            raise ConfigError(f"`names` must map import paths to names; {_REGENERATE}",
                              field=str(path))
        mapped = {name: p for p, name in names.items()}
        if len(mapped) < len(names):
            twice = next(n for i, n in enumerate(names.values()) if n in list(names.values())[:i])
            raise ConfigError(f"tool {twice!r} is listed twice; {_REGENERATE}",
                              field=str(path))
        full = {**full, "paths": list(names), "by_name": mapped}
    elif version != VERSION:
        raise ConfigError(f"manifest version {version!r} is not one this agentrt reads "
                          f"(1 or {VERSION}); {_REGENERATE}", field=str(path))
    paths, by_name = full.get("paths"), full.get("by_name")
    if not (isinstance(paths, list) and isinstance(by_name, dict)
            and all(isinstance(p, str) for p in (*paths, *by_name.values()))
            and len(set(paths)) == len(paths) == len(by_name)
            and set(paths) == set(by_name.values())):
        raise ConfigError(f"`paths` must list the import paths of `by_name`, once each; "
                          f"{_REGENERATE}", field=str(path))
    for key in ("requires", "functions", "index"):
        if not isinstance(full.get(key), dict):
            raise ConfigError(f"`{key}` must be an object; {_REGENERATE}", field=str(path))
    requires = full["requires"]
    if not all(isinstance(deps, list) and all(isinstance(d, str) for d in deps)
               for deps in requires.values()):
        raise ConfigError(f"`requires` must map tools to lists of names; {_REGENERATE}",
                          field=str(path))
    outside = {name: out for name, deps in requires.items()
               if (out := [d for d in deps if d not in by_name])}
    return Manifest(path, {"paths": paths, "by_name": by_name, "requires": requires,
                           "outside": outside, "functions": full["functions"],
                           "index": full["index"]}, checked=False, full=full)


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
