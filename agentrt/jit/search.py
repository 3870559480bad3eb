"""SearchIndex: the client-side tool search behind ``search_tools`` (``deferred`` mode).

The model finds catalog functions by what they do instead of reading a listing of the
whole catalog on every request. Each allowed deferred function is one document: its
name, description and parameter names and descriptions (its definition as the
manifest holds it, so nothing is imported) and its tool's name and summary. A query
is ranked with Okapi BM25 over those words, after light normalisation (snake_case
and camelCase split, lower case, a crude English stemmer, a few stop words): the
phrasing benchmark in ``bench/search_quality.py`` measured what each step buys.

The index is built once per catalog and policy (``Catalog.memo``, on the Runtime's
:class:`~agentrt.jit.cache.CatalogCache`, so it lives as long as the manifest it
came from) from the same deferred definitions the requests carry: a forbidden tool
has no document, so no query can find it. A query costs one pass over the postings of
its words, their BM25 weights precomputed at build time (well under a millisecond
at a thousand tools).
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["SearchDocument", "SearchHit", "SearchIndex", "build_index", "document_of", "terms"]

_K1, _B = 1.2, 0.75
_WORD = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Za-z][a-z]*|\d+")
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "get", "i", "in", "is",
    "it", "me", "my", "of", "on", "or", "our", "please", "that", "the", "this", "to", "us",
    "we", "with", "you", "your", "can", "do", "does", "need", "want", "some", "all", "any"})
# the tool's name and the function's name say more than a word of its description
_NAME_WEIGHT, _PARAMETER_WEIGHT = 3, 1


def _stem(word: str) -> str:
    """Folds the common English endings, so "invoices", "invoiced" and "invoicing" meet."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            word = word[: -len(suffix)] + keep
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The normalised words of ``text``, in order (repeats kept: they are term counts)."""
    return [_stem(w) for w in (m.lower() for m in _WORD.findall(text))
            if len(w) > 1 and w not in _STOP]


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """One searchable function: ``tool`` defines it, ``summary`` is its one-line
    description, ``words`` the weighted words it is found by."""

    function: str
    tool: str
    summary: str
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A ranked match: the function, its tool, its summary and its BM25 score."""

    function: str
    tool: str
    summary: str
    score: float


def document_of(definition: Mapping[str, Any], tool: str, tool_summary: str) -> SearchDocument:
    """A function's document, from its ``tools[i]`` definition and its tool's summary."""
    name = str(definition.get("name", ""))
    description = str(definition.get("description") or "")
    words = terms(name) * _NAME_WEIGHT + terms(tool) * _NAME_WEIGHT + terms(description)
    words += terms(tool_summary)
    schema = definition.get("input_schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    for parameter, spec in (properties or {}).items():
        words += terms(str(parameter)) * _PARAMETER_WEIGHT
        if isinstance(spec, dict) and spec.get("description"):
            words += terms(str(spec["description"]))
    summary = next((line.strip() for line in description.splitlines() if line.strip()), "")
    return SearchDocument(name, tool, summary, tuple(words))


class SearchIndex:
    """BM25 over a fixed set of documents. Immutable once built; :meth:`search` is pure."""

    def __init__(self, documents: Iterable[SearchDocument]) -> None:
        self.documents: tuple[SearchDocument, ...] = tuple(documents)
        count = len(self.documents)
        lengths = [len(d.words) for d in self.documents]
        average = (sum(lengths) / count) if count else 1.0
        frequencies: dict[str, dict[int, int]] = {}
        for index, document in enumerate(self.documents):
            for word in document.words:
                postings = frequencies.setdefault(word, {})
                postings[index] = postings.get(index, 0) + 1
        # word -> ((document, weight), ...): BM25 with everything but the query folded in
        self._postings: dict[str, tuple[tuple[int, float], ...]] = {}
        for word, postings in frequencies.items():
            idf = math.log((count - len(postings) + 0.5) / (len(postings) + 0.5) + 1)
            self._postings[word] = tuple(
                (index, idf * tf * (_K1 + 1)
                 / (tf + _K1 * (1 - _B + _B * lengths[index] / (average or 1.0))))
                for index, tf in postings.items())

    def __len__(self) -> int:
        return len(self.documents)

    def search(self, query: str, limit: int = 5) -> list[SearchHit]:
        """The ``limit`` best matches of ``query``, best first (ties by catalog order);
        a document must share at least one word with the query."""
        scores: dict[int, float] = {}
        get = scores.get
        for word in set(terms(query)):
            for index, weight in self._postings.get(word, ()):
                scores[index] = get(index, 0.0) + weight
        best = heapq.nsmallest(max(0, limit), scores.items(), key=lambda item: (-item[1], item[0]))
        return [SearchHit(self.documents[i].function, self.documents[i].tool,
                          self.documents[i].summary, score) for i, score in best]


def build_index(definitions: Sequence[Mapping[str, Any]], owners: Mapping[str, str],
                summaries: Mapping[str, str]) -> SearchIndex:
    """The index of ``definitions`` (``owners``: function -> tool; ``summaries``: tool ->
    its one-line summary)."""
    return SearchIndex(document_of(d, owners.get(str(d.get("name")), ""),
                                   summaries.get(owners.get(str(d.get("name")), ""), ""))
                       for d in definitions)
