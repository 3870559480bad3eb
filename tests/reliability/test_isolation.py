"""No result crosses from one caller to another unless its function says it may
(``public=True``): each caller in its own OS process, all on one real redis-server."""

from __future__ import annotations

import json
import sys
from typing import Any

import processes
import pytest

from agentrt import Agent, Runtime, Tool, function, load_settings
from agentrt.testing import FakeAnthropicServer, capture_events

pytestmark = [pytest.mark.integration, pytest.mark.redis]


def _call(url: str, prefix: str, function: str, thread: str, user: str,
          identity: dict[str, str] | None = None) -> dict[str, Any]:
    args = [sys.executable, "-m", "tests.reliability.isolation_child", url, prefix, function,
            thread, user, *([json.dumps(identity)] if identity is not None else [])]
    done = processes.run(args, capture_output=True, text=True, timeout=60, check=True)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_a_result_that_depends_on_the_caller_never_reaches_another(
        redis_url: str, redis_prefix: str) -> None:
    """Failed before: with no identity set, bob got secret-of-alice from the shared Redis
    cache (the key held the arguments only, and the read reads ctx.deps)."""
    alice = _call(redis_url, redis_prefix, "my_secret", "thr_alice", "alice")
    bob = _call(redis_url, redis_prefix, "my_secret", "thr_bob", "bob")
    assert (alice["content"], bob["content"]) == ("secret-of-alice", "secret-of-bob")
    assert bob["source"] == "executed"
    # within its thread a caller's own result is still shared (another process, one thread)
    again = _call(redis_url, redis_prefix, "my_secret", "thr_alice", "alice")
    assert (again["content"], again["source"]) == ("secret-of-alice", "shared_cache")


def test_a_public_result_is_shared_by_every_caller(redis_url: str, redis_prefix: str) -> None:
    first = _call(redis_url, redis_prefix, "opening_hours", "thr_a", "alice")
    second = _call(redis_url, redis_prefix, "opening_hours", "thr_b", "bob",
                   identity={"account": "globex"})
    assert (first["source"], second["source"]) == ("executed", "shared_cache")


def test_callers_with_an_identity_share_within_it_only(redis_url: str,
                                                       redis_prefix: str) -> None:
    acme = {"account": "acme"}
    one = _call(redis_url, redis_prefix, "my_secret", "thr_1", "alice", identity=acme)
    two = _call(redis_url, redis_prefix, "my_secret", "thr_2", "alice", identity=acme)
    other = _call(redis_url, redis_prefix, "my_secret", "thr_3", "bob",
                  identity={"account": "globex"})
    assert (one["source"], two["source"], other["source"]) == (
        "executed", "shared_cache", "executed")
    assert other["content"] == "secret-of-bob"


class Hours(Tool):
    @function(read_only=True, public=True)
    async def opening_hours(self) -> str:
        """The same for everyone."""
        return "9-17"

    @function(read_only=True)
    async def my_orders(self) -> str:
        """The caller's orders."""
        return "[]"


@pytest.mark.anyio
async def test_an_agent_without_identity_on_a_shared_cache_names_its_public_functions(
        redis_url: str, redis_prefix: str) -> None:
    class Shop(Agent):
        tools = (Hours,)

    settings = load_settings(thread_store="memory", redis_url=redis_url,
                             redis_prefix=redis_prefix)
    async with FakeAnthropicServer([]) as fake, fake.client() as client:
        with capture_events() as events:
            async with Runtime(settings, client=client) as runtime:
                Shop(runtime)
                Shop(runtime)  # once per runtime
                Shop(runtime, identity={"account": "acme"})  # has one: nothing to say
    warned = [e for e in events if e["event"] == "agent.results_shared_across_callers"]
    assert len(warned) == 1 and warned[0]["functions"] == ["opening_hours"]


def _injected(url: str, prefix: str, account: str, thread: str) -> dict[str, Any]:
    args = [sys.executable, "-m", "tests.reliability.injected_child", url, prefix, account,
            thread]
    done = processes.run(args, capture_output=True, text=True, timeout=60, check=True)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_a_tool_built_for_one_caller_never_answers_another(redis_url: str,
                                                            redis_prefix: str) -> None:
    """Same tenant identity, a tool constructed with the caller's injected account id: the
    injected value is part of the key, so bob never gets alice's balance."""
    alice = _injected(redis_url, redis_prefix, "alice", "thr_a")
    bob = _injected(redis_url, redis_prefix, "bob", "thr_b")
    again = _injected(redis_url, redis_prefix, "alice", "thr_c")
    assert (alice["content"], bob["content"]) == ("balance-of-alice", "balance-of-bob")
    assert (alice["source"], bob["source"]) == ("executed", "executed")
    assert (again["content"], again["source"]) == ("balance-of-alice", "shared_cache")
