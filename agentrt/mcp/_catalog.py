"""An agent's MCP servers -> tool classes for its catalog, from the manifest alone.

A server the manifest does not describe cannot join a catalog without being started,
which is what just-in-time tools avoid: it is a start-up error saying to run
``agentrt tools manifest``. A missing ``mcp`` package is one too, naming the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import ConfigError
from ..jit.manifest import collector_paused
from ._session import import_mcp
from ._tools import build_tool_class

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ..jit.manifest import Manifest
    from ..tools import Tool
    from ._config import MCPServer
    from ._session import MCPServers

__all__ = ["merge_servers", "server_tool_classes", "tool_class"]


def merge_servers(declared: Mapping[str, MCPServer], configured: Mapping[str, MCPServer],
                  *, field: str) -> dict[str, MCPServer]:
    """The agent's ``mcp_servers`` and its config file's ``[mcp.servers]``: a name in both
    must name the same server."""
    merged = dict(configured)
    for name, server in declared.items():
        other = merged.setdefault(name, server)
        if other != server:
            raise ConfigError(f"MCP server {name!r} is declared both on the agent and in its "
                              "tool config, differently; keep one", field=f"{field}.{name}")
    return merged


def server_tool_classes(servers: Mapping[str, MCPServer], manifest: Manifest | None,
                        registry: MCPServers, *, field: str) -> list[type[Tool]]:
    """One tool class per server (named like the server), built from its manifest entry."""
    if not servers:
        return []
    # the next agent of this runtime with these very servers: what was built for the first
    key = (id(manifest), tuple((name, id(server)) for name, server in servers.items()))
    built = registry.built.get(key)
    if built is not None:
        return list(built[1])
    import_mcp()
    with collector_paused():  # thousands of small objects: see jit.manifest
        classes = _build(servers, manifest, registry, field=field)
    # the servers and manifest are kept with the classes, so that their ids stay theirs
    registry.built[key] = ((manifest, dict(servers)), tuple(classes))
    return classes


def _build(servers: Mapping[str, MCPServer], manifest: Manifest | None,
           registry: MCPServers, *, field: str) -> list[type[Tool]]:
    classes: list[type[Tool]] = []
    for name, server in servers.items():
        entry = None
        if manifest is not None and name in manifest and manifest.tool(name).kind == "mcp":
            entry = manifest.entry(name)
        if entry is None:
            where = manifest.path if manifest is not None else "the tool manifest"
            raise ConfigError(
                f"MCP server {name!r} ({server.describe()}) is not described in {where}: its "
                "tools must be known without starting it; run `agentrt tools manifest "
                "--agent <your agent>` (it starts each server once and records its tools)",
                field=f"{field}.{name}")
        if entry.get("config") != server.digest(name):
            from ..log import get_logger

            get_logger("agentrt.mcp").warning(
                "mcp.manifest_stale", server=name, changed=["config"],
                hint="the manifest describes this server under another configuration; "
                     "regenerate it with `agentrt tools manifest`")
        classes.append(tool_class(registry, name, server, entry))
    return classes


def tool_class(registry: MCPServers, name: str, server: MCPServer,
                entry: Mapping[str, Any]) -> type[Tool]:
    """The server's tool class, built once per entry and configuration."""
    registry.record(name, server, entry)
    key = (name, server.model_dump_json(), entry.get("fingerprint"))
    found = registry.classes.get(key)
    if found is None:
        found = registry.classes[key] = build_tool_class(name, server, entry, registry)
    return found
