"""The last stage: run the tool function, bounded in time, errors turned into results."""

from __future__ import annotations

import json
import time
import traceback
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

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
_MAX_TRACE_LINE = 1_000
_MAX_TRACE_CHARS = 20_000
# Made once: ``json.dumps`` with options builds a new encoder at every call.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def render_result(value: Any, max_chars: int) -> str:
    """A tool's return value as the text the model reads; long text is cut with a notice.

    Raises TypeError for values JSON cannot carry: results must be JSON so that
    every cache layer (Redis included) can store them without pickling.
    """
    text = value if isinstance(value, str) else _encode(value)
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


def bounded_traceback(exc: BaseException) -> str:
    """The traceback as text, each line and the whole bounded: an exception carrying a
    20 MB message must not become a 20 MB log line."""
    try:
        lines = traceback.format_exception(exc)
    except Exception:  # a __str__ that raises, say
        lines = traceback.format_exception_only(type(exc), None)
    text = "".join(line if len(line) <= _MAX_TRACE_LINE else
                   f"{line[:_MAX_TRACE_LINE]}... [{len(line):,} characters]\n" for line in lines)
    return text if len(text) <= _MAX_TRACE_CHARS else f"...{text[-_MAX_TRACE_CHARS:]}"


_NO_VALUE = object()


async def invoke(fn: Callable[[], Awaitable[Any]], *, name: str, timeout: float,
                 fields: dict[str, Any]) -> tuple[Any, ToolOutcome | None]:
    """Awaits a tool coroutine under a timeout: its value, or an error outcome.

    A tool's own ``ToolError`` message goes to the model verbatim; any other
    exception is summarised as ``TypeName: message`` and logged with its traceback
    (bounded); a timeout is transient (never cached). A cancellation the tool raised
    itself (or caught from something it awaited) is an error of the tool's: only a
    cancellation of the run itself ends the run.
    """
    try:
        with anyio.move_on_after(timeout) as scope:
            return await fn(), None
    except ToolError as exc:
        log.info("tool.error", error=_short(_text_of(exc)), **fields)
        return _NO_VALUE, ToolOutcome(_short(_text_of(exc)) or f"{name} failed", is_error=True,
                                      error_type=type(exc).__qualname__)
    except anyio.get_cancelled_exc_class() as exc:  # looked up only when one is raised
        await anyio.lowlevel.checkpoint_if_cancelled()  # the run's own: it goes on up
        return _NO_VALUE, _failed(name, exc, fields)
    except Exception as exc:
        return _NO_VALUE, _failed(name, exc, fields)
    assert scope.cancelled_caught
    log.warning("tool.timeout", timeout=timeout, **fields)
    return _NO_VALUE, ToolOutcome(f"{name} timed out after {timeout:g} s and was cancelled",
                                  is_error=True, transient=True, error_type="TimeoutError")


def _failed(name: str, exc: BaseException, fields: dict[str, Any]) -> ToolOutcome:
    message = _short(f"{name} failed: {type(exc).__name__}: {_text_of(exc)}")
    log.warning("tool.error", error=message, traceback=bounded_traceback(exc), **fields)
    return ToolOutcome(message, is_error=True, error_type=type(exc).__qualname__)


def _content_outcome(content: ToolContent, max_chars: int) -> ToolOutcome:
    """Blocks as the tool gave them, within ``max_chars`` in all: text blocks are cut to
    what is left, and any other block with content (an image, a document) counts its
    whole size (its JSON) and is left out, with a notice, when it does not fit."""
    budget = max_chars
    blocks: list[dict[str, Any]] = []
    for block in content.blocks:
        if block["type"] == "text":
            text = str(block.get("text", ""))
            blocks.append({**block, "text": render_result(text, budget)})
            budget = max(0, budget - len(text))
            continue
        if block["type"] == "tool_reference":  # a name, not content: the model reads none
            blocks.append(block)
            continue
        size = len(json.dumps(block, ensure_ascii=False))
        if size <= budget:
            blocks.append(block)
            budget -= size
        else:
            blocks.append({"type": "text", "text": f"[agentrt: a {block['type']} block of "
                           f"{size:,} characters was left out: the result may be at most "
                           f"{max_chars:,} characters]"})
    kept = ToolContent(*blocks)
    return ToolOutcome(kept.text, blocks=kept.blocks)


def to_outcome(name: str, value: Any, max_chars: int, fields: dict[str, Any]) -> ToolOutcome:
    if isinstance(value, ToolContent):
        return _content_outcome(value, max_chars)
    try:
        return ToolOutcome(render_result(value, max_chars))
    except (TypeError, ValueError, RecursionError) as exc:
        reason = ("nested too deep to encode" if isinstance(exc, RecursionError)
                  else f"not JSON ({type(value).__name__})")
        log.warning("tool.error", error=f"unserializable result: {reason}", **fields)
        return ToolOutcome(f"{name} returned a value that is {reason}; this is a bug in the "
                           "tool", is_error=True)


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
        if ctx.log.info_enabled():
            ctx.log.info("tool.executed",
                         duration_ms=round((time.monotonic() - started) * 1000, 1),
                         chars=len(outcome.content), **fields)
        return outcome
