"""The research agent the integration tests drive (imported by the child process too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agentrt import Agent, Tool, function

from .helpers import CATALOG

if TYPE_CHECKING:
    from pathlib import Path


class Notes(Tool):
    """This thread's scratch notes (a core tool: always active)."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id

    @function(read_only=True)
    async def read_notes(self) -> str:
        """Read this thread's notes."""
        return f"notes of {self.thread_id}"


TOOLS: dict[str, Any] = {
    "web_search": True,
    "files": {"enabled": True, "methods": ["read_file", "write_file"]},
    "presentation": True,
    "mailer": True,
    "shouty": True,
    "browser": False,
}


def research_agent(manifest: Path, **config: Any) -> type[Agent]:
    class ResearchAgent(Agent):
        system = "You are a research assistant. Load tools with initialize_tools."
        max_iterations = 12
        core_tools = (Notes,)
        tool_catalog = CATALOG
        tool_config = {"manifest": str(manifest), "tools": TOOLS, "entry_points": False,
                       **config}

    return ResearchAgent


class CliResearchAgent(Agent):
    """For ``agentrt tools ... --agent jit.agents:CliResearchAgent --manifest FILE``."""

    core_tools = (Notes,)
    tool_catalog = CATALOG
    tool_config = {"tools": TOOLS, "entry_points": False, "manifest": None}
