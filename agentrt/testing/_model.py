"""In-process model doubles at the loop's seam, for unit tests of the loop.

`ScriptedModel` and `FunctionModel` implement what the loop asks of a model
(`agentrt.llm._model.Model`: `turn` and `aclose`) with no HTTP and no SDK request:
`Runtime(model=ScriptedModel([...]))`. They answer with the steps `FakeAnthropicServer`
scripts (`Reply`, `Fault`, ...), built into the message the server would send and turned
into a `ModelReply` by the same code `ModelClient` uses, so a unit test sees what the loop
sees over HTTP: the same content blocks, tool ids, usage (prompt caching simulated) and
text deltas when streaming. They also refuse, as `ModelError` 400, the requests the API
refuses (unpaired tool_use/tool_result blocks, broken deferral rules).

What they leave out is the wire: retries, SSE decoding, connection faults. A `Fault` is
raised as the `ModelError` `ModelClient` raises once it gives up (the double never retries);
`CutStream`, `StreamError` and `MalformedEvent` stream the text deltas (and completed
tool_use blocks) sent before the fault, then raise the error type `ModelClient` raises
for it. A reply's pacing (`event_delay`, `tokens_per_second`, `pauses`) is kept. Tests
of the SDK path (retries, the bytes on the wire) keep `FakeAnthropicServer`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import MalformedReplyError, ModelError, StreamInterruptedError
from .._events import TextDelta
from ._cache_sim import PromptCache
from ._output import scripted_output
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
from ._server import _ERRORS, COUNT_TOKENS, MESSAGES, _Rejected, seen_prompt
from ._sse import build_message, message_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from ..llm._model import ModelReply, ToolUseComplete

__all__ = ["FunctionModel", "ScriptedModel"]


class ScriptedModel:
    """A model that answers each turn with the next step of `script`.

    `script` is what `FakeAnthropicServer` takes: a list of steps, a `Script`, or a
    responder function of the request. Every request lands in `requests` as a
    `RecordedRequest` (the body as it would go on the wire, `"stream": true` included when
    streaming), so assertions written against the server's `requests` read the same.
    `strict_deferred` refuses a reply that calls a deferred tool no `tool_reference` has
    revealed yet (the API's model cannot see one), as `FakeAnthropicServer`'s does (off by
    default, as there).
    """

    def __init__(self, script: Script | Sequence[Step] | Responder, *,
                 min_cache_tokens: int = 1024, strict_deferred: bool = False,
                 context_windows: Mapping[str, int] | None = None) -> None:
        self.script = script if isinstance(script, Script) else Script(script)
        self.context_windows = dict(context_windows or {})
        self.strict_deferred = strict_deferred
        self.requests: list[RecordedRequest] = []
        self.cache = PromptCache(min_cache_tokens)
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True

    async def turn(self, request: dict[str, Any], *, stream: bool,
                   logger: Any = None
                   ) -> AsyncIterator[TextDelta | ToolUseComplete | ModelReply]:
        """Text deltas and completed tool_use blocks (when `stream`), then the one
        `ModelReply`; `logger` is unused."""
        body, headers = _as_sent(request)
        if stream:
            body["stream"] = True
        recorded = RecordedRequest(method="POST", path=MESSAGES, headers=headers, body=body,
                                   stream=stream, received_at=time.monotonic())
        self.requests.append(recorded)
        try:
            seen = seen_prompt(body, MESSAGES, headers.get("anthropic-beta", "").split(","),
                               self.context_windows)
        except _Rejected as exc:
            raise _error(exc.fault) from None
        prompt = seen.prompt
        step = await self.script.next_step(recorded)
        if step is None:
            raise _error(Fault(400, f"fake model: script exhausted after "
                                    f"{self.script.consumed} replies"))
        own = step.reply if isinstance(step, CutStream | StreamError | MalformedEvent) else step
        await anyio.sleep(own.latency if isinstance(own, Reply | Fault) else 0.0)
        if isinstance(step, Fault):
            raise _error(step)
        if not stream and isinstance(step, StreamError):
            status = next((s for s, (kind, _) in _ERRORS.items() if kind == step.error_type), 500)
            raise _error(Fault(status, step.message, step.error_type))
        if not stream and isinstance(step, CutStream):
            raise ModelError("cannot reach the Messages API: Connection error.")
        assert isinstance(own, Reply)
        try:
            own = scripted_output(own, body)
        except ValueError as exc:
            raise _error(Fault(500, f"fake model: the step failed: {exc}")) from None
        message, input_texts = build_message(own, body["model"], self.cache.account(prompt),
                                             body.get("tools"),
                                             prompt.hidden if self.strict_deferred else ())
        seen.finish(message)
        if not stream:
            yield _model_reply(message, None)
            return
        from ..llm._client import completed_tool_use

        events = message_events(message, input_texts, piece_chars=(
            CHARS_PER_TOKEN if own.tokens_per_second else None))
        cut = len(events) if isinstance(step, Reply) else step.after_events
        raw_inputs: dict[int, list[str]] = {}
        pacer = Pacer(own.event_delay, own.tokens_per_second, own.pauses)
        blocks = [_Block(b) for b in message["content"]]
        for _, data in events[:cut]:
            if pacer.active:
                await pacer.before(data)
            delta = data.get("delta", {}) if data["type"] == "content_block_delta" else {}
            if delta.get("type") == "text_delta":
                yield TextDelta(delta["text"])
            elif delta.get("type") == "input_json_delta":
                raw_inputs.setdefault(data["index"], []).append(delta["partial_json"])
            elif data["type"] == "content_block_stop":
                done = completed_tool_use(blocks, data["index"], raw_inputs)
                if done is not None:
                    yield done
            if pacer.active:
                await pacer.after(data)
        if isinstance(step, CutStream):
            raise StreamInterruptedError(
                "the model's stream was cut: RemoteProtocolError: peer closed connection "
                "without sending complete message body (fake model: CutStream)")
        if isinstance(step, StreamError):
            raise StreamInterruptedError(
                f"the model's stream failed mid-way: {step.error_type}: {step.message}",
                status_code=200, error_type=step.error_type)
        if isinstance(step, MalformedEvent):
            raise MalformedReplyError(
                f"the model's stream could not be decoded: a malformed {step.event_name} "
                f"event after {step.after_events} events (fake model: MalformedEvent)")
        yield _model_reply(message, raw_inputs)


    async def count_tokens(self, request: dict[str, Any]) -> int:
        """``count_tokens`` as the fake server answers it (edits applied); refused requests
        raise the ``ModelError`` the client would."""
        body, headers = _as_sent(request)
        body.pop("max_tokens", None)
        try:
            seen = seen_prompt(body, COUNT_TOKENS, headers.get("anthropic-beta", "").split(","),
                               self.context_windows)
        except _Rejected as exc:
            raise _error(exc.fault) from None
        return int(seen.count()["input_tokens"])


def _as_sent(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers the SDK would send: JSON (no longer the loop's), ``betas`` as
    the ``anthropic-beta`` header."""
    body = json.loads(json.dumps(request))
    betas = body.pop("betas", None)
    return body, ({"anthropic-beta": ",".join(betas)} if betas else {})


class FunctionModel(ScriptedModel):
    """A model whose every turn is `function(request)`: a `Reply` (or any step), or an
    awaitable of one. `request` is a `RecordedRequest`: `.messages`, `.tools` and
    `.system` as the loop sent them (the whole body in `.body`)."""

    def __init__(self, function: Responder, *, min_cache_tokens: int = 1024,
                 strict_deferred: bool = False,
                 context_windows: Mapping[str, int] | None = None) -> None:
        super().__init__(Script(function), min_cache_tokens=min_cache_tokens,
                         strict_deferred=strict_deferred, context_windows=context_windows)


class _Block:
    """A content block as the SDK's stream snapshot shows it (``type``, ``id``, ``name``)."""

    def __init__(self, block: dict[str, Any]) -> None:
        self.type = block.get("type")
        self.id = block.get("id")
        self.name = block.get("name")


def _error(fault: Fault) -> ModelError:
    """The error `ModelClient` raises for `fault` once it gives up retrying."""
    fallback = ("api_error" if fault.status >= 500 else "invalid_request_error", "Error")
    kind, message = _ERRORS.get(fault.status, fallback)
    error_type = fault.error_type or kind
    return ModelError(f"Messages API error {fault.status} ({error_type}): "
                      f"{fault.message or message}",
                      status_code=fault.status, error_type=error_type)


def _model_reply(message: dict[str, Any], raw_inputs: dict[int, list[str]] | None) -> ModelReply:
    """What `ModelClient` makes of `message` (the SDK's objects, the strict tool input)."""
    import anthropic

    from ..llm._client import reply_from_message

    return reply_from_message(anthropic.types.Message.construct(**message), raw_inputs)
