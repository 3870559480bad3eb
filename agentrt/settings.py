"""Runtime settings: constructor arguments > AGENTRT_* environment > .env > TOML file > defaults.

The TOML file is ``configs/agentrt.toml`` relative to the working directory, or
the path in ``AGENTRT_CONFIG_FILE``; a file named explicitly must exist. A bad
value fails at start-up with the field named (see :func:`load_settings`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ._errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "Settings",
    "effective_thread_store",
    "load_settings",
]

DEFAULT_MODEL = "claude-haiku-5-5"
_DEFAULT_TOML = Path("configs/agentrt.toml")


def _toml_path() -> Path | None:
    named = os.environ.get("AGENTRT_CONFIG_FILE")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"file {named!r} does not exist", field="AGENTRT_CONFIG_FILE")
        return path
    return _DEFAULT_TOML if _DEFAULT_TOML.is_file() else None


class Settings(BaseSettings):
    """Every knob of the runtime, documented where it is declared."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTRT_", env_file=".env", env_file_encoding="utf-8",
        extra="ignore", validate_default=True,
    )

    model: str = Field(DEFAULT_MODEL, description="Default model for agents that name none.")
    max_tokens: int = Field(4096, gt=0, le=128_000, description="max_tokens of each request.")
    max_iterations: int = Field(
        20, gt=0, le=1000, description="Model turns per run before it stops with max_iterations."
    )
    run_max_input_tokens: int | None = Field(
        None, gt=0, description="Prompt tokens one run may send in all (its requests' "
        "input, cached tokens included) before it stops with stop_reason usage_limit; unset: "
        "no bound.")
    run_max_output_tokens: int | None = Field(
        None, gt=0, description="Output tokens one run may use in all; each request's "
        "max_tokens is capped to what is left. Unset: no bound.")
    run_max_tool_calls: int | None = Field(
        None, gt=0, description="Tool calls one run may make; the calls past it are answered "
        "as not run and the run stops. Unset: no bound.")
    stream: bool = Field(True, description="Stream replies (SSE); false uses plain requests.")
    parallel_tools: bool = Field(
        True, description="Run the tool calls of one reply concurrently."
    )
    tool_timeout: float = Field(
        60.0, gt=0, description="Seconds a tool function may run before it is cancelled."
    )
    max_result_chars: int = Field(
        100_000, gt=100, description="Tool results longer than this are truncated with a notice."
    )
    prompt_caching: bool = Field(True, description="Add cache_control breakpoints to requests.")
    pipeline: list[str] | None = Field(
        None, description="Tool-call stages in order, before execute; unset means turn_dedup, "
        "memo, local_cache, single_flight, (shared_cache, shared_flight,) batch, with the "
        "shared stages when redis_url is set.",
    )
    cache_ttl: float = Field(
        300.0, gt=0, description="Seconds a read-only result is cached when its function "
        "declares no ttl.")
    local_cache_max_entries: int = Field(
        10_000, gt=0, description="Entries the process-wide result cache holds at most.")
    local_cache_max_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Bytes the process-wide result cache holds at most.")
    stale_while_revalidate: float = Field(
        0.0, ge=0, description="Seconds an expired result may still be served while one "
        "background refresh runs (0: never).")
    batch_window: float = Field(
        0.002, ge=0, description="Seconds a batch stays open for more calls to join.")
    batch_max: int = Field(100, gt=0, description="Inputs in one batch at most.")
    thread_store: Literal["sqlite", "memory", "redis"] | None = Field(
        None, description="Where threads live: sqlite (file), memory (lost on exit) or redis; "
        "unset means redis when redis_url is set, else sqlite."
    )
    sqlite_path: Path = Field(
        Path(".agentrt/threads.db"), description="SQLite file of the sqlite thread store."
    )
    anthropic_api_key: SecretStr | None = Field(
        None, description="API key; unset means the SDK's own ANTHROPIC_API_KEY lookup."
    )
    anthropic_base_url: str | None = Field(
        None, description="Messages API base URL; unset means the SDK's ANTHROPIC_BASE_URL."
    )
    llm_max_retries: int = Field(
        2, ge=0, le=10, description="Retries of 408/409/429/5xx answers and connection errors."
    )
    llm_max_retry_wait: float = Field(
        60.0, gt=0, description="Longest retry-after (seconds) a retry waits; an API asking "
        "for more fails the turn at once with a ModelError carrying retry_after.")
    llm_timeout: float = Field(600.0, gt=0, description="Seconds per Messages API request.")
    redis_url: SecretStr | None = Field(
        None, description="redis:// or rediss:// URL: turns on the shared cache, cross-process "
        "single-flight and the Redis thread store. Unset: in-process only.")
    redis_cluster: bool = Field(False, description="Connect to a Redis Cluster.")
    redis_prefix: str = Field("agentrt", min_length=1, description="Prefix of every Redis key.")
    redis_timeout: float = Field(
        0.5, gt=0, description="Seconds a Redis command may take before Redis is treated as "
        "down (the run goes on with the in-process layers).")
    redis_retry_after: float = Field(
        1.0, gt=0, description="Seconds the shared stages stay aside after Redis failed, "
        "before trying it again.")
    shared_cache_max_bytes: int = Field(
        1024 * 1024, gt=0, description="Results larger than this are not stored in Redis.")
    lease_ttl: float = Field(
        10.0, gt=0, description="Seconds a cross-process single-flight lease lives without "
        "renewal; the leader renews it while the call runs.")
    thread_ttl: float | None = Field(
        None, gt=0, description="Seconds an idle thread lives in the Redis store (unset: "
        "forever).")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level logged."
    )
    log_format: Literal["auto", "console", "json"] = Field(
        "auto", description="console on a TTY and JSON otherwise when auto."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml = _toml_path()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


def effective_thread_store(settings: Settings) -> str:
    if settings.thread_store is not None:
        return settings.thread_store
    return "redis" if settings.redis_url is not None else "sqlite"


def load_settings(**overrides: Any) -> Settings:
    """Settings, or a :class:`ConfigError` naming the first bad field and its source value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "AGENTRT_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(f"{first['msg']} (got {first.get('input')!r})", field=field) from exc


def example_toml() -> str:
    """Every setting with its description and default, for configs/agentrt.example.toml.

    Generated from the model (a test compares the file) so the example cannot drift.
    """
    lines = ["# agentrt settings: every key, its meaning and its default.",
             "# Copy to configs/agentrt.toml (or point AGENTRT_CONFIG_FILE at a copy).",
             "# Environment variables AGENTRT_<KEY> override this file.", ""]
    for name, info in Settings.model_fields.items():
        default = info.default
        lines.append(f"# {info.description}")
        if default is None:
            lines.append(f"# {name} = ")
        elif isinstance(default, bool):
            lines.append(f"# {name} = {'true' if default else 'false'}")
        elif isinstance(default, int | float):
            lines.append(f"# {name} = {default!r}")
        elif isinstance(default, list):
            lines.append(f"# {name} = {json.dumps(default)}")
        else:
            lines.append(f'# {name} = "{default}"')
        lines.append("")
    return "\n".join(lines)
