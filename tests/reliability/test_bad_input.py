"""Bad input from the developer: each mistake fails at start-up (class definition,
Agent or Runtime construction), before any model call, with one message (one line)
that names the culprit, and nothing else logged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from agentrt import (
    Agent,
    ConfigError,
    DependencyCycleError,
    MissingParameterError,
    Runtime,
    Tool,
    UsageError,
    function,
    load_settings,
)
from agentrt.testing import capture_events

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.anyio


class Search(Tool):
    @function(read_only=True)
    async def web_search(self, query: str) -> str:
        """Search the web."""
        return query


class Files(Tool):
    @function(read_only=True)
    async def read_file(self, path: str) -> str:
        """Read a file."""
        return path

    @function
    async def delete_file(self, path: str) -> str:
        """Delete a file."""
        return path


class Alpha(Tool):
    requires = ("beta",)

    @function(read_only=True)
    async def alpha(self) -> str:
        """A."""
        return "a"


class Beta(Tool):
    requires = ("alpha",)

    @function(read_only=True)
    async def beta(self) -> str:
        """B."""
        return "b"


class Vault:
    """Something only the application can provide."""


class NeedsVault(Tool):
    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    @function(read_only=True)
    async def secret(self) -> str:
        """A secret."""
        return "s"


def _runtime() -> Runtime:
    import anthropic

    from agentrt import MemoryThreadStore

    client = anthropic.AsyncAnthropic(api_key="k", base_url="http://127.0.0.1:9")
    return Runtime(load_settings(thread_store="memory"), client=client,
                   store=MemoryThreadStore())


def _jit_agent(**config: Any) -> Any:
    class JitAgent(Agent):
        tool_catalog = (Search, Files)
        tool_config = {"manifest": None, "entry_points": False, **config}

    return JitAgent(_runtime())


def _class(**attrs: Any) -> Callable[[], Any]:
    return lambda: type("BadAgent", (Agent,), attrs)


CASES: dict[str, tuple[Callable[[], Any], type[Exception], tuple[str, ...]]] = {
    "max_iterations of the wrong type": (
        _class(max_iterations="ten"), ConfigError,
        ("BadAgent.max_iterations", "expected a positive int", "'ten'")),
    "a negative tool_timeout": (
        _class(tool_timeout=-1), ConfigError, ("BadAgent.tool_timeout", "positive number")),
    "a tools entry that is not a tool": (
        _class(tools=("search",)), ConfigError, ("BadAgent.tools[0]", "'search'")),
    "an unknown function option": (
        _class(function_options={"web_search": {"tll": 5}}), ConfigError,
        ("BadAgent.function_options['web_search']",)),
    "a tool config of the wrong shape": (
        _class(tool_catalog=(Search,), tool_config={"tools": {"search": "yes"}}), ConfigError,
        ("BadAgent.tool_config.tools.search",)),
    "a tool config naming an unknown tool": (
        lambda: _jit_agent(tools={"serach": True}), ConfigError,
        ("JitAgent.tool_config.tools.serach", "unknown tool 'serach'", "did you mean 'search'")),
    "a tool config naming an unknown method": (
        lambda: _jit_agent(tools={"files": {"methods": ["remove_file"]}}), ConfigError,
        ("tool_config.tools.files.methods", "has no function 'remove_file'")),
    "a dependency cycle": (
        lambda: type("CycleAgent", (Agent,), {
            "tool_catalog": (Alpha, Beta),
            "tool_config": {"manifest": None, "entry_points": False}})(_runtime()),
        DependencyCycleError, ("alpha -> beta -> alpha",)),
    "a core tool whose constructor needs what nobody provides": (
        lambda: type("VaultAgent", (Agent,), {
            "core_tools": (NeedsVault,),
            "tool_config": {"manifest": None, "entry_points": False}})(_runtime()),
        MissingParameterError, ("tool 'needs_vault'", "parameter 'vault'", "Vault")),
    "a fixed tool whose constructor needs an argument": (
        lambda: type("VaultAgent", (Agent,), {"tools": (NeedsVault,)})(_runtime()),
        ConfigError, ("VaultAgent.tools", "cannot construct NeedsVault", "vault")),
    "a setting of the wrong type": (
        lambda: load_settings(max_tokens="many"), ConfigError,
        ("AGENTRT_MAX_TOKENS", "'many'")),
    "an unknown pipeline stage": (
        lambda: type("PipeAgent", (Agent,), {"pipeline": ["memo", "cahce"]})(_runtime()),
        ConfigError, ("pipeline", "unknown stage(s) 'cahce'")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_developer_mistake_fails_at_start_up_naming_the_culprit(case: str) -> None:
    make, error, fragments = CASES[case]
    with capture_events() as logs, pytest.raises(error) as caught:
        make()
    message = str(caught.value)
    assert isinstance(caught.value, UsageError)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not [e for e in logs if e["log_level"] in ("warning", "error")], logs


def test_settings_from_the_environment_name_the_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTRT_TOOL_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match=r"^AGENTRT_TOOL_TIMEOUT: .*'soon'"):
        load_settings()


def test_a_settings_file_of_the_wrong_type_names_the_field(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "agentrt.toml"
    path.write_text('max_iterations = "lots"\n')
    monkeypatch.setenv("AGENTRT_CONFIG_FILE", str(path))
    with pytest.raises(ConfigError, match=r"^AGENTRT_MAX_ITERATIONS: .*'lots'"):
        load_settings()
    monkeypatch.setenv("AGENTRT_CONFIG_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"AGENTRT_CONFIG_FILE: file .* does not exist"):
        load_settings()


def test_a_missing_api_key_fails_when_the_runtime_is_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Failed before: the Runtime was built, and the first model request raised a bare
    TypeError ("Could not resolve authentication method") in the middle of a run."""
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "AGENTRT_ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r"^AGENTRT_ANTHROPIC_API_KEY: no API key: set "
                                          r"ANTHROPIC_API_KEY"):
        Runtime(load_settings(thread_store="memory"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    runtime = Runtime(load_settings(thread_store="memory"))
    assert runtime.model.sdk.api_key == "sk-test"
