"""Logging fits the host program (issue 16, point 1, the library's side).

Failed before: without ``configure_logging`` the library wrote structlog's defaults to
stdout at debug level, a log call into a closed pipe crashed the run with
BrokenPipeError, and the fields of an event were lost to any other formatter.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest
from processes import popen, run

from agentrt import Agent, Runtime, Tool, configure_logging, function, load_settings
from agentrt.testing import Reply, ScriptedModel, ToolUse

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.anyio


class Clock(Tool):
    @function(read_only=True, ttl=5, public=True)
    async def now(self) -> str:
        """The time."""
        return "12:00"


class ClockAgent(Agent):
    model = "claude-test"
    tools = (Clock,)


STEPS = [Reply(tool_calls=[ToolUse("now", {})]), Reply(text="It is noon.")]

# A script that runs the agent above (at info level, every event it has) with what the
# host sets up; it prints its own answer and nothing else of its own.
SCRIPT = textwrap.dedent("""
    import sys, anyio
    from agentrt import Agent, Runtime, Tool, configure_logging, function, load_settings
    from agentrt.testing import Reply, ScriptedModel, ToolUse

    class Clock(Tool):
        @function(read_only=True, ttl=5, public=True)
        async def now(self) -> str:
            "The time."
            return "12:00"

    class ClockAgent(Agent):
        model = "claude-test"
        tools = (Clock,)

    async def main(runs):
        model = ScriptedModel([step for _ in range(runs) for step in (
            Reply(tool_calls=[ToolUse("now", {})]), Reply(text="It is noon."))])
        async with Runtime(load_settings(thread_store="memory", stream=False),
                           model=model) as runtime:
            for _ in range(runs):
                result = await ClockAgent(runtime).run("What time is it?")
        sys.stderr.write(f"answer: {result.text}\\n")

    if sys.argv[1] == "stdout":  # the host sends agentrt's events to stdout
        configure_logging(level="debug", stream=sys.stdout)
    anyio.run(main, int(sys.argv[2]))
""")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "clock.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """What reaches the stdlib ``agentrt`` logger, as a host's handler sees it."""
    found: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record)

    logger = logging.getLogger("agentrt")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def run_clock() -> str:
    async with Runtime(load_settings(thread_store="memory", stream=False),
                       model=ScriptedModel(list(STEPS))) as runtime:
        result = await ClockAgent(runtime).run("What time is it?")
    return result.text


@pytest.mark.integration
def test_nothing_is_printed_by_default(script: Path) -> None:
    done = run([sys.executable, str(script), "default", "1"], capture_output=True, text=True,
               timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == "answer: It is noon.\n"  # the script's own line, nothing of ours


async def test_events_go_to_the_stdlib_agentrt_loggers_with_their_fields(
        records: list[logging.LogRecord]) -> None:
    assert await run_clock() == "It is noon."
    started = next(r for r in records if getattr(r, "agentrt_event", None) == "run.started")
    assert started.name.startswith("agentrt.")
    assert started.levelno == logging.INFO
    fields: dict[str, Any] = started.agentrt_fields  # type: ignore[attr-defined]
    assert fields["thread_id"].startswith("thr_") and fields["agent"] == "ClockAgent"
    assert started.getMessage().startswith("run.started ")  # any formatter reads it


async def test_a_failing_handler_never_fails_a_run(records: list[logging.LogRecord]) -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("the host's handler is broken")

        def handleError(self, record: logging.LogRecord) -> None:
            raise RuntimeError("and so is its error handling")

    logger = logging.getLogger("agentrt")
    broken = Broken()
    logger.addHandler(broken)
    try:
        assert await run_clock() == "It is noon."
    finally:
        logger.removeHandler(broken)
    assert records  # the other handlers still got every event


async def test_a_closed_stream_never_fails_a_run() -> None:
    stream = io.StringIO()
    configure_logging(level="debug", stream=stream)
    stream.close()  # the host closed it since
    assert await run_clock() == "It is noon."


async def test_json_lines_keep_every_field() -> None:
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    assert await run_clock() == "It is noon."
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    executed = next(line for line in lines if line["event"] == "tool.executed")
    assert executed["level"] == "info" and executed["logger"].startswith("agentrt.")
    assert executed["function"] == "now" and executed["thread_id"].startswith("thr_")
    assert isinstance(executed["duration_ms"], int | float)


@pytest.mark.integration
def test_a_closed_pipe_on_the_hosts_stdout_ends_nothing(script: Path) -> None:
    """``python script.py | head -1``: the reader goes away after one line."""
    child = popen([sys.executable, str(script), "stdout", "200"], stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline()  # the first event line
    child.stdout.close()  # as head does
    err = child.stderr.read()
    assert child.wait(timeout=120) == 0, err
    assert err.endswith("answer: It is noon.\n") and "Traceback" not in err, err
