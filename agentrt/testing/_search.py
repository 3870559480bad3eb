"""The API's server-side tool search, emulated: which deferred tools a query finds.

The regex variant runs Python's ``re.search`` (patterns of at most 200 characters)
and the BM25 variant ranks by Okapi BM25; both read the same text of each deferred
tool (its name, description, argument names and argument descriptions) and answer
at most five references, in the shapes of ``tool_search_tool_result`` content. The
real ranking is the API's own; these are deterministic stand-ins with the same
inputs, limits and error shapes, so a test can predict what a search returns.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["MAX_PATTERN_CHARS", "MAX_RESULTS", "SearchKind", "run_search", "search_kind",
           "search_text"]

MAX_PATTERN_CHARS = 200
MAX_RESULTS = 5
_K1, _B = 1.2, 0.75
_WORD = re.compile(r"[a-z0-9]+")

SearchKind = Literal["regex", "bm25"]


def search_kind(tool: Mapping[str, Any]) -> SearchKind | None:
    """``regex`` or ``bm25`` for a tool search tool (dated or undated type), else None."""
    kind = str(tool.get("type", ""))
    if kind.startswith("tool_search_tool_regex"):
        return "regex"
    if kind.startswith("tool_search_tool_bm25"):
        return "bm25"
    return None


def search_text(tool: Mapping[str, Any]) -> str:
    """What a search reads of a tool: name, description, argument names and descriptions."""
    parts = [str(tool.get("name", "")), str(tool.get("description", ""))]
    schema = tool.get("input_schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    for name, prop in (properties or {}).items():
        parts.append(str(name))
        if isinstance(prop, dict) and prop.get("description"):
            parts.append(str(prop["description"]))
    return "\n".join(parts)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "tool_search_tool_result_error", "error_code": code, "error_message": message}


def _result(names: Sequence[str]) -> dict[str, Any]:
    return {"type": "tool_search_tool_search_result",
            "tool_references": [{"type": "tool_reference", "tool_name": n} for n in names]}


def run_search(kind: SearchKind, query: str,
               tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``content`` of a ``tool_search_tool_result``: references to the deferred
    ``tools`` the query finds, best first, or an error object."""
    deferred = [t for t in tools if t.get("defer_loading") is True and "name" in t]
    if kind == "regex":
        if len(query) > MAX_PATTERN_CHARS:
            return _error("invalid_tool_input",
                          f"pattern is {len(query)} characters long; the limit is "
                          f"{MAX_PATTERN_CHARS}")
        try:
            pattern = re.compile(query)
        except re.error as exc:
            return _error("invalid_tool_input", f"invalid regular expression: {exc}")
        found = [str(t["name"]) for t in deferred if pattern.search(search_text(t))]
        return _result(found[:MAX_RESULTS])
    return _result(_bm25(query, deferred)[:MAX_RESULTS])


def _bm25(query: str, tools: Sequence[Mapping[str, Any]]) -> list[str]:
    documents = [Counter(_WORD.findall(search_text(t).lower())) for t in tools]
    if not documents:
        return []
    average = sum(sum(d.values()) for d in documents) / len(documents) or 1.0
    terms = set(_WORD.findall(query.lower()))
    idf = {}
    for term in terms:
        having = sum(1 for d in documents if term in d)
        idf[term] = math.log((len(documents) - having + 0.5) / (having + 0.5) + 1)
    scored = []
    for index, (tool, words) in enumerate(zip(tools, documents, strict=True)):
        length = sum(words.values())
        score = sum(idf[t] * words[t] * (_K1 + 1)
                    / (words[t] + _K1 * (1 - _B + _B * length / average))
                    for t in terms if words[t])
        if score > 0:
            scored.append((-score, index, str(tool["name"])))
    return [name for _, _, name in sorted(scored)]
