"""How an agent declares MCP servers: :class:`StdioServer` and :class:`HTTPServer`.

Plain pydantic models (this module does not import the ``mcp`` package), declared on
an agent (``mcp_servers = {"git": StdioServer(command="mcp-server-git")}``) or in the
agent's tool config file with the same fields::

    [mcp.servers.git]
    command = "mcp-server-git"
    args = ["--repository", "/srv/repo"]
    public = true                        # results shared by every caller
    [mcp.servers.git.tools.git_log]
    ttl = 5

What the pipeline makes of a server's tools (see :mod:`agentrt.mcp._tools`): a tool
the server annotates ``readOnlyHint: true`` is a read-only function with a short TTL
(``read_ttl``), cached under the server's tag; any other tool is a side effect that
invalidates that tag. ``trust_annotations = false`` makes every tool a side effect;
``tools.NAME`` overrides one tool's ``read_only``, ``ttl``, ``cache_tags``,
``invalidates``, ``timeout`` and ``requires_approval``. A side-effecting tool the server
explicitly annotates ``destructiveHint: true`` requires a person's approval (the spec's
implicit default for an unannotated tool does not count); ``approve_destructive =
false`` turns that off for the server.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, StrictBool

__all__ = ["DEFAULT_READ_TTL", "HTTPServer", "MCPServer", "StdioServer", "ToolOverride",
           "parse_servers", "server_tag"]

DEFAULT_READ_TTL = 30.0  # seconds: read-only means no side effect, not a stable answer
_PREFIX = re.compile(r"[a-zA-Z0-9_-]{0,32}")


class ToolOverride(BaseModel):
    """What the config says about one of a server's tools, over its annotations."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    read_only: StrictBool | None = None
    ttl: PositiveFloat | None = None
    cache_tags: tuple[str, ...] | None = None
    invalidates: tuple[str, ...] | None = None
    timeout: PositiveFloat | None = None
    requires_approval: StrictBool | None = None


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: Annotated[str, Field(pattern=_PREFIX.pattern)] = ""
    public: StrictBool = False
    per_identity: StrictBool = False
    trust_annotations: StrictBool = True
    # a tool the server explicitly annotates ``destructiveHint: true`` waits for a person
    approve_destructive: StrictBool = True
    read_ttl: PositiveFloat = DEFAULT_READ_TTL
    idle_timeout: PositiveFloat | None = 300.0
    max_restarts: PositiveInt = 3
    tools: dict[str, ToolOverride] = {}

    def identity(self) -> dict[str, Any]:
        """What names the server in call keys (never its secrets: env, headers)."""
        raise NotImplementedError

    def digest(self, name: str) -> str:
        canonical = json.dumps([name, self.identity()], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class StdioServer(_Server):
    """A server run as a child process speaking MCP on its stdin and stdout."""

    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    cwd: str | None = None

    def __init__(self, command: str | None = None, /, **data: Any) -> None:
        if command is not None:
            data["command"] = command
        super().__init__(**data)

    def identity(self) -> dict[str, Any]:
        return {"command": self.command, "args": list(self.args), "cwd": self.cwd}

    def describe(self) -> str:
        return " ".join([self.command, *self.args])


class HTTPServer(_Server):
    """A server reached over MCP's streamable HTTP transport."""

    url: str
    headers: dict[str, str] = {}

    def __init__(self, url: str | None = None, /, **data: Any) -> None:
        if url is not None:
            data["url"] = url
        super().__init__(**data)

    def identity(self) -> dict[str, Any]:
        return {"url": self.url}

    def describe(self) -> str:
        return self.url


MCPServer: TypeAlias = StdioServer | HTTPServer


def server_tag(name: str) -> str:
    """The cache tag of a server's reads, which its side effects invalidate."""
    return f"mcp:{name}"


def parse_servers(data: Mapping[str, Any]) -> dict[str, MCPServer]:
    """``[mcp.servers.NAME]`` tables -> servers: ``command`` makes a StdioServer, ``url``
    an HTTPServer. Raises ValueError naming the server (the caller adds the field)."""
    found: dict[str, MCPServer] = {}
    for name, table in data.items():
        if isinstance(table, StdioServer | HTTPServer):
            found[name] = table
            continue
        if not isinstance(table, Mapping):
            raise ValueError(f"{name}: expected a table, got {table!r}")
        if ("command" in table) == ("url" in table):
            raise ValueError(f"{name}: give `command` (a stdio server) or `url` (an HTTP "
                             "server), not both or neither")
        found[name] = StdioServer(**table) if "command" in table else HTTPServer(**table)
    return found
