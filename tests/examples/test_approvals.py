"""Approvals through every surface (issue 19, point 4): examples/approvals.py offline, the
CLI (`run` exits 3 listing the pending calls, `threads show`, `resume`, `chat` asking y/n).
The service's endpoints are tested over real HTTP in test_service.py."""

from __future__ import annotations

import io
import json
import runpy
from typing import TYPE_CHECKING, Any

import pytest

from agentrt.cli import EXIT_APPROVAL, main

from .support import EXAMPLES, offline_env, run_example

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

TARGET = f"{EXAMPLES / 'approvals.py'}:SupportAgent"
CALLS = runpy.run_path(str(EXAMPLES / "approvals.py"))["REPLIES"][0]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTRT_SQLITE_PATH", str(tmp_path / "threads.db"))
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def replay(tmp_path: Path, name: str, *replies: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"replies": list(replies)}))
    return str(path)


def test_the_example_approves_then_denies(tmp_path: Path) -> None:
    approved = run_example("approvals", env=offline_env(tmp_path)).stdout
    assert "stop_reason: approval_required" in approved
    assert "waiting: refund({'order_id': 'A-1', 'amount': 120.0}) because refunds move money" \
        in approved
    assert "<- refund: refunded $120.00 on A-1" in approved
    assert "refunds run in this process: [('A-1', 120.0)]" in approved
    denied = run_example("approvals", "--deny", env=offline_env(tmp_path)).stdout
    assert "Reason: needs a photo of the damage" in denied
    assert "refunds run in this process: []" in denied


def test_run_exits_3_with_the_pending_calls_and_resume_continues(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    first = replay(tmp_path, "first.json", CALLS)
    assert main(["run", TARGET, "Refund A-1 and B-2", "--replay", first, "--json"],
                stdout=out) == EXIT_APPROVAL == 3
    result = json.loads(out.getvalue())
    assert result["stop_reason"] == "approval_required"
    [pending] = result["pending"]
    assert pending["id"] == "toolu_refund_a1" and pending["reason"] == "refunds move money"
    thread = result["thread_id"]

    out = io.StringIO()
    assert main(["threads", "show", thread], stdout=out) == 0
    assert "waiting for approval (1)" in out.getvalue()
    assert "?? refund(order_id='A-1', amount=120.0) waits for approval (refunds move money) " \
           "· id toolu_refund_a1" in out.getvalue()
    out = io.StringIO()
    assert main(["threads", "show", thread, "--json"], stdout=out) == 0
    assert [p["id"] for p in json.loads(out.getvalue())["pending"]] == ["toolu_refund_a1"]

    then = replay(tmp_path, "then.json", {"text": "Both refunded."})
    out = io.StringIO()
    assert main(["resume", TARGET, thread, "--approve", "toolu_refund_a1", "--replay", then],
                stdout=out) == 0
    assert "<- refund [executed" in out.getvalue() and "Both refunded." in out.getvalue()
    out = io.StringIO()
    assert main(["threads", "show", thread], stdout=out) == 0
    assert "waiting for approval" not in out.getvalue()

    capsys.readouterr()
    assert main(["resume", TARGET, thread, "--approve", "toolu_refund_a1", "--replay",
                 then]) == 1
    assert "already approved" in capsys.readouterr().err


def test_run_without_json_says_how_to_resume_and_deny_takes_a_reason(tmp_path: Path) -> None:
    out = io.StringIO()
    first = replay(tmp_path, "first.json", CALLS)
    assert main(["run", TARGET, "Refund", "--replay", first], stdout=out) == 3
    text = out.getvalue()
    assert "[approval_required · " in text
    assert "?? refund(order_id='A-1', amount=120.0) waits for approval" in text
    thread = text.split("agentrt resume ")[1].split()[1]
    then = replay(tmp_path, "then.json", {"text": "Not refunded."})
    out = io.StringIO()
    assert main(["resume", TARGET, thread, "--deny", "toolu_refund_a1:no photo", "--json",
                 "--replay", then], stdout=out) == 0
    assert json.loads(out.getvalue())["stop_reason"] == "end_turn"


def test_chat_asks_yes_or_no_and_resumes(tmp_path: Path) -> None:
    script = replay(tmp_path, "chat.json", CALLS, {"text": "Refunded both."})
    out = io.StringIO()
    code = main(["chat", TARGET, "--replay", script],
                stdout=out, stdin=io.StringIO("Refund A-1 and B-2\ny\n/exit\n"))
    assert code == 0
    text = out.getvalue()
    assert ('approve refund {"order_id": "A-1", "amount": 120.0}? (refunds move money) [y/N] '
            in text)
    assert "[approval_required · " in text and "[end_turn · " in text
    assert "Refunded both." in text


def test_run_on_a_paused_thread_decides_first_or_denies(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["run", TARGET, "Refund", "--replay", replay(tmp_path, "a.json", CALLS),
                 "--json"], stdout=out) == 3
    thread = json.loads(out.getvalue())["thread_id"]
    out = io.StringIO()
    then = replay(tmp_path, "b.json", {"text": "Refunded; and hello."})
    assert main(["run", TARGET, "yes, and hello", "--thread", thread, "--approve",
                 "toolu_refund_a1", "--replay", then, "--json"], stdout=out) == 0
    assert json.loads(out.getvalue())["stats"]["executed"] == 1
