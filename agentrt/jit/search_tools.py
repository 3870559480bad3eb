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

Searching first (``search_first``, off by default): a search is a round trip (the model
asks, the client answers, the model is asked again), which the API's own search makes
inside the model's turn. So before the first request of a run the user's new message
is itself searched, and when it finds functions the thread has not revealed yet the
run stores the exchange the model would have had, a ``search_tools`` call with the
message as its query and its answer (:func:`first_search`): the first request already
shows the best matches, and a task that says what it needs is answered without the
round trip. It also makes the first request of a conversation bigger by the revealed
definitions, which is what lets a small prompt reach the model's minimum cacheable
length from its first request (see docs/concepts/jit.md for the figures).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Final

from ..log import get_logger
from ..tools import Tool, ToolContent, function, tool_reference

if TYPE_CHECKING:
    from collections.abc import Set

    from .search import LazyIndex, SearchHit

__all__ = ["FIRST_QUERY_CHARS", "MAX_LIMIT", "SEARCH_TOOLS_FUNCTION", "ToolFinder",
           "first_search", "render_hits"]

log = get_logger("agentrt.jit")

SEARCH_TOOLS_FUNCTION: Final = "search_tools"
MAX_LIMIT: Final = 20
DEFAULT_LIMIT: Final = 5
FIRST_QUERY_CHARS: Final = 500  # of a user message searched first: its start says the task


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


async def first_search(index: LazyIndex, text: str, revealed: Set[str]
                       ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The ``tool_use`` block of a ``search_tools`` call for ``text`` (a user's message,
    its first :data:`FIRST_QUERY_CHARS` characters) and its ``tool_result``; None when
    the search finds no function outside ``revealed`` (those the thread revealed
    already): then nothing is worth the exchange's tokens."""
    query = " ".join(text.split())[:FIRST_QUERY_CHARS]
    if not query:
        return None
    found = await index.aget()
    hits = [h for h in found.search(query, DEFAULT_LIMIT) if h.function]
    if not any(h.function not in revealed for h in hits):
        return None
    call_id = f"toolu_{os.urandom(12).hex()}"
    use = {"type": "tool_use", "id": call_id, "name": SEARCH_TOOLS_FUNCTION,
           "input": {"query": query, "limit": DEFAULT_LIMIT}}
    content = [{"type": "text", "text": render_hits(query, hits)},
               *(tool_reference(h.function) for h in hits)]
    return use, {"type": "tool_result", "tool_use_id": call_id, "content": content}
