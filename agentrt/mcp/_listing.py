"""A server's tool list as a manifest entry, and how two such entries differ.

The entry (``kind = "mcp"``) has the server's reported version, its tools'
definitions as the Messages API takes them and their annotations, so an agent knows
them without starting the server. When a server is started, its live list is compared
with that entry (:func:`differences`): a mismatch is logged, and the live list wins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..jit.manifest import fingerprint, summary_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._config import MCPServer

__all__ = ["describe_tools", "differences", "list_all", "live_entry"]

_HINTS = {"read_only_hint": "readOnlyHint", "destructive_hint": "destructiveHint",
          "idempotent_hint": "idempotentHint", "open_world_hint": "openWorldHint"}


def describe_tools(name: str, server: MCPServer, version: str | None,
                   tools: list[Any]) -> dict[str, Any]:
    """The manifest entry of ``tools`` (the SDK's ``Tool`` objects), sorted by name."""
    functions = []
    for tool in sorted(tools, key=lambda t: t.name):
        hints = {}
        if tool.annotations is not None:
            hints = {_HINTS[k]: v for k, v in tool.annotations.model_dump().items()
                     if k in _HINTS and v is not None}
        description = tool.description or tool.title or tool.name
        functions.append({"name": tool.name, "summary": summary_of(description),
                          "definition": {"name": tool.name, "description": description,
                                         "input_schema": dict(tool.input_schema)},
                          "annotations": hints})
    entry: dict[str, Any] = {
        "name": name, "kind": "mcp", "server": name, "version": version or "",
        "config": server.digest(name),
        "summary": f"MCP server {name} ({server.describe()})",
        "requires": [], "functions": functions}
    entry["fingerprint"] = fingerprint(entry)
    return entry


async def list_all(session: Any) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        if cursor is None:
            page = await session.list_tools()
        else:
            from mcp_types import PaginatedRequestParams

            page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools


async def live_entry(name: str, server: MCPServer, session: Any,
                     version: str | None) -> dict[str, Any]:
    return describe_tools(name, server, version, await list_all(session))


def differences(recorded: Mapping[str, Any], live: Mapping[str, Any]) -> dict[str, Any]:
    """How the live entry differs from the recorded one (the manifest's, or an earlier
    live list): ``changed``, every tool name that differs (then ``version`` and
    ``config`` when those do), split into ``added``, ``removed`` and ``modified`` (each
    modified tool with what changed: ``input_schema``, ``annotations``,
    ``description``). Empty lists when they match."""
    old = {f["name"]: f for f in recorded.get("functions", ())}
    new = {f["name"]: f for f in live.get("functions", ())}
    modified: dict[str, list[str]] = {}
    for name in sorted(old.keys() & new.keys()):
        before, after = old[name].get("definition", {}), new[name].get("definition", {})
        what = [key for key in ("input_schema", "description")
                if before.get(key) != after.get(key)]
        if old[name].get("annotations") != new[name].get("annotations"):
            what.append("annotations")
        if what or old[name] != new[name]:
            modified[name] = what or ["summary"]
    added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
    changed = sorted([*added, *removed, *modified])
    changed += [key for key in ("version", "config") if recorded.get(key) != live.get(key)]
    return {"changed": changed, "added": added, "removed": removed, "modified": modified}
