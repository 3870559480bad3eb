"""One caller of the injected-constructor isolation test, in its own OS process: a JIT
agent (on the in-process model double) whose tool is built with the caller's account id,
injected from ``deps``, on a shared Redis cache. Every caller has the same identity (one
tenant): only the injected value tells them apart.

argv: redis_url prefix account_id thread_id. Prints the tool result and its source.
"""

from __future__ import annotations

import json
import sys

import anyio

from agentrt import Agent, Runtime, Tool, function, load_settings
from agentrt.testing import Reply, ScriptedModel, ToolUse


class Accounts(Tool):
    name = "accounts"

    def __init__(self, account_id: str) -> None:  # injected from deps by the JIT loader
        self.account_id = account_id

    @function(read_only=True, ttl=600)
    async def balance(self) -> str:
        """The balance of the account this tool was built for."""
        return f"balance-of-{self.account_id}"


class Bank(Agent):
    tool_catalog = ("tests.reliability.injected_child:Accounts",)
    tool_config = {"entry_points": False, "manifest": None, "tool_loading": "append"}


async def main() -> None:
    url, prefix, account, thread = sys.argv[1:5]
    settings = load_settings(thread_store="memory", redis_url=url, redis_prefix=prefix)
    model = ScriptedModel([Reply(tool_calls=[ToolUse("balance")]), Reply(text="done")])
    async with Runtime(settings, model=model) as runtime:
        agent = Bank(runtime, identity={"tenant": "acme"}, deps={"account_id": account})
        events = [e async for e in agent.stream("my balance?", thread_id=thread)]
    finished = next(e for e in events if type(e).__name__ == "ToolCallFinished")
    sys.stdout.write(json.dumps({"content": finished.content, "source": finished.source})
                     + "\n")


if __name__ == "__main__":
    anyio.run(main)
