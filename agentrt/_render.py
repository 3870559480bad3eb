"""How the CLI shows a run while it happens: streamed text, a line per tool call, a summary.

On a terminal, the tool calls of a message that are still running share one progress
line (a spinner, the calls, the seconds so far) redrawn in place, because the
results only arrive once the whole message's calls are done and a silent pause
reads as a hang. Anywhere else (a pipe, a file, a test) every line is written once,
plain, so a script or a log reads it line by line.

Each finished call says which pipeline stage answered it (``executed`` when the
tool really ran), which is the point of agentrt; an ``initialize_tools`` result
also shows its activation report (what loaded, what was degraded or refused).
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from ._events import ApprovalRequired, RunFinished, TextDelta, ToolCallFinished, ToolCallStarted
from .jit import INITIALIZE_TOOLS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence

    from ._approvals import PendingCall
    from ._events import RunEvent
    from ._result import RunResult

__all__ = ["RunView", "animated", "call_label", "hits_text", "is_tty", "plural", "summary"]

_SPINNER = "|/-\\"
_CLEAR_LINE = "\r\x1b[2K"


def is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream is no terminal
        return False


def call_label(name: str, arguments: Mapping[str, Any], width: int = 80) -> str:
    text = f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
    return text if len(text) <= width else text[: width - 4] + "...)"


def hits_text(hits: Mapping[str, int]) -> str:
    """``memo 3, turn 1``: calls answered without running the tool, by stage."""
    return ", ".join(f"{k} {v}" for k, v in sorted(hits.items())) or "none"


def plural(count: int, noun: str) -> str:
    """``1 turn``, ``2 turns``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary(result: RunResult, *, thread: bool = True) -> str:
    stats, usage = result.stats, result.usage
    text = (f"[{result.stop_reason} · {plural(result.iterations, 'turn')} · tool calls "
            f"{stats.tool_calls}, executed {stats.executed}, errors {stats.errors} "
            f"({hits_text(stats.hits)}) · tokens in {usage.input_tokens}, out "
            f"{usage.output_tokens}, cache read "
            f"{usage.cache_read_input_tokens}, cache write {usage.cache_creation_input_tokens}")
    return text + (f" · thread {result.thread_id}]" if thread else "]")


def _report(content: str) -> list[str]:
    """The status lines of an activation report (the guides after them are for the model)."""
    head = content.split("\n\n", 1)[0]
    return [line for line in head.splitlines() if line.strip()]


def pending_lines(pending: Sequence[PendingCall]) -> list[str]:
    """Calls waiting for approval, one line each (id, the call, why)."""
    return [f"  ?? {call_label(p.name, p.input)} waits for approval ({p.reason}) · id {p.id}"
            for p in pending]


class RunView:
    """Writes one run's events to ``out``; ``show`` returns the result at ``RunFinished``.

    Run :meth:`animate` in a task beside the event loop to get the progress line on a
    terminal; it returns at once when ``out`` is not one.
    """

    def __init__(self, out: TextIO, *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.tty = is_tty(out) if tty is None else tty
        self._clock = clock
        self._at_line_start = True
        self._running: dict[str, str] = {}  # call id -> label, in call order
        self._started = 0.0
        self._frame = 0
        self._progress_shown = False

    def show(self, event: RunEvent) -> RunResult | None:
        if isinstance(event, RunFinished):
            self._clear_progress()
            return event.result
        if isinstance(event, TextDelta):
            self._clear_progress()
            self.out.write(event.text)
            self.out.flush()
            self._at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolCallStarted):
            label = call_label(event.name, event.input)
            if not self._running:
                self._started = self._clock()
            self._running[event.id] = label
            if self.tty:
                self._draw_progress()
            else:
                self.line(f"  -> {label}")
        elif isinstance(event, ApprovalRequired):
            for call in event.pending:
                self._running.pop(call.id, None)
            self._clear_progress()
            for line in pending_lines(event.pending):
                self.line(line)
        elif isinstance(event, ToolCallFinished):
            label = self._running.pop(event.id, event.name)
            self._clear_progress()
            self.line(self._finished(event, label if self.tty else event.name))
            if event.name == INITIALIZE_TOOLS and not event.is_error:
                for status in _report(event.content):
                    self.line(f"       {status}")
            if self.tty and self._running:
                self._draw_progress()
        return None

    def end_line(self) -> None:
        """Leave ``out`` at the start of a clean line (before writing elsewhere)."""
        self._clear_progress()
        if not self._at_line_start:
            self.out.write("\n")
            self.out.flush()
            self._at_line_start = True

    def line(self, text: str) -> None:
        """A whole line of its own, after any text the model left unterminated."""
        self._clear_progress()
        self.out.write(("" if self._at_line_start else "\n") + text + "\n")
        self.out.flush()
        self._at_line_start = True

    @staticmethod
    def _finished(event: ToolCallFinished, label: str) -> str:
        took = f"{event.duration * 1000:.0f} ms"
        if event.is_error:
            first = event.content.strip().splitlines()[0] if event.content.strip() else ""
            return f"  <- {label} [error, {took}]: {first[:160]}"
        if event.source == "executed":
            return f"  <- {label} [executed, {took}]"
        return f"  <- {label} [answered by {event.source}, {took}]"

    async def animate(self, interval: float = 0.1) -> None:
        if not self.tty:
            return
        while True:
            await anyio.sleep(interval)
            if self._running:
                self._frame += 1
                self._draw_progress()

    def _draw_progress(self) -> None:
        if not self._at_line_start:
            self.out.write("\n")
            self._at_line_start = True
        spin = _SPINNER[self._frame % len(_SPINNER)]
        labels = list(self._running.values())
        shown = ", ".join(labels[:3]) + (f" (+{len(labels) - 3} more)" if len(labels) > 3 else "")
        seconds = self._clock() - self._started
        self.out.write(f"{_CLEAR_LINE}  {spin} running {shown} · {seconds:.1f} s")
        self.out.flush()
        self._progress_shown = True

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.out.write(_CLEAR_LINE)
            self.out.flush()
            self._progress_shown = False


@asynccontextmanager
async def animated(view: RunView) -> AsyncIterator[None]:
    """Keeps ``view``'s progress line moving while the block runs.

    A failure of the block comes out as itself, not wrapped in the ExceptionGroup
    of the task group the animation needs, so callers catch it by its type.
    """
    failure: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(view.animate)
        try:
            yield
        except Exception as exc:
            failure = exc
        tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
