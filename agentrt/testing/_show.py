"""``show_run``: a run as the examples print it, for people reading along.

The model's text as it streams, one line per tool call, and for each finished call
the pipeline stage that answered it (``ran the tool`` when it really ran), which is
what the examples set out to show; a stats line at the end.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from .._events import RunFinished, TextDelta, ToolCallFinished, ToolCallStarted

if TYPE_CHECKING:
    from .._result import RunResult
    from ..agent import Agent

__all__ = ["show_run"]

# What each pipeline stage's name means, for people reading the run.
_ANSWERED_BY = {
    "executed": "ran the tool",
    "turn_dedup": "from turn_dedup (the same call earlier in this message)",
    "memo": "from memo (the same call earlier in this thread)",
    "local_cache": "from local_cache (this process's cache)",
    "shared_cache": "from shared_cache (the Redis cache: another process's result)",
    "single_flight": "from single_flight (joined the same call running in this process)",
    "shared_flight": "from shared_flight (joined the same call running in another process)",
    "batch": "from batch (one upstream request for the batch)",
}


def _first_line(text: str, width: int = 150) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


async def show_run(agent: Agent, task: str, *, thread_id: str | None = None,
                   quiet: bool = False, out: TextIO | None = None) -> RunResult:
    """Runs ``task`` on ``agent``, writing (to ``out``, stdout by default; nothing when
    ``quiet``) the model's text and a line per tool call as they come, each finished call
    with the stage that answered it; returns the result."""
    stream = out or sys.stdout
    at_line_start = True

    def write(text: str) -> None:
        if not quiet:
            stream.write(text)
            stream.flush()

    def line(text: str) -> None:
        nonlocal at_line_start
        write(("" if at_line_start else "\n") + text + "\n")
        at_line_start = True

    write(f"you> {task}\n")
    async for event in agent.stream(task, thread_id=thread_id):
        if isinstance(event, TextDelta):
            write(event.text)
            at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolCallStarted):
            args = ", ".join(f"{k}={v!r}" for k, v in event.input.items())
            line(f"  -> {event.name}({args})")
        elif isinstance(event, ToolCallFinished):
            if event.is_error:
                line(f"  <- {event.name}: error: {_first_line(event.content)}")
            elif event.name == "initialize_tools":  # the activation report, not the guides
                status = event.content.split("\n\n", 1)[0].strip().replace("\n", "\n       ")
                line(f"  <- {event.name}: {status}")
            else:
                line(f"  <- {event.name}: {_ANSWERED_BY.get(event.source, event.source)}")
        elif isinstance(event, RunFinished):
            stats = event.result.stats
            hits = ", ".join(f"{k} {v}" for k, v in sorted(stats.hits.items())) or "none"
            line(f"   [tool calls {stats.tool_calls}, executed {stats.executed}, "
                 f"errors {stats.errors}, answered by the pipeline: {hits}]")
            return event.result
    raise RuntimeError("the run ended without a result")
