"""An API error names its likely cause: a 404 on the model names the model and what chose
it, a 401 where the key came from; the message is the API's, not the SDK's dump of it.
Real HTTP and the real SDK against the fake server, the client built by the Runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import processes
import pytest

from agentrt import Agent, ModelError, Runtime, load_settings
from agentrt.testing import FakeAnthropicServer, Fault

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
MISSING = "model: claude-nope"  # what the API says for an unknown model


class Plain(Agent):
    system = "Be brief."


class Pinned(Agent):
    model = "claude-pinned-0"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env, no configs/agentrt.toml
    for name in os.environ:
        if name.startswith(("ANTHROPIC_", "AGENTRT_")):
            monkeypatch.delenv(name)


async def _error(agent: type[Agent], fault: Fault, **settings: object) -> ModelError:
    async with FakeAnthropicServer([fault]) as server:
        settings = {"anthropic_base_url": server.base_url, "thread_store": "memory", **settings}
        async with Runtime(load_settings(**settings)) as runtime:
            with pytest.raises(ModelError) as caught:
                await agent(runtime).run("hi")
    return caught.value


async def test_an_unknown_model_names_the_variable_that_chose_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("AGENTRT_MODEL", "claude-nope")
    error = await _error(Plain, Fault(404, MISSING))
    assert error.status_code == 404 and error.error_type == "not_found_error"
    assert str(error) == (
        "Messages API error 404 (not_found_error): model: claude-nope (the model "
        "'claude-nope', set by the environment variable AGENTRT_MODEL: is the name right, and "
        "available to this API key?)")


async def test_an_unknown_model_names_the_agent_attribute_or_the_file(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert "set by Pinned.model:" in str(await _error(Pinned, Fault(404, MISSING)))
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "agentrt.toml").write_text('model = "claude-nope"\n')
    assert ("set by `model` in configs/agentrt.toml:"
            in str(await _error(Plain, Fault(404, MISSING))))


async def test_a_refused_key_names_where_it_came_from(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-revoked")
    error = await _error(Plain, Fault(401, "invalid x-api-key"))
    assert str(error) == (
        "Messages API error 401 (authentication_error): invalid x-api-key (the API key "
        "refused came from the environment variable ANTHROPIC_API_KEY: is it right, and "
        "current?)")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    (tmp_path / ".env").write_text("AGENTRT_ANTHROPIC_API_KEY=sk-old\n")
    error = await _error(Plain, Fault(401, "invalid x-api-key"))
    assert "came from AGENTRT_ANTHROPIC_API_KEY in .env:" in str(error)
    assert "{'type'" not in str(error)  # not the SDK's dump of the body


async def test_other_errors_are_left_as_the_api_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    error = await _error(Plain, Fault(400, "messages: at least one message is required"))
    assert str(error) == ("Messages API error 400 (invalid_request_error): messages: at least "
                          "one message is required")


def test_the_cli_says_it_in_one_line(tmp_path: Path) -> None:
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"replies": [{"fault": {"status": 404, "message": MISSING}}]}))
    server = processes.popen([sys.executable, "-m", "agentrt.testing", "--replay", str(replay)],
                             stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    url = server.stdout.readline().strip().split("=", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "AGENTRT_"))}
    env.update(ANTHROPIC_API_KEY="sk-test", AGENTRT_ANTHROPIC_BASE_URL=url,
               AGENTRT_MODEL="claude-nope", AGENTRT_THREAD_STORE="memory")
    proc = processes.run([sys.executable, "-m", "agentrt", "run",
                          f"{ROOT / 'tests' / 'cli_agents.py'}:SlowAgent", "hi"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    server.terminate()
    server.communicate(timeout=10)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "agentrt: Messages API error 404 (not_found_error): model: claude-nope (the model "
        "'claude-nope', set by the environment variable AGENTRT_MODEL: is the name right, and "
        "available to this API key?)")
