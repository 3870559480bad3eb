"""An agent's MCP servers -> tool classes for its catalog, from the manifest alone.

A server the manifest does not describe cannot join a catalog without being started,
which is what just-in-time tools avoid: it is a start-up error saying to run
``agentrt tools manifest``. A missing ``mcp`` package is one too, naming the extra;
it is looked for, not imported: nothing imports it until a server is started.

What start-up costs. A server's class (some 8 KB of JSON parsed, a spec and options
per tool) is built once per process for its name, configuration and entry
fingerprint, and shared by every runtime: a runtime's first agent finds it by the
manifest's index alone, and the next agent of the runtime finds the whole list again
(:attr:`MCPServers.built`). A started server's live tool list, when it differs from
the manifest's, replaces the manifest's entry for its runtime
(:meth:`MCPServers.adopt`): the classes are then those of the live entries.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from .._errors import ConfigError
from ..jit.manifest import collector_paused
from ..log import get_logger
from ._session import INSTALL_HINT
from ._tools import build_tool_class

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ..jit.manifest import Manifest
    from ._config import MCPServer
    from ._session import MCPServers
    from ._tools import MCPTool

__all__ = ["merge_servers", "require_mcp", "server_tool_classes", "tool_class"]

log = get_logger("agentrt.mcp")

# (server name, its configuration as JSON, its entry's fingerprint) -> (the class, whether
# the entry was recorded under this configuration); the most recent _LIMIT of them
_CLASSES: dict[tuple[str, str, str], tuple[type[MCPTool], bool]] = {}
_LIMIT = 256
# (manifest file version, the servers by name and id) -> (the servers, kept so that their
# ids stay theirs, and their classes)
_SHARED: dict[object, tuple[object, tuple[type[MCPTool], ...]]] = {}
_FOUND: list[bool] = []  # the mcp package was found once: it stays found


def require_mcp() -> None:
    """A ConfigError naming the extra when the ``mcp`` package is not installed; the
    package is looked for, not imported (importing it takes longer than building an
    agent: it is imported when a server is first started)."""
    if _FOUND:
        return
    try:
        found = importlib.util.find_spec("mcp") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(INSTALL_HINT, field="mcp_servers")
    _FOUND.append(True)


def merge_servers(declared: Mapping[str, MCPServer], configured: Mapping[str, MCPServer],
                  *, field: str) -> dict[str, MCPServer]:
    """The agent's ``mcp_servers`` and its config file's ``[mcp.servers]``: a name in both
    must name the same server."""
    merged = dict(configured)
    for name, server in declared.items():
        other = merged.setdefault(name, server)
        if other is not server and other != server:
            raise ConfigError(f"MCP server {name!r} is declared both on the agent and in its "
                              "tool config, differently; keep one", field=f"{field}.{name}")
    return merged


def server_tool_classes(servers: Mapping[str, MCPServer], manifest: Manifest | None,
                        registry: MCPServers, *, field: str) -> list[type[MCPTool]]:
    """One tool class per server (named like the server), from its manifest entry, or
    from its live list when the server was started and reported another."""
    if not servers:
        return []
    # the next agent of this runtime with these very servers: what was built for the first
    key = (id(manifest), tuple((name, id(server)) for name, server in servers.items()),
           registry.generation)
    built = registry.built.get(key)
    if built is not None:
        return list(built[1])
    require_mcp()
    # the first agent of another runtime, for the same servers and manifest file version
    stamp = manifest.stamp if manifest is not None else None
    shared = None if stamp is None or registry.live else (
        stamp, tuple((name, id(server)) for name, server in servers.items()))
    found = _SHARED.get(shared) if shared is not None else None
    if found is None:
        classes = [_class_of(name, server, manifest, registry, field=f"{field}.{name}")
                   for name, server in servers.items()]
        if shared is not None:
            _SHARED[shared] = (dict(servers), tuple(classes))
            while len(_SHARED) > _LIMIT:
                del _SHARED[next(iter(_SHARED))]
    else:
        classes = list(found[1])
        for cls in classes:
            _check_config(cls)
    # the servers and manifest are kept with the classes, so that their ids stay theirs
    registry.built[key] = ((manifest, dict(servers)), tuple(classes))
    while len(registry.built) > _LIMIT:
        del registry.built[next(iter(registry.built))]
    return classes


def _class_of(name: str, server: MCPServer, manifest: Manifest | None,
              registry: MCPServers, *, field: str) -> type[MCPTool]:
    config = server.model_dump_json()
    live = registry.live.get((name, config))
    if live is not None:
        return tool_class(name, server, live, config=config)
    row = manifest.tool(name) if manifest is not None and name in manifest else None
    found = None
    if row is not None and row.kind == "mcp":
        key = (name, config, row.fingerprint)
        found = _CLASSES.get(key)
        if found is None:
            entry = manifest.entry(name) if manifest is not None else None
            if entry is not None:
                found = _remember(key, name, server, entry)
    if found is None:
        where = manifest.path if manifest is not None else "the tool manifest"
        raise ConfigError(
            f"MCP server {name!r} ({server.describe()}) is not described in {where}: its "
            "tools must be known without starting it; run `agentrt tools manifest "
            "--agent <your agent>` (it starts each server once and records its tools)",
            field=field)
    _check_config(found[0])
    return found[0]


def _check_config(cls: type[MCPTool]) -> None:
    """A warning when the class's entry was recorded under another configuration."""
    if not _CLASSES.get(cls.key, (cls, True))[1]:
        log.warning("mcp.manifest_stale", server=cls.server_name, changed=["config"],
                    hint="the manifest describes this server under another configuration; "
                         "regenerate it with `agentrt tools manifest`")


def tool_class(name: str, server: MCPServer, entry: Mapping[str, Any], *,
               config: str | None = None) -> type[MCPTool]:
    """The server's tool class for ``entry`` (a manifest entry or a live one), built
    once per process for its name, configuration and fingerprint."""
    config = server.model_dump_json() if config is None else config
    key = (name, config, str(entry.get("fingerprint")))
    found = _CLASSES.get(key) or _remember(key, name, server, entry)
    return found[0]


def _remember(key: tuple[str, str, str], name: str, server: MCPServer,
              entry: Mapping[str, Any]) -> tuple[type[MCPTool], bool]:
    with collector_paused():  # a spec and options per tool: see jit.manifest
        cls = build_tool_class(name, server, entry)
        cls.key = key
        found = _CLASSES[key] = (cls, entry.get("config") == server.digest(name))
    while len(_CLASSES) > _LIMIT:
        del _CLASSES[next(iter(_CLASSES))]
    return found
