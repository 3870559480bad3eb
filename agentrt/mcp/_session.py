"""Connections to MCP servers: started on first use, shared, restarted, stopped when idle.

:class:`MCPServers` (one per :class:`~agentrt.Runtime`) holds a :class:`Connection`
per server (per server and caller identity for a ``per_identity`` server). A
connection starts its server on its first call, in a host task of its own
(:mod:`._host`), and every run of the process calls through that one session,
concurrently. A call that loses the server (the child died, the connection dropped)
answers with an error and stops the session; the next call starts it again, up to
``max_restarts`` times, after which the server is reported down. A server unused for
``idle_timeout`` seconds is stopped; closing the runtime stops them all.

Only this module and :mod:`._describe` import the ``mcp`` package.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import ToolError
from ..log import get_logger
from ._host import spawn_host

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ._config import MCPServer

__all__ = ["Connection", "MCPServers", "import_mcp", "open_session", "reason_of"]

log = get_logger("agentrt.mcp")

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
INSTALL_HINT = "MCP servers need the mcp extra: pip install 'agentrt[mcp]'"


def import_mcp() -> Any:
    """The ``mcp`` package with the client parts a session uses, or a ConfigError naming
    the extra to install."""
    try:
        import mcp.client.session
        import mcp.client.stdio
        import mcp.client.streamable_http
        import mcp.shared.exceptions
        import mcp_types  # noqa: F401
    except ImportError as exc:
        from .._errors import ConfigError

        raise ConfigError(INSTALL_HINT, field="mcp_servers") from exc
    return mcp


async def import_mcp_off_loop() -> None:
    """:func:`import_mcp` in a worker thread the first time: the package takes a second
    or more to import, and a loop held that long timed out a Redis call in flight beside
    it, tripping the Redis gate (four processes sharing one call then ran it twice)."""
    if "mcp.client.streamable_http" not in sys.modules:
        await anyio.to_thread.run_sync(import_mcp)


def _formatted(values: Mapping[str, str] | None, identity: Mapping[str, str]) -> dict[str, str]:
    """``{user}`` in a per-identity server's env or headers: the caller's own credentials."""
    return {k: v.format_map(dict(identity)) for k, v in (values or {}).items()}


@contextlib.asynccontextmanager
async def open_session(server: MCPServer, identity: Mapping[str, str] | None = None,
                       on_message: Callable[[Any], Any] | None = None) -> Any:
    """An initialized ``ClientSession`` to ``server`` (its child process ended on exit)."""
    await import_mcp_off_loop()
    from mcp.client.session import ClientSession

    from ._config import StdioServer

    ids = identity or {}
    async with contextlib.AsyncExitStack() as stack:
        if isinstance(server, StdioServer):
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=server.command, args=list(server.args),
                env=_formatted(server.env, ids) or None, cwd=server.cwd)
            streams = await stack.enter_async_context(stdio_client(params))
        else:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            client = await stack.enter_async_context(
                httpx2.AsyncClient(headers=_formatted(server.headers, ids),
                                   timeout=httpx2.Timeout(30.0, read=300.0)))
            streams = await stack.enter_async_context(
                streamable_http_client(server.url, http_client=client))
        kwargs: dict[str, Any] = {}
        if on_message is not None:
            kwargs["message_handler"] = on_message
        session = await stack.enter_async_context(ClientSession(*streams, **kwargs))
        with anyio.fail_after(_START_TIMEOUT):
            await session.initialize()
        yield session


class Connection:
    """One server's session, started on first use (see the module docstring)."""

    def __init__(self, name: str, server: MCPServer, identity: Mapping[str, str],
                 recorded: Mapping[str, Any] | None = None,
                 servers: MCPServers | None = None) -> None:
        """``recorded``: the server's entry as its agents know it (the manifest's, or a
        live list adopted before), which the live list is checked against; ``servers``:
        the runtime's connections, told when the live list differs."""
        self.name = name
        self.recorded = recorded
        self.servers = servers
        self.live_tools: frozenset[str] | None = None
        self.server = server
        self.identity = dict(identity)
        self.session: Any = None
        self.server_version: str | None = None
        self.started = 0  # sessions started so far
        self.down = False
        self.tools_changed = False
        self.in_flight = 0
        self.last_used = time.monotonic()
        self._ready: anyio.Event | None = None  # set while a session starts or lives
        self._failure = f"MCP server {name!r} stopped"
        self._stop: anyio.Event | None = None
        self._done: anyio.Event | None = None
        self._wake = anyio.Event()  # a tools/list_changed notification arrived
        self._refreshing: anyio.Event | None = None  # set when the tools are listed again

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """``tools/call``: the result, or ToolError for a server that cannot answer. A
        cancelled call (a timeout) is cancelled on the server too (the SDK sends
        ``notifications/cancelled``)."""
        await import_mcp_off_loop()  # before the imports below, which would hold the loop
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED

        session = await self._session()
        self.in_flight += 1
        try:
            await self._catch_up(session)
            if self.live_tools is not None and tool not in self.live_tools:
                raise ToolError(f"MCP server {self.name!r} no longer offers the tool {tool!r}")
            result = await session.call_tool(tool, arguments)
            try:  # said during the call: in the next request
                await self._catch_up(session)
            except Exception as exc:  # the result stands; the next call finds the loss
                log.warning("mcp.refresh_failed", server=self.name, error=reason_of(exc))
            return result
        except ToolError:
            raise
        except MCPError as exc:
            if exc.error.code != CONNECTION_CLOSED:  # the server answered with an error
                raise ToolError(f"MCP server {self.name!r}: {exc}") from exc
            self._lost(session, tool, exc)
        except Exception as exc:
            self._lost(session, tool, exc)
        finally:
            self.in_flight -= 1
            self.last_used = time.monotonic()
        raise ToolError(f"MCP server {self.name!r} failed during {tool}: the connection was "
                        "lost; it is restarted on the next call")

    async def _session(self) -> Any:
        """The live session, started if need be. The start runs in the host task, so a
        caller cancelled while waiting for it (a timeout) neither stops it nor makes the
        next caller start a second server."""
        if self.session is not None:
            return self.session
        if self._ready is None:
            self._begin()
        ready = self._ready
        assert ready is not None
        await ready.wait()
        if self.session is None:
            raise ToolError(self._failure)
        return self.session

    def _begin(self) -> None:
        if self.down or self.started > self.server.max_restarts:
            if not self.down:
                self.down = True
                log.error("mcp.server_down", server=self.name, starts=self.started)
            raise ToolError(f"MCP server {self.name!r} is down (started {self.started} "
                            "times, lost each time); its tools are unavailable")
        self.started += 1
        ready = self._ready = anyio.Event()
        stop, done = self._stop, self._done = anyio.Event(), anyio.Event()
        began = time.monotonic()

        async def host() -> None:
            mine: Any = None
            try:
                async with open_session(self.server, self.identity,
                                        self._on_message) as session:
                    self.server_version = getattr(session.server_info, "version", None)
                    await self._refresh(session)
                    self.session = mine = session
                    log.info("mcp.server_started", server=self.name,
                             version=self.server_version,
                             duration_ms=round((time.monotonic() - began) * 1000, 1))
                    ready.set()
                    await self._serve(stop)
            except Exception as exc:
                if not ready.is_set():
                    reason = reason_of(exc)
                    log.error("mcp.start_failed", server=self.name,
                              target=self.server.describe(), error=reason)
                    self._failure = (f"MCP server {self.name!r} could not be started "
                                     f"({self.server.describe()}): {reason}")
            finally:
                if self.session is mine:
                    self.session = None
                if self._ready is ready:
                    self._ready = None
                ready.set()
                done.set()

        spawn_host(host)

    async def _catch_up(self, session: Any) -> None:
        """List the tools again if the server said they changed (once, whoever asks
        first: the others wait for that listing)."""
        while True:
            refreshing = self._refreshing
            if refreshing is not None:
                await refreshing.wait()
                continue
            if not self.tools_changed:
                return
            self.tools_changed = False
            done = self._refreshing = anyio.Event()
            try:
                await self._refresh(session)
            finally:
                self._refreshing = None
                done.set()

    async def _refresh(self, session: Any) -> None:
        """The live tool list, checked against the one the agents know: a mismatch is a
        warning, and the live list wins (the runtime's agents take it from their next
        request on)."""
        from ._listing import differences, live_entry

        live = await live_entry(self.name, self.server, session, self.server_version)
        self.live_tools = frozenset(f["name"] for f in live["functions"])
        known = self.recorded
        if known is not None and known.get("fingerprint") == live["fingerprint"]:
            return
        self.recorded = live
        if known is not None:
            log.warning("mcp.manifest_stale", server=self.name, **differences(known, live),
                        hint="the server's live tool list is used from the next request on; "
                             "regenerate the manifest with `agentrt tools manifest`")
        if self.servers is not None:
            self.servers.adopt(self.name, self.server, live)

    async def _serve(self, stop: anyio.Event) -> None:
        """Until told to stop, or idle (no call in flight) for ``idle_timeout``; a
        ``tools/list_changed`` notification is answered by listing the tools again."""
        idle = self.server.idle_timeout
        while not stop.is_set():
            with anyio.move_on_after(idle if idle is not None else float("inf")):
                await _first(stop, self._wake)
            if self._wake.is_set():
                self._wake = anyio.Event()
                session = self.session
                if session is not None:
                    try:
                        await self._catch_up(session)
                    except Exception as exc:  # the next call finds the session lost
                        log.warning("mcp.refresh_failed", server=self.name,
                                    error=reason_of(exc))
                continue
            if (idle is not None and self.in_flight == 0
                    and time.monotonic() - self.last_used >= idle):
                log.info("mcp.server_idle", server=self.name, idle_timeout=idle)
                # Before the session starts closing (which takes a while): a call arriving
                # meanwhile starts the server again instead of taking the closing session
                # ("connection lost", seen on a busy machine).
                self.session = None
                self._ready = None
                return

    async def _on_message(self, message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.tools_changed = True
            self._wake.set()
            log.info("mcp.tools_changed", server=self.name)

    def _lost(self, session: Any, tool: str, exc: Exception) -> None:
        """The session is gone (the child died, the connection dropped): stop its host,
        so that the next call starts the server again."""
        log.warning("mcp.server_lost", server=self.name, tool=tool,
                    error=f"{type(exc).__name__}: {exc}")
        if self.session is session:  # the next call starts another
            self.session = None
            self._ready = None
            if self._stop is not None:
                self._stop.set()

    async def aclose(self) -> None:
        if self._stop is not None and self._done is not None:
            self._stop.set()
            with anyio.move_on_after(_STOP_TIMEOUT, shield=True):
                await self._done.wait()


async def _first(*events: anyio.Event) -> None:
    """Until one of ``events`` is set."""
    async with anyio.create_task_group() as group:
        async def wait(event: anyio.Event) -> None:
            await event.wait()
            group.cancel_scope.cancel()

        for event in events:
            group.start_soon(wait, event)


def reason_of(exc: BaseException) -> str:
    """The first real cause inside an exception group, as one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found ({exc.filename or exc})"
    return f"{type(exc).__name__}: {exc}"


class MCPServers:
    """A runtime's connections (made on first use of each), the live tool lists its
    servers reported where they differ from the manifest (``live``, by server name and
    configuration), and ``generation``, which counts those changes: an agent built
    before one rebuilds its tools (see :meth:`agentrt.jit.loader.JITLoader.follow`)."""

    def __init__(self) -> None:
        self._connections: dict[tuple[object, ...], Connection] = {}
        self.live: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.generation = 0
        # (manifest, servers, generation) by their ids -> the classes built for them (see
        # _catalog)
        self.built: dict[object, tuple[object, tuple[type[Any], ...]]] = {}

    def connection(self, name: str, server: MCPServer, identity: Mapping[str, str],
                   tool: type[Any] | None = None) -> Connection:
        """The connection of ``server`` (per caller for a ``per_identity`` one); ``tool``,
        the class the call came through, tells a new connection the entry it was built
        from."""
        who = tuple(sorted(identity.items())) if server.per_identity else ()
        config = server.model_dump_json()
        key = (name, config, who)
        found = self._connections.get(key)
        if found is None:
            recorded = self.live.get((name, config))
            if recorded is None and tool is not None:
                recorded = getattr(tool, "entry", None) or None
            found = self._connections[key] = Connection(
                name, server, identity if server.per_identity else {}, recorded, self)
        return found

    def connections(self) -> list[Connection]:
        return list(self._connections.values())

    def adopt(self, name: str, server: MCPServer, entry: Mapping[str, Any]) -> None:
        """``entry``, a started server's live list, replaces what the agents knew."""
        key = (name, server.model_dump_json())
        known = self.live.get(key)
        if known is not None and known.get("fingerprint") == entry.get("fingerprint"):
            return
        self.live[key] = entry
        self.generation += 1

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            await connection.aclose()
