from __future__ import annotations

from pathlib import Path

import pytest

from agentrt import DEFAULT_MODEL, ConfigError, load_settings
from agentrt.pipeline import configured_stages
from agentrt.settings import effective_thread_store, example_toml

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
