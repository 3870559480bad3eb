"""``agentrt tools list | show NAME | manifest``: inspect the catalog, regenerate the manifest.

``list`` and ``show`` import no tool module (they read the manifest); ``manifest``
imports every tool once and writes the file agents read at start-up. Their arguments
are declared in :mod:`agentrt._cli_args`; ``agentrt.cli`` runs them with
:func:`run_tools_command`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .._errors import ConfigError, UsageError
from ..mcp._catalog import merge_servers
from .catalog import (
    import_path_of,
    import_tool,
    installed_entry_points,
    load_catalog,
    record_entry_points,
)
from .config import JITConfig
from .initialize_tools import ToolLoader
from .manifest import DEFAULT_MANIFEST, describe, read_manifest, render_manifest
from .search_tools import ToolFinder

if TYPE_CHECKING:
    import argparse
    from collections.abc import Container

    from ..mcp._config import MCPServer
    from ..tools import Tool
    from .catalog import Catalog, CatalogEntry
    from .config import ToolPolicy

__all__ = ["run_tools_command"]


def run_tools_command(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    try:
        if args.tools_command == "manifest":
            return _manifest(args, out)
        catalog, policy = _catalog(args)
        if args.tools_command == "list":
            return _list(catalog, policy, out)
        return _show(catalog, policy, args.name, out)
    except UsageError as exc:
        sys.stderr.write(f"agentrt: {exc}\n")
        return 2


_Sources = tuple[JITConfig, list["type[Tool]"], list["str | type[Tool]"],
                 dict[str, "MCPServer"]]


def _sources(args: argparse.Namespace) -> _Sources:
    config = JITConfig()
    core: list[type[Tool]] = []
    listed: list[str | type[Tool]] = []
    declared: dict[str, MCPServer] = {}
    if args.agent:
        from .._target import load_agent_class

        agent = load_agent_class(args.agent)
        config = JITConfig.coerce(agent.tool_config, field=f"{agent.__name__}.tool_config")
        core = [t if isinstance(t, type) else type(t) for t in (*agent.tools, *agent.core_tools)]
        core.append(ToolLoader)
        if config.tool_loading == "deferred":
            core.append(ToolFinder)
        listed = list(agent.tool_catalog)
        declared = dict(agent.mcp_servers)
    elif args.config:
        config = JITConfig.from_toml(args.config)
    if args.manifest_file:
        config = config.model_copy(update={"manifest": Path(args.manifest_file)})
    config.add_python_path()
    servers = merge_servers(declared, config.mcp.servers, field="mcp_servers")
    return config, core, listed, servers


def _catalog(args: argparse.Namespace) -> tuple[Catalog, ToolPolicy | None]:
    config, core, listed, servers = _sources(args)
    manifest = read_manifest(config.manifest) if config.manifest else None
    if manifest is not None and not (args.agent or args.config):
        listed = [*manifest.import_paths()]  # no agent named: what the manifest knows
    if servers:
        from ..mcp._catalog import server_tool_classes
        from ..mcp._session import MCPServers

        listed += server_tool_classes(servers, manifest, MCPServers(), field="mcp_servers")
    catalog = load_catalog(core=core, listed=listed, configured=config.catalog,
                           manifest=manifest, entry_points=installed_entry_points()
                           if config.entry_points else ())
    policy = config.bind(catalog) if (args.agent or args.config) else None
    return catalog, policy


def _status(entry: CatalogEntry, policy: ToolPolicy | None) -> str:
    if entry.source == "core":
        return "core"
    if policy is None:
        return "-"
    if not policy.may_activate(entry.name):
        return "blocked"
    methods = policy.methods(entry.name)
    return "allowed" if methods is None else f"allowed ({len(methods)} fns)"


def _list(catalog: Catalog, policy: ToolPolicy | None, out: TextIO) -> int:
    from ..mcp._tools import MCPTool

    rows = [("TOOL", "SOURCE", "STATUS", "FUNCTIONS", "SUMMARY")]
    servers: list[type[MCPTool]] = []
    for entry in sorted(catalog, key=lambda e: e.name):
        count = str(len(entry.functions)) if entry.described else "?"
        source: str = entry.source
        if entry.cls is not None and issubclass(entry.cls, MCPTool):
            source = "mcp"
            servers.append(entry.cls)
        rows.append((entry.name, source, _status(entry, policy), count, entry.summary))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                  + "  " + row[4] + "\n")
    for cls in servers:
        out.write(f"\nMCP server {cls.server_name} ({cls.server.describe()}):\n")
        for name, spec in cls.functions().items():
            out.write(f"  {name}  {_hints(cls, name, spec.options)}\n")
    return 0


def _hints(cls: Any, function: str, options: Any) -> str:
    """What an MCP function's annotations (and the config) made of it."""
    hints = [f"{k}={v}" for k, v in sorted(cls.annotations.get(function, {}).items())]
    effect = (f"read-only, ttl {options.ttl:g} s" if options.read_only
              else f"side effect, invalidates {', '.join(options.invalidates) or '-'}")
    return f"{effect}  [{' '.join(hints) or 'no annotations'}]"


def _show(catalog: Catalog, policy: ToolPolicy | None, name: str, out: TextIO) -> int:
    entry = catalog.get(name)
    if entry is None:
        from .catalog import did_you_mean

        raise UsageError(f"no tool {name!r} in the catalog{did_you_mean(name, catalog.names())}")
    details: dict[str, Any] | None = None
    if entry.cls is not None:
        details = describe(entry.cls, entry.import_path)
    else:
        details = catalog.details(name)
    reason = policy.refusal(name) if policy is not None else None
    out.write(f"{entry.name}: {entry.summary or '(no summary)'}\n"
              f"  import path  {entry.import_path}\n"
              f"  source       {entry.source}\n"
              f"  version      {entry.version or '?'}\n"
              f"  requires     {', '.join(entry.requires) or '-'}\n"
              f"  status       {reason or _status(entry, policy)}\n")
    if details is None:
        out.write("  functions    unknown until it is imported (not in the manifest)\n")
        return 0
    out.write("  functions\n")
    for fn in details.get("functions", ()):
        out.write(f"    {fn['name']}: {fn['summary']}\n"
                  f"      {json.dumps(fn['definition']['input_schema'], sort_keys=True)}\n")
    return 0


def _listed_in(target: Path) -> list[str]:
    """The import paths the manifest at ``target`` describes. A manifest of an older
    format is read for them too, so that regenerating it keeps its tools."""
    try:
        current = read_manifest(target)
    except ConfigError as exc:
        older = _older_paths(target)
        if older is None:
            raise UsageError(f"{exc} (--fresh writes it anew from the tools named here "
                             "alone)") from exc
        return older
    return current.import_paths() if current is not None else []


def _older_paths(target: Path) -> list[str] | None:
    """Formats 1 and 2 were one JSON document listing the import paths in ``names``
    (keys) or ``paths``; format 3's first line has the columns ``location`` and ``kind``
    as format 4's does."""
    try:
        text = target.read_text(encoding="utf-8")
    except OSError:
        return None
    old = None
    for document in (text, text.partition("\n")[0]):  # one document, or JSON Lines
        try:
            old = json.loads(document)
            break
        except ValueError:
            continue
    if not isinstance(old, dict):
        return None
    table, listed = old.get("tools"), old.get("paths") or list(old.get("names") or ())
    if isinstance(table, dict):  # format 3
        listed = [location for location, kind in zip(
            table.get("location") or (), table.get("kind") or (), strict=False)
            if kind == "python"]
    if isinstance(listed, list) and all(isinstance(path, str) for path in listed):
        return listed
    return None


def _manifest(args: argparse.Namespace, out: TextIO) -> int:
    config, _, listed, servers = _sources(args)
    target = Path(args.manifest_file) if args.manifest_file else (
        config.manifest or DEFAULT_MANIFEST)
    paths: dict[str, None] = {}
    if not args.fresh:
        paths.update(dict.fromkeys(_listed_in(target)))
    paths.update(dict.fromkeys(args.paths))
    paths.update(dict.fromkeys(i if isinstance(i, str) else import_path_of(i) for i in listed))
    paths.update(dict.fromkeys(config.catalog))
    installed = record_entry_points() if config.entry_points else None
    if installed is not None:
        paths.update(dict.fromkeys(value for _, value in installed.found))
    entries = [describe(import_tool(p), p) for p in paths]
    if servers:
        import anyio

        from ..mcp._describe import describe_servers

        entries += anyio.run(describe_servers, servers)
    if not args.fresh:  # the servers described before and not now are kept as they were
        entries += _mcp_entries(target, exclude=servers)
    text = render_manifest(entries, entry_points=installed)
    old = target.read_text(encoding="utf-8") if target.is_file() else None
    if args.check:  # where the distributions are is this machine's, not the tools'
        if old is not None and _unrecorded(old) == render_manifest(entries):
            out.write(f"{target}: up to date ({len(entries)} tools)\n")
            return 0
        out.write(f"{target}: out of date; run `agentrt tools manifest` to regenerate it\n")
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    out.write(f"{target}: {len(entries)} tools{'' if old != text else ' (unchanged)'}\n")
    return 0


def _unrecorded(text: str) -> str:
    """The manifest text without its record of the installed entry points."""
    first, newline, rest = text.partition("\n")
    try:
        index = json.loads(first)
    except ValueError:
        return text
    if not (isinstance(index, dict) and index.pop("entry_points", None) is not None):
        return text
    return json.dumps(index, ensure_ascii=False) + newline + rest


def _mcp_entries(target: Path, *, exclude: Container[str]) -> list[dict[str, Any]]:
    """The MCP servers' entries the manifest at ``target`` holds, but those named."""
    try:
        current = read_manifest(target)
    except ConfigError:
        return []
    if current is None:
        return []
    names = [n for n in current.names if current.tool(n).kind == "mcp" and n not in exclude]
    return [e for e in current.entries(names).values() if e is not None]
