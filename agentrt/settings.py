"""Runtime settings: constructor arguments > AGENTRT_* environment > .env > TOML file > defaults.

The TOML file is ``configs/agentrt.toml`` relative to the working directory, or
the path in ``AGENTRT_CONFIG_FILE``; a file named explicitly must exist. What the
settings do not understand is refused: an unknown argument or TOML key fails at
start-up naming it, where it came from and the closest valid name; an unknown
``AGENTRT_*`` environment variable (the environment holds much that is not ours) is
logged at warning. A bad value fails naming the field. A relative ``sqlite_path`` in
the TOML file is relative to that file; elsewhere to the working directory.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ._errors import ConfigError, config_error
from .log import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable
    from importlib.resources.abc import Traversable

__all__ = [
    "DEFAULT_MODEL",
    "Settings",
    "config_file",
    "effective_thread_store",
    "load_settings",
    "setting_origin",
]

DEFAULT_MODEL = "claude-haiku-5-5"
_DEFAULT_TOML = Path("configs/agentrt.toml")
# Variables with the prefix that agentrt reads but that are not settings.
_NOT_SETTINGS = frozenset({"AGENTRT_CONFIG_FILE", "AGENTRT_FAKE_BASE_URL"})
_NOT_SETTINGS_PREFIXES = ("AGENTRT_TEST_", "AGENTRT_CRASH_")

log = get_logger("agentrt.settings")


def config_file() -> Path | None:
    """The settings file in effect: ``AGENTRT_CONFIG_FILE`` (which must exist), else
    ``configs/agentrt.toml`` when there is one."""
    named = os.environ.get("AGENTRT_CONFIG_FILE")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"file {named!r} does not exist", field="AGENTRT_CONFIG_FILE")
        return path
    return _DEFAULT_TOML if _DEFAULT_TOML.is_file() else None


def _unknown(names: Iterable[str], source: str) -> None:
    """A ConfigError for the first name that is not a setting, if any."""
    import difflib

    fields = list(Settings.model_fields)
    for name in names:
        if name not in Settings.model_fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown setting {name!r} ({source}){hint}", field=name)


class _TomlFile(TomlConfigSettingsSource):
    """The settings file, parsed here so that a syntax error names the file, line and
    column, an unknown key is refused, and a relative path is taken from the file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self._path = path
        super().__init__(settings_cls, toml_file=path)

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read it: {exc}", field=str(file_path)) from exc
        except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
            raise ConfigError(f"invalid TOML: {exc}", field=str(file_path)) from exc
        _unknown(data, f"in {file_path}")
        sqlite = data.get("sqlite_path")
        if isinstance(sqlite, str) and not Path(sqlite).is_absolute():
            data["sqlite_path"] = str(self._path.parent / sqlite)
        return data


class Settings(BaseSettings):
    """Every knob of the runtime, documented where it is declared."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTRT_", env_file=".env", env_file_encoding="utf-8",
        extra="ignore", validate_default=True, populate_by_name=True,
    )

    def __init__(self, **values: Any) -> None:
        """Arguments are checked by name first (pydantic-settings' own ``_env_file`` and
        friends aside), then the sources are merged and validated; any failure is a
        ConfigError naming the culprit."""
        _unknown((k for k in values if not k.startswith("_")), "argument")
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise config_error(exc, prefix="AGENTRT_") from exc

    model: str = Field(DEFAULT_MODEL, min_length=1,
                       description="Default model for agents that name none.")
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
    eager_tools: bool = Field(
        True, description="When streaming, start a read-only tool call as soon as its "
        "tool_use block is complete, while the rest of the reply streams (side effects "
        "still wait for the end of the message). An agent's eager_tools overrides it.")
    output_retries: int = Field(
        1, ge=0, le=10, description="Times a typed agent's model (output_type) is told what "
        "failed and asked again when its answer does not validate, before the run fails "
        "with OutputValidationError. An agent's output_retries overrides it.")
    tool_timeout: float = Field(
        60.0, gt=0, description="Seconds a tool function may run before it is cancelled."
    )
    max_result_chars: int = Field(
        100_000, gt=100, description="Tool results longer than this are truncated with a notice."
    )
    prompt_caching: bool = Field(True, description="Add cache_control breakpoints to requests.")
    context_strategy: Literal["auto", "api_edit", "api_compact", "stub", "summary", "off"] = Field(
        "auto", description="How a long thread's requests are kept under the context budget: "
        "auto (the API's context editing where the model takes it, else stubs for old tool "
        "results; then a summary), api_edit, api_compact, stub, summary, or off. An agent's "
        "context_policy overrides the context_* settings.")
    context_budget: int | None = Field(
        None, ge=1024, description="Tokens one request may hold; unset means "
        "context_budget_fraction of the model's context window (less max_tokens).")
    context_budget_fraction: float = Field(
        0.75, gt=0, le=1, description="The budget's share of the model's context window.")
    context_edit_every: int = Field(
        8, gt=0, description="Requests between two context edits at most often (the cached "
        "prefix is rebuilt at each), unless the budget would be passed.")
    context_keep_tool_results: int = Field(
        3, gt=0, description="Newest tool results never cleared from the context.")
    context_windows: dict[str, int] = Field(
        default_factory=dict, description="Context windows (tokens) by model name or prefix, "
        "added to or overriding agentrt's table: {\"my-model\": 200000}.")
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
        None, validation_alias=AliasChoices("anthropic_api_key", "AGENTRT_ANTHROPIC_API_KEY",
                                            "ANTHROPIC_API_KEY"),
        description="API key: AGENTRT_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY, from the "
        "environment or .env; unset means the SDK's own lookup.")
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
    approval_timeout: float = Field(
        7 * 24 * 3600.0, gt=0, description="Seconds a tool call waits for a person's "
        "approval before it is answered as denied (\"no decision in time\"); the Redis "
        "store keeps a thread with calls pending at least that long, whatever thread_ttl.")
    thread_wait: float = Field(
        5.0, ge=0, description="Seconds a run waits for another run of the same thread (in "
        "any process) to finish before it is refused with ThreadBusyError (0: at once).")
    thread_queue: int = Field(
        16, gt=0, description="Runs of this process that may wait for one thread at once; "
        "one more is refused with ThreadBusyError at once (a flood of messages to one "
        "thread is refused, not buffered without end).")
    thread_lease: float = Field(
        10.0, gt=0, description="Seconds a run's claim on its thread lives without renewal "
        "(renewed every third of it while the run goes on): how long a thread stays held "
        "after its process was killed.")
    claim_unowned_threads: bool = Field(
        False, description="Let a run with an identity continue a thread that has no owner "
        "(one created before threads had owners, or by a run without identity), which then "
        "becomes its own; off, such a run is refused with ThreadOwnerError.")
    redis_store_retry_for: float = Field(
        5.0, ge=0, description="Seconds an operation of the Redis thread store keeps "
        "retrying through a hiccup (a timeout, a lost connection) before the run fails with "
        "StoreError.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "warning", description="Lowest level the CLI logs (and configure_logging(), called "
        "without one); a library embedding agentrt leaves this to its logging set-up.")
    log_format: Literal["auto", "console", "json"] = Field(
        "auto", description="console on a TTY and JSON otherwise when auto."
    )
    otel: bool = Field(
        False, description="OpenTelemetry traces and metrics through the global tracer and "
        "meter providers (GenAI conventions; see docs/concepts/observability.md). Runtime("
        "tracer_provider=..., meter_provider=...) turns them on without it.")
    otel_capture_content: bool = Field(
        False, description="Record prompts, replies, tool inputs and results on spans "
        "(as OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true does).")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The sources, highest precedence first: arguments, environment, ``.env``, then
        the TOML file when there is one (pydantic-settings' hook)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        toml = config_file()
        if toml is not None:
            sources.append(_TomlFile(settings_cls, toml))
        return tuple(sources)


def effective_thread_store(settings: Settings) -> str:
    if settings.thread_store is not None:
        return settings.thread_store
    return "redis" if settings.redis_url is not None else "sqlite"


def load_settings(**overrides: Any) -> Settings:
    """Settings, or a :class:`ConfigError` naming the first bad key or field, where it came
    from and (for a misspelled key) the closest valid name. Unknown ``AGENTRT_*``
    variables in the environment or ``.env`` are logged at warning."""
    _warn_unknown_variables()
    return Settings(**overrides)


def _warn_unknown_variables() -> None:
    names = {k for k in os.environ if k.startswith("AGENTRT_")}
    if Path(".env").is_file():
        from dotenv import dotenv_values

        names.update(k.upper() for k in dotenv_values(".env") if k.upper().startswith("AGENTRT_"))
    unknown = sorted(
        n for n in names if n not in _NOT_SETTINGS and not n.startswith(_NOT_SETTINGS_PREFIXES)
        and n[len("AGENTRT_"):].lower() not in Settings.model_fields)
    if unknown:
        log.warning("settings.unknown_variables", variables=unknown,
                    hint="not agentrt settings (see configs/agentrt.example.toml); ignored")


def setting_origin(settings: Settings, name: str, variables: Iterable[str] = ()) -> str:
    """Where the value of setting ``name`` in ``settings`` came from, for an error message
    that must send the user to it: the environment variable, ``.env`` entry or settings
    file key holding that value (``variables``: other variables read for it, in the
    order they are looked up), else an argument or the default."""
    names = [f"AGENTRT_{name.upper()}", *variables]
    value = getattr(settings, name)
    text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    for variable in names:
        if os.environ.get(variable) == text:
            return f"the environment variable {variable}"
    if Path(".env").is_file():
        from dotenv import dotenv_values

        found = {k.upper(): v for k, v in dotenv_values(".env").items()}
        for variable in names:
            if found.get(variable) == text:
                return f"{variable} in .env"
    file = config_file()
    if file is not None:
        try:
            if str(tomllib.loads(file.read_text(encoding="utf-8")).get(name)) == text:
                return f"`{name}` in {file}"
        except (OSError, tomllib.TOMLDecodeError):
            pass  # the settings read it already; this is only a label
    if value == Settings.model_fields[name].default:
        return f"the default of the setting `{name}`"
    return f"the setting `{name}` (given as an argument)"


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
