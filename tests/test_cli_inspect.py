"""`agentrt config show`, `agentrt threads list | show`, and how the CLI reports errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from agentrt.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHOP = f"{ROOT / 'examples' / 'shop.py'}:ShopAgent"
REPLAY = str(ROOT / "examples" / "shop.py")
BROKEN = f"{ROOT / 'tests' / 'cli_agents.py'}:BrokenAgent"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY",
                 "AGENTRT_REDIS_URL", "AGENTRT_THREAD_STORE", "AGENTRT_SQLITE_PATH",
                 "AGENTRT_CONFIG_FILE", "AGENTRT_PIPELINE", "AGENTRT_REDIS_CLUSTER"):
        monkeypatch.delenv(name, raising=False)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


# config show ---------------------------------------------------------------------------


def test_config_show_values_origins_and_masked_secrets(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "agentrt.toml").write_text('model = "claude-x"\nbatch_max = 7\n')
    monkeypatch.setenv("AGENTRT_ANTHROPIC_API_KEY", "sk-ant-very-secret")
    monkeypatch.setenv("AGENTRT_REDIS_URL", "redis://:hunter2@cache.internal:6380/2")
    monkeypatch.setenv("AGENTRT_MAX_TOKENS", "2048")
    code, out = run("config", "show")
    assert code == 0
    assert "very-secret" not in out and "hunter2" not in out
    rows = {line.split(" = ")[0]: line for line in out.splitlines() if " = " in line}
    assert re.fullmatch(r'model = "claude-x" +# configs/agentrt\.toml', rows["model"])
    assert re.fullmatch(r"batch_max = 7 +# configs/agentrt\.toml", rows["batch_max"])
    assert re.fullmatch(r"max_tokens = 2048 +# env AGENTRT_MAX_TOKENS", rows["max_tokens"])
    assert re.fullmatch(r'anthropic_api_key = "\*\*\*" +# env AGENTRT_ANTHROPIC_API_KEY',
                        rows["anthropic_api_key"])
    assert rows["redis_url"].startswith('redis_url = "redis://:***@cache.internal:6380/2"')
    assert re.fullmatch(r"stream = true +# default", rows["stream"])
    assert "# anthropic_base_url = (unset)" in out
    assert "# config file: configs/agentrt.toml\n" in out
    assert ('#   pipeline: ["turn_dedup", "memo", "local_cache", "single_flight", '
            '"shared_cache", "shared_flight", "batch"]\n') in out
    assert '#   thread_store: "redis"\n' in out

    code, out = run("config", "show", "--json")
    shown = json.loads(out)
    assert shown["settings"]["anthropic_api_key"] == "***"
    assert shown["settings"]["redis_url"] == "redis://:***@cache.internal:6380/2"
    assert shown["settings"]["model"] == "claude-x"
    assert shown["origins"]["max_tokens"] == "env AGENTRT_MAX_TOKENS"
    assert shown["effective"]["thread_store"] == "redis"


def test_config_show_without_any_configuration(tmp_path: Path) -> None:
    code, out = run("config", "show")
    assert code == 0
    assert "# config file: none (configs/agentrt.toml does not exist)\n" in out
    assert "# anthropic_api_key = (unset)" in out
    assert '#   pipeline: ["turn_dedup", "memo", "local_cache", "single_flight", "batch"]' in out
    assert '#   thread_store: "sqlite"' in out


def test_a_bad_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AGENTRT_MAX_TOKENS", "-5")
    assert run("config", "show") == (2, "")
    err = capsys.readouterr().err
    assert err.startswith("agentrt: AGENTRT_MAX_TOKENS: ") and "'-5'" in err
    assert len(err.splitlines()) == 1
    # --verbose, before or after the command: the traceback too
    for argv in (["--verbose", "config", "show"], ["config", "show", "-v"]):
        assert run(*argv) == (2, "")
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err
        assert err.splitlines()[-1].startswith("agentrt: AGENTRT_MAX_TOKENS: ")


# threads --------------------------------------------------------------------------------


@pytest.mark.integration
def test_threads_list_and_show(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTRT_SQLITE_PATH", str(tmp_path / "t.db"))
    ids = []
    for task in ("Is 42 in stock?", "And 17?"):
        code, out = run("run", SHOP, task, "--replay", REPLAY, "--json")
        assert code == 0
        ids.append(json.loads(out)["thread_id"])
    code, out = run("threads", "list")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["THREAD", "MESSAGES", "UPDATED", "FIRST", "MESSAGE"]
    assert [row.split()[0] for row in rows] == ids[::-1]  # most recent first
    assert [row.split()[1] for row in rows] == ["8", "8"]
    assert rows[0].endswith("  And 17?") and rows[1].endswith("  Is 42 in stock?")
    assert run("threads", "list", "--limit", "1")[1].count("thr_") == 1
    assert [t["id"] for t in json.loads(run("threads", "list", "--json")[1])] == ids[::-1]

    code, out = run("threads", "show", ids[0])
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(rf"thread {ids[0]} · 8 messages · created [\d\- :]+ · updated [\d\- :]+",
                        lines[0])
    assert lines[1:5] == [
        "[1] user: Is 42 in stock?",
        "[2] assistant: Let me look up the product and the user.",
        "      -> get_product(product_id=42)",
        "      -> get_user(user_id='u-7')"]
    assert lines[5] == "[3] user (tool results)"
    assert lines[6].startswith('      <- {"id": 42, "name": "Noise-cancelling headphones"')
    assert lines[-1].startswith("[8] assistant: Product 42 (Noise-cancelling headphones) is in")
    shown = json.loads(run("threads", "show", ids[0], "--json")[1])
    assert shown["id"] == ids[0] and len(shown["messages"]) == 8


def test_threads_of_a_store_that_does_not_exist_yet(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "none" / "t.db"
    monkeypatch.setenv("AGENTRT_SQLITE_PATH", str(db))
    assert run("threads", "list") == (0, f"no threads: {db} does not exist yet\n")
    assert not db.parent.exists()  # looking creates nothing
    assert run("threads", "show", "thr_nope") == (1, "")
    assert capsys.readouterr().err == "agentrt: thread 'thr_nope' does not exist in this store\n"
    monkeypatch.setenv("AGENTRT_THREAD_STORE", "memory")
    assert run("threads", "list")[1].startswith("no threads: the memory store keeps threads")


@pytest.mark.redis
def test_threads_in_redis(monkeypatch: pytest.MonkeyPatch, redis_url: str,
                          redis_prefix: str) -> None:
    monkeypatch.setenv("AGENTRT_REDIS_URL", redis_url)
    monkeypatch.setenv("AGENTRT_REDIS_PREFIX", redis_prefix)
    code, out = run("run", SHOP, "Is 42 in stock?", "--replay", REPLAY, "--json")
    assert code == 0
    thread_id = json.loads(out)["thread_id"]
    try:
        assert [t["id"] for t in json.loads(run("threads", "list", "--json")[1])] == [thread_id]
        assert run("threads", "show", thread_id)[1].startswith(f"thread {thread_id} · 8 messages")
    finally:
        import redis

        with redis.Redis.from_url(redis_url) as client:
            for key in client.scan_iter(match=f"{redis_prefix}:*"):
                client.delete(key)


# errors ---------------------------------------------------------------------------------


@pytest.mark.integration  # --replay serves the fake Messages API over HTTP
def test_an_unexpected_error_is_one_line_with_a_hint(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    assert run("run", BROKEN, "hi", "--replay", REPLAY) == (1, "")
    assert capsys.readouterr().err == ("agentrt: internal error: RuntimeError: boom "
                                       "(--verbose shows the traceback)\n")
    assert run("run", BROKEN, "hi", "--replay", REPLAY, "--verbose") == (1, "")
    err = capsys.readouterr().err
    assert "Traceback" in err and 'raise RuntimeError("boom")' in err
    assert err.splitlines()[-1] == "agentrt: internal error: RuntimeError: boom"


def test_config_show_masks_the_userinfo_of_the_api_base_url(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    """Failed before: a proxy's ``user:password@`` in the base URL was shown as is."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTRT_ANTHROPIC_BASE_URL", "https://proxy:s3cr%2Ft@llm.internal/")
    code, out = run("config", "show")
    assert code == 0
    assert "s3cr" not in out
    assert 'anthropic_base_url = "https://proxy:***@llm.internal/"' in out
