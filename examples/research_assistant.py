"""Research assistant: just-in-time tools under an allow-list (configs/research_assistant.toml).

The agent starts with two tools: ``search_tools``, which finds what it may load, and
``initialize_tools``, which loads tools by name with their guides. The scripted model
(``REPLIES`` below) asks for ``web_search`` and ``presentation``;
``presentation`` requires ``files``, so files is activated too, first, and only the
three functions the config allows of it are shown. Later the model calls ``open_url`` of
the ``browser`` tool, which the config blocks: it gets an error result it can read, and
the run goes on. No tool module is imported before it is activated; the browser's never
is.

Run it offline on the fake Messages API server (no API key needed), from any
directory (the config's paths are relative to it: its manifest, the tools in
``examples/jit_tools``)::

    python examples/research_assistant.py

After changing a tool under examples/jit_tools/, regenerate the manifest::

    agentrt tools manifest --agent examples/research_assistant.py:ResearchAssistant

With ANTHROPIC_API_KEY set, the same agent runs against the real API.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from agentrt import Agent
from agentrt.testing import runtime_or_replay, show_run

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
    async with runtime_or_replay(REPLIES, thread_store="memory") as runtime:
        agent = ResearchAssistant(runtime)
        result = await show_run(agent, TASK)
        tools = await agent.tools_for(result.thread_id)
    print(f"\ntools active on the thread: {', '.join(tools.active_tools())}")
    print(f"tool modules imported: {imported_tool_modules()}")


# What the model answers when no API key is set (agentrt.testing.runtime_or_replay):
# reply n to a thread holding n assistant messages.
REPLIES = [
    {"text": "I'll load web search and the presentation tool.",
     "tool_calls": [{"name": "initialize_tools",
                     "input": {"tool_names": ["web_search", "presentation"]}}]},
    {"tool_calls": [{"name": "web_search", "input": {"query": "heat pump adoption Europe"}},
                    {"name": "web_search", "input": {"query": "heat pump adoption Europe"}},
                    {"name": "fetch_page", "input": {"url": "https://example.org/heat-pumps"}}]},
    {"text": "Saving notes, and opening the grid article in the browser.",
     "tool_calls": [{"name": "write_file",
                     "input": {"path": "notes/heat-pumps.md",
                               "text": "3-4x efficiency; EU sales doubled 2020-2023. Source: "
                                       "https://example.org/heat-pumps"}},
                    {"name": "open_url", "input": {"url": "https://example.org/grid"}}]},
    {"text": "The browser is not available to me; fetching the page as text instead.",
     "tool_calls": [{"name": "fetch_page", "input": {"url": "https://example.org/grid"}}]},
    {"tool_calls": [{"name": "make_slides",
                     "input": {"title": "Heat pumps in Europe",
                               "bullets": ["3-4 units of heat per unit of electricity",
                                           "EU sales doubled 2020-2023",
                                           "Grids adapt with time-of-use tariffs"]}}]},
    {"text": "Done: a 3-slide deck, \"Heat pumps in Europe\", with my notes in "
             "notes/heat-pumps.md. Sources: example.org/heat-pumps and example.org/grid."},
]


if __name__ == "__main__":
    anyio.run(main)
