"""`agentrt chat`: the REPL through stdin (in process), through pipes with Ctrl-C (a child
process), and on a terminal (a pty), always on the real SDK against the fake server."""

from __future__ import annotations

import io
import json
import os
import pty
import queue
import re
import runpy
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import processes
import pytest

from agentrt.cli import main

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = f"{ROOT / 'examples' / 'inventory_chat.py'}:InventoryAgent"
INVENTORY_REPLAY = ROOT / "examples" / "inventory_chat.py"
RESEARCH = f"{ROOT / 'examples' / 'research_assistant.py'}:ResearchAssistant"
SLOW = f"{ROOT / 'tests' / 'cli_agents.py'}:SlowAgent"

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTRT_SQLITE_PATH", str(tmp_path / "threads.db"))
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def replay(tmp_path: Path, replies: list[dict[str, Any]], name: str = "replay.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"replies": replies}))
    return str(path)


def chat(*argv: str, lines: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["chat", *argv], stdout=out, stdin=io.StringIO(lines))
    return code, out.getvalue()


def test_a_conversation_its_commands_and_a_resume(tmp_path: Path) -> None:
    code, out = chat(INVENTORY, "--replay", str(INVENTORY_REPLAY), lines=(
        "How many blue widgets do we have?\nAnd red ones?\n\n"
        "Sorry, how many blue ones was it again?\n"
        "/tools\n/stats\n/history\n/thread\n/bogus\n/help\n/exit\nnever read\n"))
    assert code == 0
    lines = out.splitlines()
    banner = re.fullmatch(r"agentrt chat · InventoryAgent · thread (thr_\w+) \(new\) · /help for "
                          r"commands, Ctrl-C cancels a turn, /exit leaves", lines[0])
    assert banner is not None
    thread_id = banner[1]
    assert [line for line in lines if line.startswith("  <- ")] == [
        line for line in lines if re.fullmatch(r"  <- check_stock \[(executed|answered by "
                                               r"memo), \d+ ms\]", line)]
    sources = re.findall(r"  <- check_stock \[(executed|answered by memo)", out)
    assert sources == ["executed", "executed", "answered by memo"]
    assert out.count("[end_turn · 2 turns · tool calls 1, ") == 3
    assert "active tools (1): inventory\nfunctions the model can call now (2):\n" in out
    assert re.search(r"\n  check_stock +Units in stock for a SKU\.\n  reserve +Reserve units", out)
    assert (f"thread {thread_id}: 3 turns (0 cancelled)\n"
            "tool calls 3: executed 2, errors 0, answered without running the tool 1 (memo 1)\n"
            ) in out
    assert "process cache: 2 entries" in out
    assert ("[1] user: How many blue widgets do we have?\n[2] assistant\n"
            "      -> check_stock(sku='W-BLUE')\n[3] user (tool results)\n"
            '      <- {"sku": "W-BLUE", "in_stock": 12}\n'
            "[4] assistant: We have 12 blue widgets in stock.\n") in out
    assert f"\n{thread_id}\n" in out
    assert "unknown command /bogus; /help lists the commands\n" in out
    assert "/tools     the tools the model sees" in out

    # a new process resumes the thread: the memo is rebuilt from the SQLite store
    rest = runpy.run_path(str(INVENTORY_REPLAY))["REPLIES"][6:8]
    code, out = chat(INVENTORY, "--thread", thread_id, "--replay", replay(tmp_path, rest),
                     lines="Compare the blue and red stock for me.\n")
    assert code == 0
    assert out.splitlines()[0].startswith(
        f"agentrt chat · InventoryAgent · thread {thread_id} (resumed, 12 messages)")
    assert out.count("[answered by memo, ") == 2 and "executed 0, errors 0 (memo 2)" in out


def test_a_thread_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = chat(INVENTORY, "--thread", "thr_nope", "--replay", str(INVENTORY_REPLAY),
                     lines="hi\n")
    assert code == 1 and out == ""
    assert capsys.readouterr().err == (
        "agentrt: thread 'thr_nope' does not exist in this store\n")


def test_no_key_and_no_replay(capsys: pytest.CaptureFixture[str]) -> None:
    assert chat(INVENTORY, lines="hi\n") == (2, "")
    assert capsys.readouterr().err.startswith("agentrt: no API key: set ANTHROPIC_API_KEY")


def test_a_failed_turn_is_reported_and_the_repl_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = replay(tmp_path, [{"text": "only one reply"}])
    code, out = chat(INVENTORY, "--replay", script, lines="first\nsecond\n/stats\n")
    assert code == 0
    assert "only one reply" in out
    assert ": 1 turn (0 cancelled)" in out  # the REPL went on to /stats
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("agentrt: ")
    assert "script exhausted after 1 replies" in err[0]


def test_tools_of_a_jit_agent_before_and_after_activation() -> None:
    """From another directory (the test's own): the config's paths are its file's."""
    code, out = chat(RESEARCH, "--replay", str(ROOT / "examples" / "research_assistant.py"),
                     lines="/tools\nResearch heat pumps.\n/tools\n")
    assert code == 0
    before, after = out.split("Research heat pumps.")[0], out.split("[end_turn")[1]
    assert ("active tools (2): tool_loader, tool_finder\nfunctions the model can call now (2):\n"
            in out)
    assert re.search(r"deferred until their tool is activated \(6\): [\w, ]+\n", before)
    assert "active tools (5): tool_loader, tool_finder, files, web_search, presentation\n" in after
    assert "functions the model can call now (8):\n" in after
    assert "deferred until" not in after
    assert "       Activated: web_search, files, presentation.\n" in out


class Lines:
    """A child's output, line by line, read on a thread so the test can wait with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, match: Callable[[str], bool] | str, timeout: float = 30) -> str:
        test = match if callable(match) else (lambda line: match in line)
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, f"output ended; it was: {self.seen}"
            self.seen.append(line)
            if test(line):
                return line


def test_ctrl_c_cancels_the_turn_not_the_thread(tmp_path: Path) -> None:
    script = replay(tmp_path, [
        {"tool_calls": [{"name": "slow_lookup", "input": {"topic": "archive", "seconds": 60}}]},
        {"text": "Here is a quicker answer."}])
    # eager tools off: the call then starts once its message is stored, so ctrl-C lands
    # in the tool; with them on it may land while the reply still streams, and then
    # nothing of the turn is stored (tests/test_eager.py covers that case)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "AGENTRT_EAGER_TOOLS": "false"}
    proc = processes.popen([sys.executable, "-m", "agentrt", "chat", SLOW, "--replay", script],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdin is not None and proc.stdout is not None

    def say(text: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(text + "\n")
        proc.stdin.flush()

    try:
        out = Lines(proc.stdout)
        thread_id = re.findall(r"thread (thr_\w+)", out.wait_for("agentrt chat · SlowAgent"))[0]
        say("look up the archive")
        out.wait_for("  -> slow_lookup(topic='archive', seconds=60)")
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out.wait_for("(turn cancelled; the thread keeps everything said so far)")
        assert time.monotonic() - started < 10  # not the tool's 60 s
        say("/history")
        out.wait_for("<- error: The run was cancelled before this call finished")
        say("try again")
        out.wait_for("Here is a quicker answer.")
        out.wait_for("[end_turn · 1 turn ")
        say("/thread")
        out.wait_for(lambda line: line == thread_id)
        proc.send_signal(signal.SIGINT)  # at the prompt: leave
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    shown = io.StringIO()
    assert main(["threads", "show", thread_id, "--json"], stdout=shown) == 0
    messages = json.loads(shown.getvalue())["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "user", "assistant"]
    cancelled = messages[2]["content"][0]
    assert cancelled["is_error"] and "cancelled" in cancelled["content"]
    assert messages[3]["content"] == "try again"


def _read_until(fd: int, marker: bytes, timeout: float = 30) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {data!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            assert chunk, f"output ended before {marker!r}: {data!r}"
            data += chunk
    return data


def test_on_a_terminal_a_prompt_and_a_live_progress_line(tmp_path: Path) -> None:
    script = replay(tmp_path, [
        {"tool_calls": [{"name": "slow_lookup", "input": {"topic": "archive", "seconds": 0.6}}]},
        {"text": "Found it."}])
    master, slave = pty.openpty()
    proc = processes.popen([sys.executable, "-m", "agentrt", "chat", SLOW, "--replay", script],
                           stdin=slave, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    try:
        _read_until(master, b"you> ")
        os.write(master, b"look it up\n")
        turn = _read_until(master, b"you> ")
        label = b"slow_lookup(topic='archive', seconds=0.6)"
        assert b"\r\x1b[2K  | running " + label + b" \xc2\xb7 0.0 s" in turn
        assert re.search(rb"\r\x1b\[2K  [/\-\\] running " + re.escape(label), turn)  # redrawn
        assert re.search(rb"\r\x1b\[2K  <- " + re.escape(label) + rb" \[executed, \d+ ms\]",
                         turn)
        assert b"  -> slow_lookup" not in turn  # on a terminal the progress line replaces it
        assert b"Found it." in turn
        os.write(master, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_on_a_terminal_lines_are_edited_and_recalled(tmp_path: Path) -> None:
    """readline's editing (a cursor move, then an insert) and history (Up, Enter)."""
    master, slave = pty.openpty()
    proc = processes.popen([sys.executable, "-m", "agentrt", "chat", SLOW, "--replay",
                            replay(tmp_path, [{"text": "Hello."}])],
                           stdin=slave, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    try:
        banner = _read_until(master, b"you> ")
        thread_id = re.findall(rb"thread (thr_\w+)", banner)[0]
        os.write(master, b"/thred\x1b[Da\r")  # "/thred", Left, "a": "/thread"
        first = _read_until(master, b"you> ")
        assert first.count(thread_id) == 1, first
        os.write(master, b"\x1b[A\r")  # Up: "/thread" again
        second = _read_until(master, b"you> ")
        assert second.count(thread_id) == 1 and b"unknown command" not in first + second
        os.write(master, b"\x04")  # Ctrl-D: end of input
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
