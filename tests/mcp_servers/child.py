"""One OS process of the MCP tests that need several, or a process exit.

``exit MANIFEST REPO``: a git call, then it prints the pids of its server children and
returns from ``asyncio.run`` without closing its runtime (the loop's end must still end
the server). ``redis URL PREFIX MANIFEST REPO``: counts itself ready in Redis, waits for
the parent's go, asks ``git_log`` of a public git server, prints its run's stats.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import anyio

from agentrt import Agent, Runtime, load_settings
from agentrt._redis import RedisGate
from agentrt.testing import Reply, ScriptedModel, ToolUse

from .support import GIT, server_children

GIVE_UP = 60.0


def agent_class(manifest: str, **server: Any) -> type[Agent]:
    class Child(Agent):
        mcp_servers = {"git": GIT.model_copy(update=server)}
        tool_config = {"manifest": manifest}

    return Child


async def exit_without_closing(manifest: str, repo: str) -> None:
    steps = [Reply(tool_calls=[ToolUse("git_status", {"repo_path": repo})]), Reply(text="ok")]
    runtime = Runtime(load_settings(thread_store="memory"), model=ScriptedModel(steps))
    await agent_class(manifest)(runtime).run("status")
    sys.stdout.write(json.dumps(server_children()) + "\n")  # no aclose: the loop ends


async def shared_log(url: str, prefix: str, manifest: str, repo: str) -> None:
    gate = RedisGate(url, prefix=prefix)
    await gate.client.incr(gate.key("ready"))
    with anyio.fail_after(GIVE_UP):
        while not await gate.client.get(gate.key("go")):
            await anyio.sleep(0.01)
    steps = [Reply(tool_calls=[ToolUse("git_log", {"repo_path": repo})]), Reply(text="ok")]
    settings = load_settings(thread_store="memory", redis_url=url, redis_prefix=prefix)
    async with Runtime(settings, model=ScriptedModel(steps)) as runtime:
        result = await agent_class(manifest, public=True)(runtime).run("log")
    await gate.aclose()
    sys.stdout.write(json.dumps(result.stats.to_json()) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "exit":
        asyncio.run(exit_without_closing(*sys.argv[2:]))
    else:
        asyncio.run(shared_log(*sys.argv[2:]))
