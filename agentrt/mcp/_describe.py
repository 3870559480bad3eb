"""A server's tools as a manifest entry: what ``agentrt tools manifest`` records
(it starts each server once, lists its tools, and stops it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._listing import describe_tools, list_all
from ._session import open_session, reason_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._config import MCPServer

__all__ = ["describe_server", "describe_servers", "describe_tools"]


async def describe_server(name: str, server: MCPServer) -> dict[str, Any]:
    """Start ``server``, list its tools, stop it: its manifest entry."""
    async with open_session(server) as session:
        listed = await list_all(session)
        version = getattr(session.server_info, "version", None)
    return describe_tools(name, server, version, listed)


async def describe_servers(servers: Mapping[str, MCPServer]) -> list[dict[str, Any]]:
    """:func:`describe_server` of each, one after the other; a server that cannot be
    started is a ConfigError naming it."""
    from .._errors import ConfigError

    found = []
    for name, server in servers.items():
        try:
            found.append(await describe_server(name, server))
        except Exception as exc:
            raise ConfigError(f"cannot list the tools of MCP server {name!r} "
                              f"({server.describe()}): {reason_of(exc)}",
                              field=f"mcp_servers.{name}") from exc
    return found


