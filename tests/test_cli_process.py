"""The ``agentrt`` command as a user's shell starts it: a child process, its stdout, stderr,
exit code and imports (logging, --help without the SDK, --version, threads of ``run``)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import processes
import pytest

if TYPE_CHECKING:
    import subprocess

ROOT = Path(__file__).resolve().parents[1]
SHOP = f"{ROOT / 'examples' / 'shop.py'}:ShopAgent"
REPLAY = str(ROOT / "examples" / "shop.py")
TASK = "Is 42 in stock?"

pytestmark = pytest.mark.integration


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No API key, no agentrt settings but the thread file (in ``tmp_path``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "AGENTRT_"))}
    env["AGENTRT_SQLITE_PATH"] = str(tmp_path / "threads.db")
    env.update(extra)
    return env


def agentrt(tmp_path: Path, *argv: str, env: dict[str, str] | None = None,
            stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return processes.run([sys.executable, "-m", "agentrt", *argv], cwd=tmp_path,
                         env=env or _env(tmp_path), capture_output=True, text=True,
                         timeout=120, stdin=stdin)


def test_run_json_writes_its_object_alone_and_no_logs_at_the_default_level(
        tmp_path: Path) -> None:
    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", REPLAY, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    [line] = proc.stdout.splitlines()
    assert json.loads(line)["stop_reason"] == "end_turn"


def test_log_level_and_format_from_the_settings_keep_the_events_fields(tmp_path: Path) -> None:
    env = _env(tmp_path, AGENTRT_LOG_LEVEL="debug", AGENTRT_LOG_FORMAT="json")
    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", REPLAY, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    thread_id = json.loads(proc.stdout)["thread_id"]
    requests = [r for r in records if r["event"] == "llm.request"]
    assert requests and requests[0]["level"] == "debug"
    assert requests[0]["logger"].startswith("agentrt")
    assert requests[0]["thread_id"] == thread_id and requests[0]["stream"] is True
    assert isinstance(requests[0]["messages"], int)

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "agentrt.toml").write_text('log_level = "info"\n'
                                                       'log_format = "console"\n')
    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", REPLAY, "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and not any(line.startswith("{") for line in lines)  # console, not JSON
    assert not any("llm.request" in line for line in lines)  # a debug event, below info
    assert any("tool.executed" in line or "run." in line for line in lines)


@pytest.mark.parametrize("argv", [
    [], ["run"], ["chat"], ["pipeline"], ["tools"], ["tools", "list"], ["tools", "show"],
    ["tools", "manifest"], ["config"], ["config", "show"], ["threads"], ["threads", "list"],
    ["threads", "show"]])
def test_every_help_answers_without_loading_the_sdk(tmp_path: Path, argv: list[str]) -> None:
    proc = processes.run([sys.executable, "-X", "importtime", "-m", "agentrt", *argv, "--help"],
                         cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                         timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: agentrt")
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert "agentrt.cli" in imported  # the profile is there
    assert not {"anthropic", "agentrt.runtime", "agentrt.jit", "pydantic"} & imported


def test_version(tmp_path: Path) -> None:
    import agentrt as package

    proc = agentrt(tmp_path, "--version")
    assert (proc.returncode, proc.stdout) == (0, f"agentrt {package.__version__}\n")


def test_the_manifest_default_in_the_help_is_the_real_one() -> None:
    from agentrt._cli_args import MANIFEST_HELP
    from agentrt.jit.manifest import DEFAULT_MANIFEST

    assert str(DEFAULT_MANIFEST) in MANIFEST_HELP


def test_chat_with_stdin_on_dev_null_ends_cleanly(tmp_path: Path) -> None:
    with open(os.devnull) as null:
        proc = agentrt(tmp_path, "chat", SHOP, "--replay", REPLAY, stdin=null.fileno())
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.startswith("agentrt chat · ShopAgent · thread thr_")


@pytest.mark.timeout(180)  # five CLI processes, one after another
def test_run_refuses_an_unknown_thread_and_says_the_one_it_used(tmp_path: Path) -> None:
    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", REPLAY, "--thread", "thr_nosuch")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("agentrt: thread 'thr_nosuch' does not exist in this store "
                           "(--new-thread thr_nosuch starts a thread with that id)\n")

    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", REPLAY, "--new-thread", "thr_mine",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["thread_id"] == "thr_mine"

    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", REPLAY, "--new-thread", "thr_mine")
    assert proc.returncode == 2
    assert proc.stderr == ("agentrt: thread 'thr_mine' already exists (--thread thr_mine "
                           "continues it)\n")

    proc = agentrt(tmp_path, "run", SHOP, "And now?", "--replay", REPLAY, "--thread", "thr_mine")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "agentrt: thread thr_mine (continued; --thread thr_mine continues it)\n"

    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", REPLAY)
    assert proc.returncode == 0, proc.stderr
    [said] = proc.stderr.splitlines()
    thread_id = said.split()[2]
    assert said == f"agentrt: thread {thread_id} (new; --thread {thread_id} continues it)"
    assert proc.stdout.rstrip().endswith(f"thread {thread_id}]")


def test_tools_list_with_a_config_named_from_another_directory(tmp_path: Path) -> None:
    """The config's manifest and python_path are relative to it: listing reads the
    manifest, importing nothing, from any working directory."""
    config = ROOT / "configs" / "research_assistant.toml"
    proc = agentrt(tmp_path, "tools", "list", "--config", str(config), "-v")
    assert proc.returncode == 0, proc.stderr
    status = {line.split()[0]: line.split()[2] for line in proc.stdout.splitlines()[1:]}
    assert status == {"browser": "blocked", "files": "allowed", "images": "blocked",
                      "presentation": "allowed", "publisher": "blocked", "web_search": "allowed"}
    assert "not_in_manifest" not in proc.stderr


def test_a_json_run_that_fails_says_its_thread_on_stderr(tmp_path: Path) -> None:
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"replies": [
        {"fault": {"status": 500, "message": "boom", "should_retry": False}}]}))
    proc = agentrt(tmp_path, "run", SHOP, TASK, "--replay", str(replay), "--json",
                   "--new-thread", "thr_failed")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.splitlines() == [
        "agentrt: thread thr_failed (new; --thread thr_failed continues it)",
        "agentrt: Messages API error 500 (api_error): boom"]
