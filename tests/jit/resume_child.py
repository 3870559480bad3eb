"""Child process: resume a thread from a SQLite file against the parent's fake server.

argv: manifest db thread_id base_url task [tool_loading]. Prints the run's result as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anthropic
import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `jit` package

from agentrt import Runtime, SQLiteThreadStore, configure_logging, load_settings
from jit.agents import research_agent


async def main(manifest: str, db: str, thread_id: str, base_url: str, task: str,
               loading: str = "deferred") -> None:
    configure_logging("warning", "json", sys.stderr)  # stdout carries the result only
    settings = load_settings(stream=False, llm_max_retries=0)
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="test-key") as client, \
            SQLiteThreadStore(db) as store, Runtime(settings, client=client, store=store) as rt:
        agent_cls = research_agent(Path(manifest), tool_loading=loading)
        agent = agent_cls(rt, identity={"account": "acme"})
        result = await agent.run(task, thread_id=thread_id)
    sys.stdout.write(json.dumps(result.to_json()) + "\n")


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:7])
