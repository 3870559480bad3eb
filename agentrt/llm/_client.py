"""One model turn over the real ``anthropic`` SDK, streamed or not, with errors translated.

The SDK does the retrying (429/529/5xx, connection errors) under its own policy;
what still fails after that becomes a :class:`ModelError`, and a stream that ends
before ``message_stop`` a :class:`StreamInterruptedError`, so the loop never
stores half a reply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2

from .._errors import ModelError, StreamInterruptedError
from .._events import TextDelta
from ..log import get_logger
from ._usage import Usage

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["ModelClient", "ModelReply"]

log = get_logger("agentrt.llm")


@dataclass(frozen=True, slots=True)
class ModelReply:
    id: str
    content: list[dict[str, Any]]
    stop_reason: str
    usage: Usage
    model: str


def _reply_from(message: anthropic.types.Message) -> ModelReply:
    return ModelReply(
        id=message.id,
        content=[block.model_dump(mode="json", exclude_none=True) for block in message.content],
        stop_reason=message.stop_reason or "end_turn",
        usage=Usage.from_api(message.usage),
        model=message.model,
    )


def _translate(exc: Exception) -> ModelError:
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        error_type = error.get("type") if isinstance(error, dict) else None
        status = exc.status_code
        if status == 200:  # an `event: error` inside a 200 stream
            return StreamInterruptedError(
                f"the model's stream failed mid-way: {error_type or 'error'}: {exc.message}",
                status_code=status, error_type=error_type, request_id=exc.request_id,
            )
        return ModelError(
            f"Messages API error {status} ({error_type or 'unknown'}): {exc.message}",
            status_code=status, error_type=error_type, request_id=exc.request_id,
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ModelError(f"cannot reach the Messages API: {exc}")
    return StreamInterruptedError(f"the model's stream was cut: {type(exc).__name__}: {exc}")


class ModelClient:
    """Wraps an ``AsyncAnthropic``; owns it only when it created it."""

    def __init__(self, client: anthropic.AsyncAnthropic, *, owned: bool = False) -> None:
        self.sdk = client
        self._owned = owned

    async def aclose(self) -> None:
        if self._owned:
            await self.sdk.close()

    async def turn(self, request: dict[str, Any], *, stream: bool) -> AsyncIterator[
        TextDelta | ModelReply
    ]:
        """Text deltas as they arrive (streaming only), then exactly one ModelReply."""
        started = time.monotonic()
        log.debug("llm.request", model=request["model"], messages=len(request["messages"]),
                  tools=len(request.get("tools", ())), stream=stream)
        if stream:
            reply = None
            async for item in self._stream(request):
                if isinstance(item, ModelReply):
                    reply = item
                else:
                    yield item
            assert reply is not None
        else:
            try:
                message = await self.sdk.messages.create(**request)
            except (anthropic.APIError, httpx2.HTTPError) as exc:
                raise _translate(exc) from exc
            reply = _reply_from(message)
        log.info("llm.response", model=reply.model, stop_reason=reply.stop_reason,
                 input_tokens=reply.usage.input_tokens, output_tokens=reply.usage.output_tokens,
                 cache_read=reply.usage.cache_read_input_tokens,
                 cache_creation=reply.usage.cache_creation_input_tokens,
                 duration_ms=round((time.monotonic() - started) * 1000, 1))
        yield reply

    async def _stream(self, request: dict[str, Any]) -> AsyncIterator[TextDelta | ModelReply]:
        stopped = False
        try:
            async with self.sdk.messages.stream(**request) as events:
                async for event in events:
                    if event.type == "text":
                        yield TextDelta(event.text)
                    elif event.type == "message_stop":
                        stopped = True
                snapshot = events.current_message_snapshot if stopped else None
        except (anthropic.APIError, httpx2.HTTPError) as exc:
            raise _translate(exc) from exc
        if snapshot is None:
            raise StreamInterruptedError("the model's stream ended before message_stop")
        yield _reply_from(snapshot)
