"""The project's own MCP server for the tests: stdio or streamable HTTP on 127.0.0.1.

``python own_server.py stdio`` or ``python own_server.py http PORT``. Its tools:
``lookup`` (readOnlyHint: counts its executions in the file ``COUNTER`` names),
``slow`` (no annotations: sleeps, first writing the time to the file ``STARTED`` names), ``whoami``
(readOnlyHint: the ``WHO`` environment value, for per-identity sessions), ``pid``,
``retire`` (removes ``lookup``, then sends ``tools/list_changed``), ``grow`` (adds
``fresh``, read-only, then sends ``tools/list_changed``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("agentrt-test", version="1.0")
READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True)


def _count() -> int:
    counter = os.environ.get("COUNTER")
    if not counter:
        return 0
    path = Path(counter)
    count = int(path.read_text() or 0) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


@server.tool(annotations=READ)
def lookup(key: str) -> str:
    """Look a key up (read-only)."""
    return f"value of {key} (execution {_count()})"


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer (a side effect, for timeouts and crashes)."""
    marker = os.environ.get("STARTED")
    if marker:
        await anyio.Path(marker).write_text(str(time.time()))
    await anyio.sleep(seconds)
    return "slept"


@server.tool(annotations=READ)
def whoami() -> str:
    """The WHO this server was started with."""
    return os.environ.get("WHO", "nobody")


@server.tool(annotations=READ)
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
async def retire(ctx: Context) -> str:  # type: ignore[type-arg]
    """Remove the lookup tool and say so (notifications/tools/list_changed)."""
    server.remove_tool("lookup")
    await ctx.session.send_tool_list_changed()
    return "lookup retired"


def fresh(word: str) -> str:
    """A tool added while the server runs (read-only)."""
    return f"fresh {word} (execution {_count()})"


@server.tool()
async def grow(ctx: Context) -> str:  # type: ignore[type-arg]
    """Add the fresh tool and say so (notifications/tools/list_changed)."""
    server.add_tool(fresh, annotations=READ)
    await ctx.session.send_tool_list_changed()
    return "fresh added"


if __name__ == "__main__":
    if sys.argv[1] == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
