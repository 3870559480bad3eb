"""RunView: how `agentrt run` and `agentrt chat` show a run, on a terminal and elsewhere."""

from __future__ import annotations

import io

import anyio
import pytest

from agentrt import RunFinished, RunResult, RunStats, TextDelta, ToolCallFinished, Usage
from agentrt import ToolCallStarted as Started
from agentrt._render import RunView, summary


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


RESULT = RunResult(text="ok", thread_id="thr_1", run_id="run_1", stop_reason="end_turn",
                   usage=Usage(input_tokens=10, output_tokens=5),
                   stats=RunStats(3, 1, 1, {"memo": 1}), iterations=2)
EVENTS = [
    TextDelta("Looking"),
    Started("t1", "get_product", {"product_id": 42}),
    Started("t2", "get_product", {"product_id": 42}),
    Started("t3", "initialize_tools", {"tool_names": ["files"]}),
    ToolCallFinished("t1", "get_product", False, "executed", '{"id": 42}', 0.021),
    ToolCallFinished("t2", "get_product", False, "memo", '{"id": 42}', 0.0),
    ToolCallFinished("t3", "initialize_tools", True, "executed",
                     "Not activated: files: tool 'files' is not enabled for this agent.\n", 0.001),
]


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    view = RunView(out)
    assert not view.tty
    assert [view.show(e) for e in EVENTS] == [None] * len(EVENTS)
    assert view.show(RunFinished(RESULT)) is RESULT
    assert out.getvalue() == (
        "Looking\n"
        "  -> get_product(product_id=42)\n"
        "  -> get_product(product_id=42)\n"
        "  -> initialize_tools(tool_names=['files'])\n"
        "  <- get_product [executed, 21 ms]\n"
        "  <- get_product [answered by memo, 0 ms]\n"
        "  <- initialize_tools [error, 1 ms]: Not activated: files: tool 'files' is not "
        "enabled for this agent.\n")


def test_an_activation_report_is_shown_without_the_guides() -> None:
    out = io.StringIO()
    view = RunView(out)
    view.show(Started("t1", "initialize_tools", {"tool_names": ["presentation"]}))
    view.show(ToolCallFinished(
        "t1", "initialize_tools", False, "executed",
        "Activated: presentation.\nDegraded: presentation (its dependency 'files' is not "
        "enabled for this agent); some of its functions may fail.\n\n## presentation\nguide",
        0.002))
    assert out.getvalue().splitlines()[1:] == [
        "  <- initialize_tools [executed, 2 ms]",
        "       Activated: presentation.",
        "       Degraded: presentation (its dependency 'files' is not enabled for this "
        "agent); some of its functions may fail."]


@pytest.mark.anyio
async def test_a_progress_line_on_a_terminal_redrawn_in_place() -> None:
    out = io.StringIO()
    clock = Clock()
    view = RunView(out, tty=True, clock=clock)
    view.show(Started("t1", "slow_lookup", {"topic": "x"}))
    view.show(Started("t2", "get_user", {"user_id": "u-7"}))
    assert out.getvalue() == ("\r\x1b[2K  | running slow_lookup(topic='x') · 0.0 s"
                              "\r\x1b[2K  | running slow_lookup(topic='x'), "
                              "get_user(user_id='u-7') · 0.0 s")
    out.truncate(0)
    out.seek(0)
    clock.now += 1.25
    async with anyio.create_task_group() as tg:  # until it drew a frame, however late
        tg.start_soon(view.animate, 0.01)
        with anyio.fail_after(30):
            while "\r\x1b[2K" not in out.getvalue():
                await anyio.sleep(0.005)
        tg.cancel_scope.cancel()
    frames = out.getvalue().split("\r\x1b[2K")[1:]
    assert len(frames) >= 1
    assert frames[0] == ("  / running slow_lookup(topic='x'), get_user(user_id='u-7') · 1.2 s")
    out.truncate(0)
    out.seek(0)
    view.show(ToolCallFinished("t1", "slow_lookup", False, "executed", "found", 1.25))
    # the progress line is cleared, the result takes its place, the rest keeps running
    assert out.getvalue() == ("\r\x1b[2K  <- slow_lookup(topic='x') [executed, 1250 ms]\n"
                              "\r\x1b[2K  " + frames[-1][2] + " running get_user(user_id='u-7')"
                              " · 1.2 s")
    out.truncate(0)
    out.seek(0)
    view.show(ToolCallFinished("t2", "get_user", False, "local_cache", "{}", 0.0))
    view.show(RunFinished(RESULT))
    assert out.getvalue() == ("\r\x1b[2K  <- get_user(user_id='u-7') [answered by local_cache, "
                              "0 ms]\n")


@pytest.mark.anyio
async def test_animate_returns_at_once_off_a_terminal() -> None:
    with anyio.fail_after(1):
        await RunView(io.StringIO()).animate()


def test_summary() -> None:
    assert summary(RESULT) == (
        "[end_turn · 2 turns · tool calls 3, executed 1, errors 1 (memo 1) · tokens in 10, "
        "out 5, cache read 0, cache write 0 · thread thr_1]")
    assert summary(RESULT, thread=False).endswith("cache write 0]")
