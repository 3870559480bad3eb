"""``search_tools``: the client-side tool search of ``deferred`` mode.

Instead of a listing of every loadable tool in ``initialize_tools``' description (read
on every request: some 2,100 tokens at 100 tools), a ``deferred`` agent's model gets
this tool and asks for what it needs. The answer names the best matches, one line
each, and carries a ``tool_reference`` block per match: the Messages API then expands
each referenced (deferred) definition inline, exactly as its own server-side search
does, so the request's tools list and its cached prefix never change. The found
functions are called directly; the first call activates their tool.

The ranking is :class:`~agentrt.jit.search.SearchIndex` over the allowed deferred
functions only, so a forbidden tool is never found. An allowed tool the manifest does
not describe is found by its name and summary: its line says to load it with
``initialize_tools`` (its functions are unknown until it is imported).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from ..log import get_logger
from ..tools import Tool, ToolContent, function, tool_reference

if TYPE_CHECKING:
    from .search import LazyIndex, SearchHit

__all__ = ["MAX_LIMIT", "SEARCH_TOOLS_FUNCTION", "ToolFinder", "render_hits"]

log = get_logger("agentrt.jit")

SEARCH_TOOLS_FUNCTION: Final = "search_tools"
MAX_LIMIT: Final = 20


class ToolFinder(Tool):
    """Finds the tools this agent can use, by what they do."""

    name = "tool_finder"

    def __init__(self, index: LazyIndex) -> None:
        self._index = index

    @function
    async def search_tools(self, query: str, limit: int = 5) -> str | ToolContent:
        """Find and load the tools for a task; then call a function it found.

        Args:
            query: The task in a few words, e.g. "refund a payment".
            limit: Most matches to load (1-20).
        """
        index = await self._index.aget()
        started = time.perf_counter()
        hits = index.search(query, min(max(limit, 1), MAX_LIMIT))
        log.debug("jit.search", query=query, limit=limit, found=[h.function or h.tool
                                                                  for h in hits],
                  duration_ms=round((time.perf_counter() - started) * 1000, 3))
        text = render_hits(query, hits)
        references = [tool_reference(hit.function) for hit in hits if hit.function]
        return ToolContent(text, *references) if references else text


def render_hits(query: str, hits: list[SearchHit]) -> str:
    """One line per match, best first: the function and its tool (the definition itself,
    description included, is what the reference reveals)."""
    if not hits:
        return (f"No tool matches {query!r}. Try other words: the action and the object "
                "it works on.")
    lines = [f"- {h.function} ({h.tool})" if h.function else
             f"- tool {h.tool}: {h.summary or 'no description'} (load it with "
             f"initialize_tools to see its functions)" for h in hits]
    return "Loaded:\n" + "\n".join(lines)
