from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import processes
import pytest

from agentrt import SQLiteThreadStore
from agentrt.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHOP = f"{ROOT / 'examples' / 'shop.py'}:ShopAgent"
REPLAY = str(ROOT / "examples" / "shop.py")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.integration
def test_json_prints_exactly_one_object_with_stats() -> None:
    out = io.StringIO()
    assert main(["run", SHOP, "Is 42 in stock?", "--replay", REPLAY, "--json"], stdout=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) >= {"text", "thread_id", "stop_reason", "usage", "stats"}
    assert result["stop_reason"] == "end_turn"
    assert result["stats"]["tool_calls"] == 6
    assert result["stats"]["executed"] == 2  # product 42 and user u-7, once each
    assert result["stats"]["hits"] == {"memo": 3, "turn_dedup": 1}
    assert result["usage"]["input_tokens"] > 0 and "cache_read_input_tokens" in result["usage"]


@pytest.mark.integration
def test_streams_text_and_a_line_per_tool_call() -> None:
    out = io.StringIO()
    assert main(["run", SHOP, "Is 42 in stock?", "--replay", REPLAY], stdout=out) == 0
    text = out.getvalue()
    assert text.count("  -> get_product(") == 4 and text.count("  <- get_product [") == 4
    assert "premium member" in text and "tool calls 6" in text


def test_no_key_and_no_replay_exits_2_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", SHOP, "hi"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["agentrt: no API key: set ANTHROPIC_API_KEY, or run offline on the fake "
                   "server with --replay FILE"]


@pytest.mark.parametrize(
    ("target", "message"),
    [("nope.py:X", "does not exist"), ("agentrt:Nope", "has no attribute 'Nope'"),
     ("agentrt:Tool", "is not an Agent subclass"), ("just-a-name", "must look like"),
     ("no_such_module_xyz:A", "cannot import module")],
)
def test_bad_targets_are_one_line_errors(target: str, message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", target, "hi", "--replay", REPLAY]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_replay_file_is_a_usage_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"replies": [{"tool_calls": [{"input": {}}]}]}')
    assert main(["run", SHOP, "hi", "--replay", str(bad)]) == 2
    assert "replies[0]" in capsys.readouterr().err


@pytest.mark.integration
def test_thread_written_by_one_process_is_resumed_by_another(tmp_path: Path) -> None:
    """Two OS processes share the SQLite store: the second continues the first's thread."""
    env = {**os.environ, "AGENTRT_SQLITE_PATH": str(tmp_path / "threads.db")}
    first = processes.run(
        [sys.executable, "-m", "agentrt", "run", SHOP, "Is 42 in stock?", "--replay", REPLAY,
         "--json"], capture_output=True, text=True, env=env, timeout=120, check=True)
    thread_id = json.loads(first.stdout)["thread_id"]
    replay = tmp_path / "again.json"
    replay.write_text(json.dumps({"replies": [
        {"tool_calls": [{"name": "get_product", "input": {"product_id": 42}}]},
        {"text": "Still 3 left."}]}))
    second = processes.run(
        [sys.executable, "-m", "agentrt", "run", SHOP, "And now?", "--thread", thread_id,
         "--replay", str(replay), "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=True)
    resumed = json.loads(second.stdout)
    assert resumed["thread_id"] == thread_id
    # the memo is rebuilt from the stored thread: the repeat is not executed again
    assert resumed["stats"]["executed"] == 0 and resumed["stats"]["hits"] == {"memo": 1}

    async def stored_roles() -> list[str]:  # read here: a third process, in effect
        async with SQLiteThreadStore(env["AGENTRT_SQLITE_PATH"]) as store:
            return [m.role for m in await store.messages(thread_id)]

    assert anyio.run(stored_roles) == ["user", "assistant"] * 6


def test_pipeline_command_lists_the_stages_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["pipeline", SHOP], stdout=out) == 0
    names = [line.split()[1] for line in out.getvalue().splitlines()]
    assert names == ["turn_dedup", "memo", "local_cache", "single_flight", "batch", "execute"]


@pytest.mark.integration
def test_an_api_key_from_the_config_file_is_enough(tmp_path: Path) -> None:
    """Regression: the CLI checked only environment variables for a key, so a key set in
    configs/agentrt.toml was refused with "no API key" before the Runtime could read it."""
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"replies": [{"text": "configured"}]}))
    server = processes.popen([sys.executable, "-m", "agentrt.testing", "--replay", str(replay)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip().split("=", 1)[1]
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "agentrt.toml").write_text(
            f'anthropic_api_key = "sk-from-config"\nanthropic_base_url = "{url}"\n'
            'thread_store = "memory"\n')
        out = io.StringIO()
        assert main(["run", SHOP, "hi", "--json"], stdout=out) == 0
        assert json.loads(out.getvalue())["text"] == "configured"
    finally:
        server.terminate()
        server.communicate(timeout=10)
