"""A tiny HTTP/1.1 server: anyio sockets plus h11.

Hand-rolled rather than borrowed from a web framework so the fake runs unchanged on asyncio and
trio, and so a handler can do what frameworks make awkward: hold back the first byte, stream
chunked SSE at its own pace, or drop the connection half-way through a body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import h11

_RECEIVE_SIZE = 65536
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, h11.ProtocolError)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str  # without the query string, which the API's routes ignore
    headers: dict[str, str]  # lower-case names
    body: bytes


class DropConnection(Exception):
    """Raised by a handler to close the connection at once, whatever it has sent so far."""


class ResponseWriter:
    """Writes one response; `send` for a whole body, `start`/`write`/`end` to stream (chunked)."""

    def __init__(self, conn: Any, stream: anyio.abc.ByteStream) -> None:
        self._conn = conn
        self._stream = stream

    async def send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        await self.start(status, {**headers, "content-length": str(len(body))})
        await self.write(body)
        await self.end()

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        # Without content-length, h11 frames the body with chunked transfer encoding.
        await self._emit(h11.Response(status_code=status, headers=list(headers.items())))

    async def write(self, data: bytes) -> None:
        if data:
            await self._emit(h11.Data(data=data))

    async def end(self) -> None:
        await self._emit(h11.EndOfMessage())

    async def _emit(self, event: Any) -> None:
        await self._stream.send(self._conn.send(event))


Handler = Callable[[HttpRequest, ResponseWriter], Awaitable[None]]


async def serve_connection(stream: anyio.abc.ByteStream, handler: Handler) -> None:
    """Serve requests on one connection until the peer leaves or a handler drops it.

    Keep-alive matters: the SDK reuses pooled connections, so a fake that closed after every
    response would never exercise the stale-connection paths a real client meets.
    """
    conn = h11.Connection(h11.SERVER)
    async with stream:
        try:
            while (request := await _read_request(conn, stream)) is not None:
                await handler(request, ResponseWriter(conn, stream))
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (DropConnection, *_GONE):
            return


async def _read_request(conn: Any, stream: anyio.abc.ByteStream) -> HttpRequest | None:
    head: Any = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(_RECEIVE_SIZE)
            except anyio.EndOfStream:
                data = b""
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            headers: dict[str, str] = {}
            for name, value in head.headers:
                key, text = name.decode("latin-1").lower(), value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
            return HttpRequest(
                method=head.method.decode("ascii"),
                path=head.target.decode("latin-1").split("?", 1)[0],
                headers=headers,
                body=bytes(body),
            )
        else:  # ConnectionClosed, or PAUSED after a protocol mix-up: nothing more to serve
            return None
