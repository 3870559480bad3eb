"""Research assistant: just-in-time tools under an allow-list (configs/research_assistant.toml).

The agent starts with two tools: ``search_tools``, which finds what it may load, and
``initialize_tools``, which loads tools by name with their guides. The scripted model
(examples/research_assistant.replay.json) asks for ``web_search`` and ``presentation``;
``presentation`` requires ``files``, so files is activated too, first, and only the
three functions the config allows of it are shown. Later the model calls ``open_url`` of
the ``browser`` tool, which the config blocks: it gets an error result it can read, and
the run goes on. No tool module is imported before it is activated; the browser's never
is.

Run it offline on the fake Messages API server (no API key needed), from the
repository's root (the config names ``configs/tools.manifest.json``)::

    python examples/research_assistant.py

After changing a tool under examples/jit_tools/, regenerate the manifest::

    agentrt tools manifest --agent examples/research_assistant.py:ResearchAssistant

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
from _offline import open_runtime, show_run

from agentrt import Agent

REPLAY = Path(__file__).with_name("research_assistant.replay.json")
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "research_assistant.toml"
TASK = "Research how heat pumps are doing in Europe and make me a short slide deck."
TOOL_MODULES = ("search", "files", "presentation", "browser", "images", "publisher")


class ResearchAssistant(Agent):
    system = ("You are a research assistant. Load the tools you need with initialize_tools, "
              "keep notes in files, cite your sources.")
    tool_config = CONFIG
    max_iterations = 10


def imported_tool_modules() -> str:
    loaded = [m for m in TOOL_MODULES if f"jit_tools.{m}" in sys.modules]
    never = [m for m in TOOL_MODULES if m not in loaded]
    return f"{', '.join(loaded) or 'none'} (never imported: {', '.join(never) or 'none'})"


async def main() -> None:
    async with open_runtime(REPLAY, thread_store="memory") as runtime:
        agent = ResearchAssistant(runtime)
        result = await show_run(agent, TASK)
        tools = await agent.tools_for(result.thread_id)
    print(f"\ntools active on the thread: {', '.join(tools.active_tools())}")
    print(f"tool modules imported: {imported_tool_modules()}")


if __name__ == "__main__":
    anyio.run(main)
