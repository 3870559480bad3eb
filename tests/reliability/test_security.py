"""Security: what the model can and cannot reach, tenant isolation of cached results,
nothing from Redis executed or unpickled, and no secret in any log line."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentrt import (
    Agent,
    MemoryThreadStore,
    Message,
    ModelError,
    RunContext,
    Runtime,
    Tool,
    configure_logging,
    function,
    load_settings,
)
from agentrt.testing import FakeAnthropicServer, Fault, Reply, ToolUse
from agentrt.thread import owner_of

from .support import check_thread, tool_results

if TYPE_CHECKING:
    from agentrt.testing import Step

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
RAN: list[str] = []


class Files(Tool):
    """Files of the account (only read_file is allowed by the config below)."""

    def __init__(self, account: str) -> None:
        self.account = account

    @function(read_only=True)
    async def read_file(self, path: str) -> str:
        """Read a file."""
        RAN.append(f"read:{path}")
        return f"{self.account}:{path}"

    @function
    async def delete_file(self, path: str) -> str:
        """Delete a file."""
        RAN.append(f"delete:{path}")
        return "deleted"


class Browser(Tool):
    @function
    async def open_url(self, url: str) -> str:
        """Open a URL."""
        RAN.append(f"open:{url}")
        return "opened"


class Who(Tool):
    @function(read_only=True)
    async def whoami(self, ctx: RunContext) -> dict[str, Any]:
        """The caller's identity."""
        return dict(ctx.identity)


class SecureAgent(Agent):
    model = "claude-test"
    max_iterations = 6
    core_tools = (Who,)
    tool_catalog = (Files, Browser)
    tool_config = {"manifest": None, "entry_points": False,
                   "tools": {"files": {"methods": ["read_file"]}, "browser": False}}


async def _run(steps: list[Step], *, history: list[Message] | None = None,
               account: str = "acme") -> tuple[Any, list[dict[str, Any]], Any]:
    store = MemoryThreadStore()
    thread = None
    if history:
        # the thread is the run's identity's (another identity's would be refused)
        thread = (await store.create_thread(owner=owner_of({"account": account}))).id
        await store.append(thread, history)
    async with FakeAnthropicServer(steps) as server, server.client() as client, Runtime(
            load_settings(thread_store="memory"), client=client, store=store) as runtime:
        agent = SecureAgent(runtime, identity={"account": account})
        result = await agent.run("go", thread_id=thread)
        check_thread(await store.messages(result.thread_id))
    return result, [r.body for r in server.requests], server


async def test_a_method_the_config_does_not_allow_is_never_reached() -> None:
    RAN.clear()
    steps = [
        Reply(tool_calls=[ToolUse("delete_file", {"path": "/etc"})]),  # auto-activation
        Reply(tool_calls=[ToolUse("initialize_tools", {"tool_names": ["files", "browser"]})]),
        Reply(tool_calls=[ToolUse("delete_file", {"path": "/etc"}),  # active tool now
                          ToolUse("read_file", {"path": "a.txt"}),
                          ToolUse("open_url", {"url": "http://x"})]),
        Reply(text="done"),
    ]
    result, bodies, _ = await _run(steps)
    assert result.text == "done"
    assert RAN == ["read:a.txt"]
    first = tool_results(bodies[1])[0]
    assert first["is_error"] is True and "not enabled for this agent" in first["content"]
    loaded = str(tool_results(bodies[2])[0]["content"])
    assert "Activated: files" in loaded and "browser" in loaded
    third = tool_results(bodies[3])
    assert [r.get("is_error", False) for r in third] == [True, False, True]
    names = {t["name"] for t in bodies[3]["tools"]}
    assert "read_file" in names and not {"delete_file", "open_url"} & names


async def test_a_disallowed_call_in_the_stored_history_is_not_replayed() -> None:
    RAN.clear()
    history = [Message(role="user", content="go"), Message(role="assistant", content=[
        {"type": "tool_use", "id": "toolu_x", "name": "delete_file", "input": {"path": "/"}},
        {"type": "tool_use", "id": "toolu_y", "name": "open_url", "input": {"url": "http://x"}},
    ])]
    result, bodies, _ = await _run([Reply(text="ok")], history=history)
    assert RAN == [] and result.text == "ok"
    names = {t["name"] for t in bodies[0]["tools"]}
    assert not {"delete_file", "open_url"} & names


async def test_model_input_cannot_set_injected_parameters_or_identity() -> None:
    RAN.clear()
    steps = [
        Reply(tool_calls=[ToolUse("read_file", {"path": "a", "account": "globex"}),
                          ToolUse("read_file", {"path": "b"}),
                          ToolUse("whoami", {"ctx": {"identity": {"account": "globex"}}}),
                          ToolUse("whoami", {"identity": {"account": "globex"}}),
                          ToolUse("whoami", {}),
                          ToolUse("initialize_tools", {"tool_names": ["files"],
                                                        "account": "globex"})]),
        Reply(text="done"),
    ]
    _, bodies, _ = await _run(steps)
    results = tool_results(bodies[1])
    assert [r.get("is_error", False) for r in results] == [True, False, True, True, False, True]
    assert "account: Extra inputs are not permitted" in results[0]["content"]
    assert results[1]["content"] == "acme:b"  # the constructor got the run's account
    assert '"account": "acme"' in results[4]["content"]
    assert RAN == ["read:b"]


async def test_tenants_never_share_cached_results() -> None:
    steps: list[Step] = [Reply(tool_calls=[ToolUse("read_file", {"path": "same"}),
                                           ToolUse("whoami", {})]), Reply(text="done")]
    store = MemoryThreadStore()
    seen = {}
    async with FakeAnthropicServer(steps * 2) as server, server.client() as client, Runtime(
            load_settings(thread_store="memory"), client=client, store=store) as runtime:
        for account in ("acme", "globex"):
            await SecureAgent(runtime, identity={"account": account}).run("go")
            seen[account] = [r["content"] for r in tool_results(server.requests[-1].body)]
    assert seen["acme"][0] == "acme:same" and seen["globex"][0] == "globex:same"
    assert '"globex"' in seen["globex"][1] and "acme" not in seen["globex"][1]


def test_nothing_read_from_redis_is_unpickled_or_evaluated() -> None:
    """The modules that read Redis parse JSON only (the planted-pickle cases are in
    test_redis_faults.py)."""
    readers = ["agentrt/_redis.py", "agentrt/pipeline/_redis_codec.py",
               "agentrt/pipeline/shared_cache.py", "agentrt/pipeline/shared_flight.py",
               "agentrt/thread/redis.py", "agentrt/jit/redis_guides.py"]
    banned = re.compile(r"\b(pickle|marshal|shelve|dill|cloudpickle|eval|exec|yaml)\b\s*[.(]")
    for path in readers:
        source = (ROOT / path).read_text()
        code = "\n".join(line for line in source.splitlines()
                         if not line.lstrip().startswith("#"))
        assert not banned.search(code.replace('"""', "")), path


API_KEY = "sk-ant-api03-SECRETKEY-do-not-log-" + "Q" * 20
REDIS_PASSWORD = "redis-SECRET-pw-8d2f"


class Echo(Tool):
    @function(read_only=True)
    async def echo(self, text: str) -> str:
        """Echo."""
        return text


class PlainAgent(Agent):
    model = "claude-test"
    max_iterations = 4
    tools = (Echo,)


async def test_secrets_never_appear_in_logs(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    from redis_support import RedisServerProcess, free_port

    server = RedisServerProcess(tmp_path / "redis", extra=("--requirepass", REDIS_PASSWORD))
    server.start = _start_with_password(server)  # type: ignore[method-assign]
    server.start()
    out = io.StringIO()
    configure_logging("debug", "json", out)
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    try:
        urls = [f"redis://:{REDIS_PASSWORD}@127.0.0.1:{server.port}/0",  # works
                f"redis://default:{REDIS_PASSWORD}x@127.0.0.1:{server.port}/0",  # wrong one
                f"redis://:{REDIS_PASSWORD}@127.0.0.1:{free_port()}/0",  # nobody there
                f"redis://127.0.0.1:{server.port}/0?password={REDIS_PASSWORD}"]
        for url in urls:
            steps: list[Step] = [Reply(tool_calls=[ToolUse("echo", {"text": "hi"})]),
                                 Reply(text="ok"), Fault(401), Fault(500, should_retry=False)]
            async with FakeAnthropicServer(steps) as fake:
                settings = load_settings(thread_store="memory", redis_url=url,
                                         anthropic_api_key=API_KEY, redis_timeout=0.3,
                                         anthropic_base_url=fake.base_url, llm_max_retries=0,
                                         log_level="debug")
                async with Runtime(settings, store=MemoryThreadStore()) as runtime:
                    errors.append(repr(runtime.settings) + repr(runtime.redis))
                    agent = PlainAgent(runtime)
                    result = await agent.run("hello")
                    for _ in range(2):
                        try:
                            await agent.run("again", thread_id=result.thread_id)
                        except ModelError as exc:
                            errors.append(f"{exc!s} {exc!r}")
                assert API_KEY in str(fake.requests[0].headers)  # it was used
    finally:
        server.kill()
    text = out.getvalue() + caplog.text + "\n".join(errors)
    assert "redis.unavailable" in text and "llm.request" in text  # the logs were captured
    assert "***" in text, "the masked Redis URL should have been logged"
    for secret in (API_KEY, REDIS_PASSWORD, API_KEY[:20]):
        assert secret not in text, f"a secret leaked: {secret[:8]}..."


def _start_with_password(server: Any) -> Any:
    original = type(server).start

    def start(*, timeout: float = 10.0) -> None:
        import redis as sync_redis
        import redis_support

        answers = redis_support._answers

        def with_auth(port: int) -> bool:
            client = sync_redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD,
                                      socket_timeout=0.5, socket_connect_timeout=0.5)
            try:
                return bool(client.ping())
            except (sync_redis.RedisError, OSError):
                return False
            finally:
                client.close()

        redis_support._answers = with_auth
        try:
            original(server, timeout=timeout)
        finally:
            redis_support._answers = answers

    return start
