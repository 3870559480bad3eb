"""The h11 server on its own, over raw sockets: keep-alive and chunking on asyncio and trio."""

from __future__ import annotations

import json

import anyio
import anyio.abc
import h11
import pytest

from agentrt.testing import CutStream, FakeAnthropicServer, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

BODY = json.dumps(
    {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
).encode()


async def _exchange(
    conn: h11.Connection, stream: anyio.abc.ByteStream, body: bytes
) -> tuple[h11.Response, bytes]:
    headers = [
        ("host", "127.0.0.1"),
        ("content-length", str(len(body))),
        ("authorization", "Bearer k"),
    ]
    await stream.send(conn.send(h11.Request(method="POST", target="/v1/messages", headers=headers)))
    await stream.send(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    response, data = None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                conn.receive_data(await stream.receive())
            except anyio.EndOfStream:
                conn.receive_data(b"")
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            data += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            conn.start_next_cycle()
            return response, data
        else:
            raise AssertionError(event)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_keep_alive_json_and_chunked_sse_on_one_connection(anyio_backend: str) -> None:
    async with FakeAnthropicServer([Reply(text="one"), Reply(text="two")]) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            conn = h11.Connection(h11.CLIENT)
            first, data = await _exchange(conn, stream, BODY)
            assert first.status_code == 200
            assert dict(first.headers)[b"content-length"] == str(len(data)).encode()
            assert json.loads(data)["content"] == [{"type": "text", "text": "one"}]
            streamed = json.dumps({**json.loads(BODY), "stream": True}).encode()
            second, data = await _exchange(conn, stream, streamed)
            assert dict(second.headers)[b"transfer-encoding"] == b"chunked"
            assert data.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_cut_stream_closes_the_socket_mid_body(anyio_backend: str) -> None:
    cut = CutStream(Reply(text="partial"), after_events=2)
    async with FakeAnthropicServer([cut]) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            conn = h11.Connection(h11.CLIENT)
            streamed = json.dumps({**json.loads(BODY), "stream": True}).encode()
            with pytest.raises(h11.RemoteProtocolError, match="peer closed"):
                await _exchange(conn, stream, streamed)
