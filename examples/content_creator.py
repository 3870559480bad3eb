"""Content creator: just-in-time tools with a blocked dependency (configs/content_creator.toml).

Same catalog as the research assistant, a stricter config: no ``files``, and
``publisher`` disabled. The scripted model (``REPLIES`` below)
loads ``presentation`` and ``images``. Presentation requires files, which this agent
may not use, so the activation report says it is degraded (its dependency is
blocked) instead of failing silently later. At the end the model tries to publish
the post: ``publish_post`` is refused with an error result naming the reason, and
the model tells the user a person must publish it.

Run it offline on the fake Messages API server (no API key needed), from any
directory (the config's paths are relative to it: its manifest, the tools in
``examples/jit_tools``)::

    python examples/content_creator.py

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from agentrt import Agent
from agentrt.testing import runtime_or_replay, show_run

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "content_creator.toml"
TASK = "Write a short illustrated explainer on heat pumps with a 3-slide deck, and publish it."
TOOL_MODULES = ("search", "files", "presentation", "browser", "images", "publisher")


class ContentCreator(Agent):
    system = ("You write short illustrated explainers. Load the tools you need with "
              "initialize_tools.")
    tool_config = CONFIG
    max_iterations = 8


def imported_tool_modules() -> str:
    loaded = [m for m in TOOL_MODULES if f"jit_tools.{m}" in sys.modules]
    never = [m for m in TOOL_MODULES if m not in loaded]
    return f"{', '.join(loaded) or 'none'} (never imported: {', '.join(never) or 'none'})"


async def main() -> None:
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        agent = ContentCreator(runtime)
        result = await show_run(agent, TASK)
        tools = await agent.tools_for(result.thread_id)
    print(f"\ntools active on the thread: {', '.join(tools.active_tools())}")
    print(f"tool modules imported: {imported_tool_modules()}")


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "Loading the presentation and image tools.",
     "tool_calls": [{"name": "initialize_tools",
                     "input": {"tool_names": ["presentation", "images"]}}]},
    {"tool_calls": [{"name": "web_search", "input": {"query": "how do heat pumps work"}},
                    {"name": "generate_image",
                     "input": {"prompt": "a heat pump moving heat from cold outdoor air into a "
                                         "warm house"}}]},
    {"tool_calls": [{"name": "make_slides",
                     "input": {"title": "Heat pumps explained",
                               "bullets": ["They move heat, they do not make it",
                                           "3-4 units of heat per unit of power",
                                           "Work down to -20 °C"]}}]},
    {"tool_calls": [{"name": "publish_post",
                     "input": {"title": "Heat pumps, explained",
                               "body": "Heat pumps move heat instead of making it..."}}]},
    {"text": "The explainer, its illustration and a 3-slide deck are ready. I could not "
             "publish it: publishing is disabled for me, so a person on your team needs to "
             "post it. Note the deck could not be saved as a file, since I have no file access."},
]


if __name__ == "__main__":
    anyio.run(main)
