"""Content creator: just-in-time tools with a blocked dependency (configs/content_creator.toml).

Same catalog as the research assistant, a stricter config: no ``files``, and
``publisher`` disabled. The scripted model (examples/content_creator.replay.json)
loads ``presentation`` and ``images``. Presentation requires files, which this agent
may not use, so the activation report says it is degraded (its dependency is
blocked) instead of failing silently later. At the end the model tries to publish
the post: ``publish_post`` is refused with an error result naming the reason, and
the model tells the user a person must publish it.

Run it offline on the fake Messages API server (no API key needed), from the
repository's root (the config names ``configs/tools.manifest.json``)::

    python examples/content_creator.py

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

from pathlib import Path

import anyio
from _offline import open_runtime, show_run
from research_assistant import imported_tool_modules

from agentrt import Agent

REPLAY = Path(__file__).with_name("content_creator.replay.json")
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "content_creator.toml"
TASK = "Write a short illustrated explainer on heat pumps with a 3-slide deck, and publish it."


class ContentCreator(Agent):
    system = ("You write short illustrated explainers. Load the tools you need with "
              "initialize_tools.")
    tool_config = CONFIG
    max_iterations = 8


async def main() -> None:
    async with open_runtime(REPLAY, thread_store="memory") as runtime:
        agent = ContentCreator(runtime)
        result = await show_run(agent, TASK)
        tools = await agent.tools_for(result.thread_id)
    print(f"\ntools active on the thread: {', '.join(tools.active_tools())}")
    print(f"tool modules imported: {imported_tool_modules()}")


if __name__ == "__main__":
    anyio.run(main)
