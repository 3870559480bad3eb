"""MCP servers as just-in-time tools (the optional extra: ``pip install 'agentrt[mcp]'``).

Declare servers on an agent, ``mcp_servers = {"git": StdioServer(command="mcp-server-git",
args=["--repository", path])}``, or in its tool config file as ``[mcp.servers.git]``.
Their tools join the catalog from the manifest (``agentrt tools manifest`` records
them), a server is started by the first call of one of its tools, and each tool's
annotations decide what the pipeline may do with its calls: ``readOnlyHint: true``
makes a read-only function (deduplicated, memoized, cached, coalesced, with a short
TTL); any other tool is a side effect that invalidates the server's cached reads.

Importing this module does not import the ``mcp`` package.
"""

from ._config import DEFAULT_READ_TTL, HTTPServer, MCPServer, StdioServer, ToolOverride

__all__ = ["DEFAULT_READ_TTL", "HTTPServer", "MCPServer", "StdioServer", "ToolOverride"]
