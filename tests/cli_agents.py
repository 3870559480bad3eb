"""Agents the CLI tests load by file path (``tests/cli_agents.py:SlowAgent``), as users do."""

from __future__ import annotations

import anyio

from agentrt import Agent, Tool, function


class Archive(Tool):
    """A slow lookup: it takes as long as the call asks (so a test can interrupt it)."""

    @function(read_only=True)
    async def slow_lookup(self, topic: str, seconds: float) -> str:
        """Look a topic up in the archive.

        Args:
            topic: What to look up.
            seconds: How long the lookup takes.
        """
        await anyio.sleep(seconds)
        return f"{topic}: found"


class SlowAgent(Agent):
    system = "You look things up in the archive."
    tools = (Archive,)
    max_iterations = 4


class BrokenAgent(Agent):
    """Fails in a way agentrt does not know: the CLI reports an internal error."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")
