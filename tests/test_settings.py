from __future__ import annotations

from pathlib import Path

import pytest

from agentrt import DEFAULT_MODEL, ConfigError, Settings, load_settings
from agentrt.pipeline import configured_stages
from agentrt.settings import effective_thread_store, example_toml
from agentrt.testing import capture_events

ROOT = Path(__file__).resolve().parents[1]


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.model == DEFAULT_MODEL == "claude-haiku-5-5"
    assert effective_thread_store(settings) == "sqlite"
    assert "shared_cache" not in configured_stages(settings)
    shared = load_settings(redis_url="redis://:secret@127.0.0.1:6379/0")
    assert effective_thread_store(shared) == "redis"
    assert configured_stages(shared) == ["turn_dedup", "memo", "local_cache", "single_flight",
                                          "shared_cache", "shared_flight", "batch"]
    assert "secret" not in repr(shared)


def test_env_overrides_toml_and_toml_overrides_defaults(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "agentrt.toml").write_text('model = "from-toml"\nmax_tokens = 77\n')
    monkeypatch.setenv("AGENTRT_MAX_TOKENS", "88")
    settings = load_settings()
    assert (settings.model, settings.max_tokens) == ("from-toml", 88)


def test_bad_values_name_the_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTRT_MAX_ITERATIONS", "-3")
    with pytest.raises(ConfigError, match="AGENTRT_MAX_ITERATIONS"):
        load_settings()
    monkeypatch.delenv("AGENTRT_MAX_ITERATIONS")
    monkeypatch.setenv("AGENTRT_THREAD_STORE", "mongo")
    with pytest.raises(ConfigError, match="AGENTRT_THREAD_STORE"):
        load_settings()


def test_missing_named_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTRT_CONFIG_FILE", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="AGENTRT_CONFIG_FILE"):
        load_settings()


def test_example_file_is_generated_from_the_model() -> None:
    assert (ROOT / "configs" / "agentrt.example.toml").read_text() == example_toml()


# Settings refuse what they do not understand ----------------------------------------

def test_a_misspelled_key_in_the_settings_file_names_it_the_file_and_the_fix(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Failed before: ``modle = ...`` was ignored."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "agentrt.toml").write_text('modle = "claude-x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "'modle'" in message and "agentrt.toml" in message and "'model'" in message


def test_a_misspelled_argument_names_it_and_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    """Failed before: ``load_settings(max_tokenz=3)`` was ignored."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"'max_tokenz' \(argument\); did you mean "
                                          r"'max_tokens'"):
        load_settings(max_tokenz=3)
    with pytest.raises(ConfigError, match="max_tokenz"):
        Settings(max_tokenz=3)


def test_unknown_environment_variables_are_logged_not_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AGENTRT_MAX_TOKENZ=5\n")
    monkeypatch.setenv("AGENTRT_MODLE", "x")
    monkeypatch.setenv("AGENTRT_TEST_ANYTHING", "ours")  # the tests' own: known
    monkeypatch.setenv("AGENTRT_CONFIG_FILE", "")  # read by agentrt, not a setting
    with capture_events() as events:
        load_settings()
    warned = [e for e in events if e["event"] == "settings.unknown_variables"]
    assert len(warned) == 1 and warned[0]["log_level"] == "warning"
    assert warned[0]["variables"] == ["AGENTRT_MAX_TOKENZ", "AGENTRT_MODLE"]


def test_a_toml_syntax_error_names_the_file_line_and_column(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Failed before: ``agentrt: internal error: TOMLDecodeError ...`` without the file."""
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "mine.toml"
    bad.write_text('model = "x"\nmax_tokens = = 3\n')
    monkeypatch.setenv("AGENTRT_CONFIG_FILE", str(bad))
    with pytest.raises(ConfigError, match=r"mine\.toml: invalid TOML: .*line 2, column"):
        load_settings()


def test_the_api_key_is_read_from_dotenv_too(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """Failed before: ``ANTHROPIC_API_KEY`` in .env was not read, while the error said to
    set it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("AGENTRT_ANTHROPIC_API_KEY", raising=False)
    (tmp_path / ".env").write_text("ANTHROPIC_API_KEY=sk-from-dotenv\n")
    key = load_settings().anthropic_api_key
    assert key is not None and key.get_secret_value() == "sk-from-dotenv"
    monkeypatch.setenv("AGENTRT_ANTHROPIC_API_KEY", "sk-from-env")  # the environment wins
    key = load_settings().anthropic_api_key
    assert key is not None and key.get_secret_value() == "sk-from-env"


def test_an_empty_model_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTRT_MODEL", "")
    with pytest.raises(ConfigError, match="AGENTRT_MODEL"):
        load_settings()


def test_a_relative_sqlite_path_in_the_file_is_relative_to_the_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = tmp_path / "service" / "agentrt.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text('sqlite_path = "data/threads.db"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTRT_CONFIG_FILE", str(elsewhere))
    assert load_settings().sqlite_path == tmp_path / "service" / "data" / "threads.db"


def test_setting_origin_names_the_source_of_the_value_in_effect(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from agentrt.settings import setting_origin

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTRT_MODEL", raising=False)
    assert setting_origin(load_settings(), "model") == "the default of the setting `model`"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "agentrt.toml").write_text('model = "from-toml"\n')
    assert setting_origin(load_settings(), "model") == (
        f"`model` in {Path('configs') / 'agentrt.toml'}")
    (tmp_path / ".env").write_text("AGENTRT_MODEL=from-dotenv\n")
    assert setting_origin(load_settings(), "model") == "AGENTRT_MODEL in .env"
    monkeypatch.setenv("AGENTRT_MODEL", "from-env")
    assert setting_origin(load_settings(), "model") == "the environment variable AGENTRT_MODEL"
    # an argument beats them all, and is named as such
    assert setting_origin(load_settings(model="given"), "model") == (
        "the setting `model` (given as an argument)")
