"""The last stage: run the tool function, bounded in time, errors turned into results."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import ToolError
from ..log import get_logger
from ..tools._content import ToolContent
from ._types import ToolOutcome

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._types import CallContext, ToolCall

__all__ = ["Execute", "invoke", "render_result", "to_outcome"]

log = get_logger("agentrt.tool")

_MAX_ERROR_CHARS = 500


def render_result(value: Any, max_chars: int) -> str:
    """A tool's return value as the text the model reads; long text is cut with a notice.

    Raises TypeError for values JSON cannot carry: results must be JSON so that
    every cache layer (Redis included) can store them without pickling.
    """
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > max_chars:
        text = (f"{text[:max_chars]}\n[agentrt: result truncated from {len(text):,} "
                f"to {max_chars:,} characters]")
    return text


def _short(message: str) -> str:
    return message if len(message) <= _MAX_ERROR_CHARS else message[:_MAX_ERROR_CHARS] + "..."


def _text_of(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` itself fails."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__}: its message cannot be read>"


_NO_VALUE = object()


async def invoke(fn: Callable[[], Awaitable[Any]], *, name: str, timeout: float,
                 fields: dict[str, Any]) -> tuple[Any, ToolOutcome | None]:
    """Awaits a tool coroutine under a timeout: its value, or an error outcome.

    A tool's own ``ToolError`` message goes to the model verbatim; any other
    exception is summarised as ``TypeName: message`` and logged with its traceback;
    a timeout is transient (never cached).
    """
    try:
        with anyio.move_on_after(timeout) as scope:
            return await fn(), None
    except ToolError as exc:
        log.info("tool.error", error=_short(_text_of(exc)), **fields)
        return _NO_VALUE, ToolOutcome(_short(_text_of(exc)) or f"{name} failed", is_error=True)
    except Exception as exc:
        message = _short(f"{name} failed: {type(exc).__name__}: {_text_of(exc)}")
        log.warning("tool.error", error=message, exc_info=True, **fields)
        return _NO_VALUE, ToolOutcome(message, is_error=True)
    assert scope.cancelled_caught
    log.warning("tool.timeout", timeout=timeout, **fields)
    return _NO_VALUE, ToolOutcome(f"{name} timed out after {timeout:g} s and was cancelled",
                                  is_error=True, transient=True)


def _content_outcome(content: ToolContent, max_chars: int) -> ToolOutcome:
    """Blocks as the tool gave them, their text blocks cut to ``max_chars`` in all."""
    budget = max_chars
    blocks = []
    for block in content.blocks:
        if block["type"] == "text":
            text = str(block.get("text", ""))
            block = {**block, "text": render_result(text, budget)}
            budget = max(0, budget - len(text))
        blocks.append(block)
    kept = ToolContent(*blocks)
    return ToolOutcome(kept.text, blocks=kept.blocks)


def to_outcome(name: str, value: Any, max_chars: int, fields: dict[str, Any]) -> ToolOutcome:
    if isinstance(value, ToolContent):
        return _content_outcome(value, max_chars)
    try:
        return ToolOutcome(render_result(value, max_chars))
    except (TypeError, ValueError) as exc:
        log.warning("tool.error", error=f"unserializable result: {exc}", **fields)
        return ToolOutcome(f"{name} returned a value that is not JSON "
                           f"({type(value).__name__}); this is a bug in the tool", is_error=True)


class Execute:
    """Run the tool function (timeout; an exception becomes an is_error result).

    The terminal handler: one real call of the tool function."""

    name = "execute"

    def __init__(self, *, timeout: float, max_result_chars: int) -> None:
        self.timeout = timeout
        self.max_result_chars = max_result_chars

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        timeout = call.options.timeout or self.timeout
        kwargs = call.kwargs()
        if call.spec.context_param is not None:
            kwargs[call.spec.context_param] = ctx.run
        method = getattr(call.tool, call.spec.method_name)
        fields = {"tool": call.spec.tool_name, "function": call.name, "call_id": call.id,
                  "thread_id": ctx.run.thread_id}
        started = time.monotonic()
        ctx.stats.executed += 1
        value, failed = await invoke(lambda: method(**kwargs), name=call.name, timeout=timeout,
                                     fields=fields)
        if failed is not None:
            return failed
        outcome = to_outcome(call.name, value, self.max_result_chars, fields)
        ctx.log.info("tool.executed", duration_ms=round((time.monotonic() - started) * 1000, 1),
                 chars=len(outcome.content), **fields)
        return outcome
