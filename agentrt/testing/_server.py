"""The fake Anthropic Messages API: routing, the API's own validation rules, scripted answers."""

from __future__ import annotations

import json
import math
import time
from contextlib import AsyncExitStack, suppress
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._cache_sim import PromptCache, parse_prompt
from ._context import emulate_context
from ._http import DropConnection, HttpRequest, ResponseWriter, serve_connection
from ._output import check_output_config, scripted_output
from ._pace import CHARS_PER_TOKEN, Pacer
from ._script import (
    CutStream,
    Fault,
    MalformedEvent,
    RecordedRequest,
    Reply,
    Responder,
    Script,
    Step,
    StreamError,
)
from ._sse import build_message, encode, message_events, new_id, splice_raw_inputs

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import anthropic

    from ._cache_sim import Prompt
    from ._context import ContextSeen

MESSAGES, COUNT_TOKENS = "/v1/messages", "/v1/messages/count_tokens"
_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource"),
    404: ("not_found_error", "Not found"),
    408: ("timeout_error", "Request timed out"),
    409: ("conflict_error", "Conflict"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes"),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


class _Rejected(Exception):
    """A request the API itself would refuse: answered before any script step is consumed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.fault = Fault(status, message)


class FakeAnthropicServer:
    """A Messages API on 127.0.0.1 for the real `anthropic.AsyncAnthropic`, over real HTTP.

    `async with FakeAnthropicServer(script) as server:` listens while inside, owns its tasks and
    closes every connection on exit. Every request, failed ones included, lands in `requests`.

    `strict_deferred=True` answers the API's way when a scripted reply calls a deferred tool
    that no `tool_reference` (in a `tool_result` or a search result) has revealed: the model
    cannot see such a tool, so the step fails (a 500 naming it) instead of reaching the
    client. Off by default: a script that calls a catalog tool directly (how a test of
    anything but tool search is written, in the default `deferred` mode) runs as written;
    a test of how tools are found should turn it on (tests/jit and bench/jit.py do).

    `context_windows` gives models (by name or prefix) a context window: a longer prompt gets
    the API's 400 `prompt is too long`. Context editing and compaction (`context_management`)
    are emulated (see `agentrt.testing._context`).
    """

    def __init__(
        self,
        script: Script | Sequence[Step] | Responder,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        min_cache_tokens: int = 1024,
        require_auth: bool = True,
        strict_deferred: bool = False,
        context_windows: Mapping[str, int] | None = None,
    ) -> None:
        self.strict_deferred = strict_deferred
        self.context_windows = dict(context_windows or {})
        self.script = script if isinstance(script, Script) else Script(script)
        self.latency = latency
        self.require_auth = require_auth
        self.requests: list[RecordedRequest] = []
        self.cache = PromptCache(min_cache_tokens)
        self._host, self._port = host, port
        self._stack: AsyncExitStack | None = None
        self._group: anyio.abc.TaskGroup | None = None

    @property
    def base_url(self) -> str:
        if self._stack is None:
            raise RuntimeError("the server is not running: use `async with server:` first")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    def client(self, **kwargs: Any) -> anthropic.AsyncAnthropic:
        """An SDK client aimed at this server; close it (`async with`) to release its sockets."""
        import anthropic

        options = {"base_url": self.base_url, "api_key": "test-key", **kwargs}
        return anthropic.AsyncAnthropic(**options)

    async def __aenter__(self) -> FakeAnthropicServer:
        async with AsyncExitStack() as stack:
            listener = await anyio.create_tcp_listener(local_host=self._host, local_port=self._port)
            await stack.enter_async_context(listener)
            self._port = listener.extra(anyio.abc.SocketAttribute.local_port)
            self._group = await stack.enter_async_context(anyio.create_task_group())
            self._group.start_soon(listener.serve, self._on_connection, self._group)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stack is not None and self._group is not None:
            self._group.cancel_scope.cancel()
            stack, self._stack = self._stack, None
            await stack.aclose()

    async def serve_forever(
        self, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled, starting the server unless it already runs.

        `await group.start(server.serve_forever)` returns the base URL once the port is bound.
        """
        if self._stack is not None:
            task_status.started(self.base_url)
            await anyio.sleep_forever()
        async with self:
            task_status.started(self.base_url)
            await anyio.sleep_forever()

    async def _on_connection(self, stream: anyio.abc.SocketStream) -> None:
        await serve_connection(stream, self._handle)

    async def _handle(self, http: HttpRequest, writer: ResponseWriter) -> None:
        body: Any = None
        with suppress(ValueError):
            body = json.loads(http.body) if http.body else None
        request = RecordedRequest(
            method=http.method,
            path=http.path,
            headers=http.headers,
            body=body if isinstance(body, dict) else {},
            stream=isinstance(body, dict) and body.get("stream") is True,
            received_at=time.monotonic(),
        )
        self.requests.append(request)
        headers = {"request-id": new_id("req_011", 21)}
        payload: Any = None
        try:
            step, payload = await self._decide(request, body)
        except _Rejected as exc:
            step = exc.fault
        except Exception as exc:  # a responder's or a step's bug: tell the test, keep serving
            step = Fault(500, f"fake server: the step failed: {exc!r}", should_retry=False)
        own = step.reply if isinstance(step, CutStream | StreamError | MalformedEvent) else step
        await anyio.sleep(self.latency + (own.latency if isinstance(own, Reply | Fault) else 0.0))
        if isinstance(step, StreamError) and not request.stream:
            status = next((s for s, (kind, _) in _ERRORS.items() if kind == step.error_type), 500)
            step = Fault(status, step.message, step.error_type)
        if isinstance(step, Fault):
            await _send_fault(writer, headers, step)
            return
        if isinstance(step, CutStream) and not request.stream:
            raise DropConnection
        if step is None or not request.stream:
            await writer.send(200, {**headers, "content-type": "application/json"}, payload)
            return
        await writer.start(200, {**headers, **_SSE_HEADERS})
        pacer = Pacer(own.event_delay, own.tokens_per_second, own.pauses) if isinstance(
            own, Reply) else None
        if pacer is not None and pacer.active:
            for frame, data in payload:
                await pacer.before(data)
                await writer.write(frame)
                await pacer.after(data)
        else:
            for frame, _ in payload:
                await writer.write(frame)
        if isinstance(step, CutStream):
            raise DropConnection  # mid-body: no terminating chunk, no message_stop
        await writer.end()

    async def _decide(self, request: RecordedRequest, body: Any) -> tuple[Step | None, Any]:
        """The step (None for count_tokens) and its payload: JSON bytes, or SSE frames
        (each with its event's data, None for a garbled one, for pacing).

        Both are rendered here, so a step that cannot be rendered becomes a 500, not a crash.
        """
        if request.method != "POST" or request.path not in (MESSAGES, COUNT_TOKENS):
            raise _Rejected(404, f"Not found: {request.method} {request.path}")
        headers = request.headers
        if self.require_auth and not (headers.get("authorization") or headers.get("x-api-key")):
            raise _Rejected(401, "missing credentials: send Authorization: Bearer or x-api-key")
        seen = seen_prompt(body, request.path, headers.get("anthropic-beta", "").split(","),
                           self.context_windows)
        if request.path == COUNT_TOKENS:
            return None, json.dumps(seen.count()).encode()
        step = await self.script.next_step(request)
        if step is None:
            consumed = self.script.consumed
            raise _Rejected(400, f"fake server: script exhausted after {consumed} replies")
        if isinstance(step, Fault):
            return step, None
        reply = scripted_output(step if isinstance(step, Reply) else step.reply, body)
        prompt = seen.prompt
        message, input_texts = build_message(reply, body["model"], self.cache.account(prompt),
                                             body.get("tools"),
                                             prompt.hidden if self.strict_deferred else ())
        seen.finish(message)
        if not request.stream:
            return step, splice_raw_inputs(json.dumps(message)).encode()
        events = message_events(message, input_texts, piece_chars=(
            CHARS_PER_TOKEN if reply.tokens_per_second else None))
        if isinstance(step, MalformedEvent):
            broken = (f"event: {step.event_name}\ndata: {step.data}\n\n".encode(), None)
            frames = [(encode(name, data), data) for name, data in events]
            return step, [*frames[: step.after_events], broken, *frames[step.after_events :]]
        if isinstance(step, CutStream | StreamError):
            events = events[: step.after_events]
        if isinstance(step, StreamError):
            error = {"type": step.error_type, "message": step.message}
            events.append(("error", {"type": "error", "error": error}))
        return step, [(encode(name, data), data) for name, data in events]


def checked_prompt(body: Any, path: str = MESSAGES) -> Prompt:
    """The request's prompt, once it passes the checks the API makes before answering
    (required fields, tool_use/tool_result pairing, deferred tools): else `_Rejected`."""
    if not isinstance(body, dict):
        raise _Rejected(400, "The request body is not valid JSON, or not a JSON object")
    for key in ("model", "max_tokens", "messages"):
        if key not in body and not (key == "max_tokens" and path == COUNT_TOKENS):
            raise _Rejected(400, f"{key}: Field required")
    if not isinstance(body["messages"], list):
        raise _Rejected(400, "messages: Input should be a valid list")
    _check_tool_pairing(body["messages"])
    try:
        check_output_config(body)
        return parse_prompt(body)
    except ValueError as exc:
        raise _Rejected(400, str(exc)) from None


def seen_prompt(body: Any, path: str, betas: Sequence[str],
                windows: Mapping[str, int]) -> ContextSeen:
    """`checked_prompt`, then what the model sees of it: context edits applied, the
    model's window checked (else `_Rejected`)."""
    prompt = checked_prompt(body, path)
    try:  # count_tokens counts what it is given, window or not
        return emulate_context(body, prompt, {b.strip() for b in betas},
                               {} if path == COUNT_TOKENS else windows)
    except ValueError as exc:
        raise _Rejected(400, str(exc)) from None


def _check_tool_pairing(messages: list[Any]) -> None:
    """The API's two 400s for tool_use and tool_result blocks that do not pair up."""
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _Rejected(400, f"messages.{index}: Input should be a valid dictionary")
        if message.get("role") == "assistant":
            following = messages[index + 1] if index + 1 < len(messages) else {}
            answered = {b.get("tool_use_id") for b in _blocks(following, "tool_result")}
            ids = [b.get("id") for b in _blocks(message, "tool_use")]
            if missing := [i for i in ids if i not in answered]:
                raise _Rejected(
                    400,
                    f"messages.{index}: tool_use ids were found without tool_result blocks "
                    f"immediately after: {', '.join(map(str, missing))}. Each tool_use block must "
                    "have a corresponding tool_result block in the next message.",
                )
        asked = {b.get("id") for b in _blocks(messages[index - 1] if index else {}, "tool_use")}
        for position, block in enumerate(_blocks(message)):
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in asked:
                raise _Rejected(
                    400,
                    f"messages.{index}.content.{position}: unexpected tool_use_id found in "
                    f"tool_result blocks: {block.get('tool_use_id')}. Each tool_result block must "
                    "have a corresponding tool_use block in the previous message.",
                )


def _blocks(message: Any, kind: str | None = None) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and kind in (None, b.get("type"))]


async def _send_fault(writer: ResponseWriter, headers: dict[str, str], fault: Fault) -> None:
    fallback = ("api_error" if fault.status >= 500 else "invalid_request_error", "Error")
    kind, message = _ERRORS.get(fault.status, fallback)
    error = {"type": fault.error_type or kind, "message": fault.message or message}
    headers = dict(headers)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
        headers["retry-after"] = str(math.ceil(fault.retry_after_ms / 1000))
    if fault.should_retry is not None:
        headers["x-should-retry"] = "true" if fault.should_retry else "false"
    body = {"type": "error", "error": error, "request_id": headers["request-id"]}
    headers["content-type"] = "application/json"
    await writer.send(fault.status, headers, json.dumps(body).encode())
