"""inventory_chat: the memo across turns, and across a restart through the SQLite store."""

from __future__ import annotations

import io
import json
import re
from typing import TYPE_CHECKING

import pytest

from agentrt.cli import main

from .support import offline_env, run_example, stats_lines

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_two_processes_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "inventory.db"
    out = run_example("inventory_chat", "--db", str(db), env=offline_env(tmp_path)).stdout
    first, second = out.split("== process 2 (pid ")
    pids = re.findall(r"== process \d \(pid (\d+)\)", out)
    assert len(pids) == 2 and pids[0] != pids[1]  # really two OS processes
    assert stats_lines(first) == [
        {"tool_calls": 1, "executed": 1, "errors": 0, "hits": {}},
        {"tool_calls": 1, "executed": 1, "errors": 0, "hits": {}},
        {"tool_calls": 1, "executed": 0, "errors": 0, "hits": {"memo": 1}},  # blue again
    ]
    assert "resumed thread" in second and "(12 messages stored" in second
    assert stats_lines(second) == [
        # the memo, rebuilt from the stored thread by a process that never ran the tool
        {"tool_calls": 2, "executed": 0, "errors": 0, "hits": {"memo": 2}},
        # reserve invalidates "stock": the check after it runs the tool again
        {"tool_calls": 2, "executed": 2, "errors": 0, "hits": {}},
    ]
    assert first.rstrip().endswith("2 upstream calls: GET /stock/W-BLUE, GET /stock/W-RED")
    assert second.rstrip().endswith(
        "2 upstream calls: POST /reservations W-BLUE x2, GET /stock/W-BLUE")
    assert "10 are left" in second

    # the thread is in the file the user named, readable with the CLI
    thread_id = re.search(r"new thread (thr_\w+)", out)
    assert thread_id is not None
    monkeypatch.setenv("AGENTRT_SQLITE_PATH", str(db))
    monkeypatch.chdir(tmp_path)
    shown = io.StringIO()
    assert main(["threads", "show", thread_id[1], "--json"], stdout=shown) == 0
    messages = json.loads(shown.getvalue())["messages"]
    assert len(messages) == 12 + 4 + 6
    assert [m["content"] for m in messages if m["role"] == "user"
            and isinstance(m["content"], str)] == [
        "How many blue widgets do we have?", "And red ones?",
        "Sorry, how many blue ones was it again?", "Compare the blue and red stock for me.",
        "Reserve 2 blue widgets for order 881, then confirm what is left."]


def test_resuming_a_thread_that_is_not_there_fails_clearly(tmp_path: Path) -> None:
    proc = run_example("inventory_chat", "--part", "2", "--thread", "thr_missing", "--db",
                       str(tmp_path / "x.db"), env=offline_env(tmp_path), expect=1)
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "inventory_chat: nothing to resume: no thread thr_missing in ")
