"""The last stage: run the tool function, bounded in time, errors turned into results."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio

from .._errors import ToolError
from ..log import get_logger
from ._types import CallContext, ToolCall, ToolOutcome

__all__ = ["Execute", "render_result"]

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


class Execute:
    """Terminal handler. A tool's own ``ToolError`` message goes to the model verbatim;
    any other exception is summarised as ``TypeName: message`` and logged with its traceback."""

    def __init__(self, *, timeout: float, max_result_chars: int) -> None:
        self.timeout = timeout
        self.max_result_chars = max_result_chars

    async def __call__(self, call: ToolCall, ctx: CallContext) -> ToolOutcome:
        timeout = call.spec.options.timeout or self.timeout
        kwargs = call.kwargs()
        if call.spec.context_param is not None:
            kwargs[call.spec.context_param] = ctx.run
        method = getattr(call.tool, call.spec.method_name)
        fields = {"tool": call.spec.tool_name, "function": call.name, "call_id": call.id,
                  "thread_id": ctx.run.thread_id}
        started = time.monotonic()
        ctx.stats.executed += 1
        try:
            with anyio.move_on_after(timeout) as scope:
                value = await method(**kwargs)
        except ToolError as exc:
            log.info("tool.error", error=str(exc), **fields)
            return ToolOutcome(_short(str(exc)) or f"{call.name} failed", is_error=True)
        except Exception as exc:
            log.warning("tool.error", error=repr(exc), exc_info=True, **fields)
            return ToolOutcome(_short(f"{call.name} failed: {type(exc).__name__}: {exc}"),
                               is_error=True)
        if scope.cancelled_caught:
            log.warning("tool.timeout", timeout=timeout, **fields)
            return ToolOutcome(f"{call.name} timed out after {timeout:g} s and was cancelled",
                               is_error=True)
        try:
            content = render_result(value, self.max_result_chars)
        except (TypeError, ValueError) as exc:
            log.warning("tool.error", error=f"unserializable result: {exc}", **fields)
            return ToolOutcome(f"{call.name} returned a value that is not JSON "
                               f"({type(value).__name__}); this is a bug in the tool",
                               is_error=True)
        duration = time.monotonic() - started
        log.info("tool.executed", duration_ms=round(duration * 1000, 1), chars=len(content),
                 **fields)
        return ToolOutcome(content)
