"""One model turn over the real ``anthropic`` SDK, streamed or not, with errors translated.

Retrying is done here, not by the SDK (its calls run with ``max_retries=0``), so
that it is bounded: 408/409/429/5xx answers and connection failures are retried
up to ``max_retries`` times (``x-should-retry`` overrides that choice), after the
``retry-after`` the API asks for, or an exponential backoff. An API asking for a
wait longer than ``max_retry_wait`` is not obeyed by hanging the run: the turn
fails at once with a :class:`ModelError` carrying ``retry_after``. A stream is
retried only before its first event; once text has been streamed a failure ends
the turn. What still fails becomes a :class:`ModelError`; a stream that ends
before ``message_stop`` a :class:`StreamInterruptedError`; a reply that cannot be
decoded (a garbled event, tool input that is not a JSON object) a
:class:`MalformedReplyError`. So the loop never stores half a reply or a reply
the API would refuse to take back.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import random
import time
from typing import TYPE_CHECKING, Any

import anthropic
import anyio
import httpx2

from .._errors import MalformedReplyError, ModelError, StreamInterruptedError
from .._events import TextDelta
from ..log import get_logger
from ._model import ModelReply, ToolUseComplete
from ._usage import Usage

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping

__all__ = ["ModelClient", "ModelReply"]

_log = get_logger("agentrt.llm")

_RETRY_STATUSES = frozenset({408, 409, 429})
# Deeper JSON than this is refused: well below what the standard library's encoder
# and the stores can take (the recursion limit), far above any real tool input.
_MAX_DEPTH = 200
_encode = json.JSONEncoder(ensure_ascii=False).encode  # made once, not per call
_INITIAL_BACKOFF = 0.5
_MAX_BACKOFF = 8.0


def reply_from_message(message: anthropic.types.Message | anthropic.types.beta.BetaMessage,
                raw_inputs: Mapping[int, list[str]] | None = None) -> ModelReply:
    """``raw_inputs``: a streamed tool call's JSON text by block index. It is parsed
    strictly here: the SDK's snapshot is a lenient partial parse that silently drops
    what follows an error (``{"item": "lamp" "qty": 2}`` -> ``{"item": "lamp"}``)."""
    # warnings=False: a tool input that is not an object is reported below, by name
    try:
        content = [block.model_dump(mode="json", exclude_none=True, warnings=False)
                   for block in message.content]
    except (ValueError, RecursionError) as exc:  # "Maximum serialization depth exceeded"
        raise MalformedReplyError(f"the model's reply cannot be read: {exc}") from exc
    bad = None if _plainly_sendable(content) else _unsendable(content)
    if bad is not None:
        raise MalformedReplyError(f"the model's reply holds {bad}, which no request can send "
                                  "back (the API takes UTF-8 only)")
    for index, block in enumerate(content):
        if block.get("type") != "tool_use":
            continue
        text = "".join((raw_inputs or {}).get(index, ())).strip()
        cut = message.stop_reason == "max_tokens" and index == len(content) - 1
        if text:
            try:
                block["input"] = json.loads(text)
            except RecursionError as exc:
                raise MalformedReplyError(
                    f"the model's call of {block.get('name')!r} ({block.get('id')}) has input "
                    "nested too deep to read") from exc
            except ValueError:
                # cut at max_tokens: the loop never runs this call; the lenient parse
                # keeps the message one the API takes back
                if not cut:
                    block["input"] = text
        if cut and not isinstance(block.get("input"), dict):
            block["input"] = {}
        if not isinstance(block.get("input"), dict):
            raise MalformedReplyError(
                f"the model's call of {block.get('name')!r} ({block.get('id')}) has input "
                f"that is not a JSON object: {str(block.get('input'))[:200]!r}")
    context = getattr(message, "context_management", None)
    if context is not None and not isinstance(context, dict):
        context = context.model_dump(mode="json", exclude_none=True)
    return ModelReply(
        id=message.id,
        content=content,
        stop_reason=message.stop_reason or "end_turn",
        usage=Usage.from_api(message.usage),
        model=message.model,
        context=context,
    )


def completed_tool_use(content: Any, index: int,
                       raw_inputs: Mapping[int, list[str]]) -> ToolUseComplete | None:
    """The streamed block at ``index`` if it is a tool_use, its input parsed strictly
    (None when it is not a JSON object: the final reply decides what such a call is)."""
    try:
        block = content[index]
    except (IndexError, TypeError):
        return None
    if getattr(block, "type", None) != "tool_use":
        return None
    text = "".join(raw_inputs.get(index, ())).strip()
    parsed: Any = {}
    if text:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
    return ToolUseComplete(index, {"type": "tool_use", "id": block.id, "name": block.name,
                                   "input": parsed if isinstance(parsed, dict) else None})


def _plainly_sendable(content: list[dict[str, Any]]) -> bool:
    """True when a look at the reply's JSON text settles what ``_unsendable`` would find:
    all ASCII (so no lone surrogate) and too few brackets to nest ``_MAX_DEPTH`` deep.
    One encode in C instead of a walk in Python (about 500 bytecodes a turn)."""
    try:
        text = _encode(content)
    except (TypeError, ValueError, RecursionError):  # odd, circular or deep: the walk says
        return False
    return text.isascii() and text.count("{") + text.count("[") <= _MAX_DEPTH


def _unsendable(value: Any, depth: int = 0) -> str | None:
    """What in a reply no request could send back, if anything: a string that is not
    valid UTF-8 (a lone surrogate, which JSON escapes can carry), or nesting too deep
    to encode. Stored, it would make every later request of the thread fail."""
    if depth > _MAX_DEPTH:
        return f"values nested more than {_MAX_DEPTH} deep"
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return f"a string with a lone surrogate ({value[:40]!r})"
        return None
    children: Iterable[Any]
    if isinstance(value, dict):
        children = itertools.chain.from_iterable(value.items())  # each key, then its value
    elif isinstance(value, list):
        children = value
    else:
        return None
    if value and depth >= _MAX_DEPTH:  # its children are too deep, scalars included,
        return f"values nested more than {_MAX_DEPTH} deep"  # which the loop skips
    for item in children:
        # ASCII strings and scalars are fine: no call for them (most of a reply)
        if isinstance(item, str):
            if item.isascii():
                continue
        elif not isinstance(item, dict | list):
            continue
        found = _unsendable(item, depth + 1)
        if found is not None:
            return found
    return None


def _translate(exc: Exception, key_origin: Callable[[], str] | None = None) -> ModelError:
    """Our error for the SDK's. Its message is the API's own (not the SDK's dump of the
    body); a 401 says where the key came from (``key_origin()``), the likely culprit."""
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        error_type = error.get("type") if isinstance(error, dict) else None
        said = error.get("message") if isinstance(error, dict) else None
        text = said if isinstance(said, str) and said else exc.message
        status = exc.status_code
        if status == 200:  # an `event: error` inside a 200 stream
            return StreamInterruptedError(
                f"the model's stream failed mid-way: {error_type or 'error'}: {text}",
                status_code=status, error_type=error_type, request_id=exc.request_id,
            )
        if status == 401 and key_origin is not None:
            text += f" (the API key refused came from {key_origin()}: is it right, and current?)"
        return ModelError(
            f"Messages API error {status} ({error_type or 'unknown'}): {text}",
            status_code=status, error_type=error_type, request_id=exc.request_id,
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ModelError(f"cannot reach the Messages API: {exc}")
    return StreamInterruptedError(f"the model's stream was cut: {type(exc).__name__}: {exc}")


def _retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) * scale
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if scale == 1.0 else None
            if parsed is not None:
                return parsed.timestamp() - time.time()
    return None


def _retryable(exc: BaseException | None) -> tuple[bool, float | None]:
    """Whether the API's answer says to retry, and the wait it asks for (if any)."""
    if isinstance(exc, anthropic.APIConnectionError):  # timeouts included
        return True, None
    if not isinstance(exc, anthropic.APIStatusError) or exc.status_code == 200:
        return False, None
    headers = exc.response.headers
    should = headers.get("x-should-retry")
    wanted = (should == "true" if should in ("true", "false")
              else exc.status_code in _RETRY_STATUSES or exc.status_code >= 500)
    return wanted, _retry_after(headers)


def _where(events: Any) -> str:
    """`` in its call of 'name'`` when the block being decoded is a tool call."""
    try:
        block = events.current_message_snapshot.content[-1]
    except (AttributeError, IndexError, TypeError):
        return ""
    return f" in its call of {block.name!r}" if getattr(block, "type", "") == "tool_use" else ""


class ModelClient:
    """The :class:`~agentrt.llm._model.Model` over an ``AsyncAnthropic``; owns the SDK
    client only when it created it.

    ``max_retries`` defaults to the client's own setting; ``max_retry_wait`` bounds
    the ``retry-after`` the runtime obeys.
    """

    def __init__(self, client: anthropic.AsyncAnthropic, *, owned: bool = False,
                 max_retries: int | None = None, max_retry_wait: float = 60.0,
                 key_origin: Callable[[], str] | None = None) -> None:
        """``key_origin()`` says where the API key came from, for a 401's message."""
        self.sdk = client
        self.key_origin = key_origin
        self._owned = owned
        self.max_retries = client.max_retries if max_retries is None else max_retries
        self.max_retry_wait = max_retry_wait
        self._calls = client.with_options(max_retries=0)  # shares the connection pool

    async def aclose(self) -> None:
        if self._owned:
            await self.sdk.close()

    async def turn(self, request: dict[str, Any], *, stream: bool, logger: Any = None
                   ) -> AsyncIterator[TextDelta | ToolUseComplete | ModelReply]:
        """Text deltas as they arrive and tool_use blocks as they complete (streaming
        only), then exactly one ModelReply.

        ``logger``: a bound logger for the events (the loop passes its run's)."""
        log = logger if logger is not None else _log
        started = time.monotonic()
        if log.enabled("debug"):  # (its fields cost more than the call: skipped when off)
            log.debug("llm.request", model=request["model"], messages=len(request["messages"]),
                      tools=len(request.get("tools", ())), stream=stream)
        attempt = 0
        while True:
            reply: ModelReply | None = None
            streamed = False
            try:
                if stream:
                    async for item in self._stream(request):
                        if isinstance(item, ModelReply):
                            reply = item
                        else:
                            streamed = True
                            yield item
                else:
                    reply = await self._create(request)
            except ModelError as exc:
                if streamed:
                    raise
                wait = self._retry_wait(exc, attempt)
                if wait is None:
                    raise
                attempt += 1
                log.warning("llm.retry", attempt=attempt, of=self.max_retries,
                            wait_s=round(wait, 3), status=exc.status_code, error=str(exc)[:200])
                await anyio.sleep(wait)
                continue
            break
        assert reply is not None
        if log.info_enabled():
            log.info("llm.response", model=reply.model, stop_reason=reply.stop_reason,
                     input_tokens=reply.usage.input_tokens,
                     output_tokens=reply.usage.output_tokens,
                     cache_read=reply.usage.cache_read_input_tokens,
                     cache_creation=reply.usage.cache_creation_input_tokens,
                     duration_ms=round((time.monotonic() - started) * 1000, 1))
        yield reply

    def _retry_wait(self, exc: ModelError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None to give up (re-raising ``exc``).

        Raises a ModelError with ``retry_after`` set when the wait asked for is too long."""
        if isinstance(exc, StreamInterruptedError):  # part of an answer came: never twice
            return None
        wanted, asked = _retryable(exc.__cause__)
        if not wanted or attempt >= self.max_retries:
            return None
        if asked is not None and asked > self.max_retry_wait:
            raise ModelError(f"{exc}; the API asks to retry after {asked:g} s, longer than "
                             f"llm_max_retry_wait ({self.max_retry_wait:g} s)",
                             status_code=exc.status_code, error_type=exc.error_type,
                             request_id=exc.request_id, retry_after=asked) from exc.__cause__
        if asked is not None and asked > 0:
            return asked
        return min(_INITIAL_BACKOFF * 2.0 ** attempt, _MAX_BACKOFF) * (1 - 0.25 * random.random())

    def _messages(self, request: dict[str, Any]) -> Any:
        """The SDK's messages resource for ``request``: the beta one when it names betas
        (context editing, compaction), which only the beta types carry."""
        return self._calls.beta.messages if "betas" in request else self._calls.messages

    async def count_tokens(self, request: dict[str, Any]) -> int:
        """The API's count of ``request``'s prompt (``POST /v1/messages/count_tokens``),
        after the context edits it asks for."""
        body = {k: v for k, v in request.items() if k not in ("max_tokens", "stream")}
        try:
            counted = await self._messages(request).count_tokens(**body)
        except (anthropic.APIError, httpx2.HTTPError) as exc:
            raise _translate(exc, self.key_origin) from exc
        return int(counted.input_tokens)

    async def _create(self, request: dict[str, Any]) -> ModelReply:
        try:
            message = await self._messages(request).create(**request)
        except (anthropic.APIError, httpx2.HTTPError) as exc:
            raise _translate(exc, self.key_origin) from exc
        except RecursionError as exc:  # the SDK's JSON parse of a body nested too deep
            raise MalformedReplyError("the model's reply is nested too deep to read") from exc
        return reply_from_message(message)

    async def _stream(self, request: dict[str, Any]
                      ) -> AsyncIterator[TextDelta | ToolUseComplete | ModelReply]:
        stopped = False
        raw_inputs: dict[int, list[str]] = {}
        try:
            async with self._messages(request).stream(**request) as events:
                iterator = aiter(events)
                while True:
                    try:
                        event = await anext(iterator)
                    except StopAsyncIteration:
                        break
                    except anthropic.APIConnectionError as exc:
                        # The body broke off after the answer began. anthropic 2.17 wraps
                        # the transport's error so; earlier versions let httpx2's through.
                        raise StreamInterruptedError(
                            f"the model's stream was cut: {exc}") from exc
                    except (anthropic.APIError, httpx2.HTTPError):
                        raise
                    except Exception as exc:  # the SDK could not decode an event
                        raise MalformedReplyError(
                            f"the model's stream could not be decoded{_where(events)}: "
                            f"{type(exc).__name__}: {exc}") from exc
                    if event.type == "text":
                        yield TextDelta(event.text)
                    elif (event.type == "content_block_delta"
                          and event.delta.type == "input_json_delta"):
                        raw_inputs.setdefault(event.index, []).append(event.delta.partial_json)
                    elif event.type == "content_block_stop":
                        done = completed_tool_use(events.current_message_snapshot.content,
                                                  event.index, raw_inputs)
                        if done is not None:
                            yield done
                    elif event.type == "message_stop":
                        stopped = True
                snapshot = events.current_message_snapshot if stopped else None
        except (anthropic.APIError, httpx2.HTTPError) as exc:
            raise _translate(exc, self.key_origin) from exc
        if snapshot is None:
            raise StreamInterruptedError("the model's stream ended before message_stop")
        yield reply_from_message(snapshot, raw_inputs)
