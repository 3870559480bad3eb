"""SearchIndex: the client-side tool search behind ``search_tools`` (``deferred`` mode).

The model finds catalog functions by what they do instead of reading a listing of the
whole catalog on every request. Each allowed deferred function is one document: its
name, description and parameter names and descriptions (its definition as the
manifest holds it, so nothing is imported) and its tool's name and summary. A query
is ranked with Okapi BM25 over those words, after light normalisation (snake_case
and camelCase split, lower case, a crude English stemmer, a few stop words, and a
small table of words tasks and API docs put differently, such as "client" and
"customer"): ``bench/search_quality.py --variants`` measures what each step buys.

The index is built once per catalog and policy (``Catalog.memo``, on the Runtime's
:class:`~agentrt.jit.cache.CatalogCache`, so it lives as long as the manifest it
came from) from the same deferred definitions the requests carry, on the first
search (:class:`LazyIndex`): a forbidden tool has no document, so no query can find
it. The normalised words of every manifest function are stored with the manifest
(its ``search`` section, :func:`manifest_section`, written by ``agentrt tools
manifest``), so the build only counts them: a function whose tool's fingerprint or
whose normalisation rules changed since (:data:`SECTION_FORMAT`) is normalised again
in memory, as is everything when the section is missing. A query costs one pass over
the postings of its words, their BM25 weights precomputed at build time (well under a
millisecond at a thousand tools).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ..log import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = ["SECTION", "SECTION_FORMAT", "LazyIndex", "SearchDocument", "SearchHit",
           "SearchIndex", "StoredWords", "Terms", "build_index", "document_of",
           "manifest_section", "stored_words", "terms"]

log = get_logger("agentrt.jit")

_K1, _B = 1.2, 0.75
_WORD = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z]|[^A-Za-z]|$)|[A-Za-z][a-z]*|\d+")
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "get", "i", "in", "is",
    "it", "me", "my", "of", "on", "or", "our", "please", "that", "the", "this", "to", "us",
    "we", "with", "you", "your", "can", "do", "does", "need", "want", "some", "all", "any"})
# the tool's name and the function's name say more than a word of its description
_NAME_WEIGHT, _PARAMETER_WEIGHT = 3, 1
# A match scoring under this share of the best one's shares only the catalog's most
# common words with the query: revealing its definition would cost tokens for nothing.
_CUTOFF = 0.2


_SUFFIXES = (("ations", ""), ("ation", ""), ("ments", ""), ("ment", ""), ("ies", "y"),
             ("ing", ""), ("ed", ""), ("er", ""), ("es", ""), ("s", ""))


def _stem(word: str) -> str:
    """Folds the common English endings, so "invoices", "invoiced" and "invoicing" meet
    (and "reimbursed" and "reimbursement", "remind" and "reminder")."""
    for suffix, keep in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            word = word[: -len(suffix)] + keep
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


# Words a task and an API's docs often put differently: each group is searched as one
# word. General business-software vocabulary, not the names of any catalog's tools.
_GROUPS = (
    "customer client", "cancel stop terminate", "pause suspend", "ticket case",
    "refund reimburse moneyback", "price cost cheap cheapest rate fee pricing",
    "csv spreadsheet excel", "meeting call appointment", "contract agreement nda",
    "sign signature signed", "remind nudge chase followup", "user teammate colleague",
    "deactivate disable revoke offboard shutoff", "login signin", "low runout",
    "rollout percent", "parcel package box", "delete erase", "merge combine duplicate",
    "email mail", "salary salaries wage", "vacation holiday leave timeoff", "outage downtime",
    "satisfaction happy", "sms text", "export download", "audit who",
)
_PHRASES = re.compile(r"\b(money back|shut off|run out|log in|sign in|time off|follow up|"
                      r"roll out)\b", re.IGNORECASE)
_SYNONYMS = {_stem(word): _stem(group.split()[0])
             for group in _GROUPS for word in group.split()}


class Terms:
    """:func:`terms` with a memo of the words and texts it has normalised: a catalog
    repeats both (a thousand tools' "The record's id."), and an index is built once."""

    def __init__(self) -> None:
        self._words: dict[str, str] = {}
        self._texts: dict[str, list[str]] = {}

    def __call__(self, text: str) -> list[str]:
        found = self._texts.get(text)
        if found is None:
            found = self._texts[text] = self._split(text)
        return found

    def _split(self, text: str) -> list[str]:
        text = _PHRASES.sub(lambda m: m.group(0).replace(" ", "").lower(), text)
        out = []
        words = self._words
        for token in _WORD.findall(text):
            word = words.get(token)
            if word is None:
                word = words[token] = _normalise(token)
            if word:
                out.append(word)
        return out


def _normalise(token: str) -> str:
    """One token's searched form, or "" for a stop word or a single letter."""
    word = token.lower()
    if len(word) < 2 or word in _STOP:
        return ""
    word = _stem(word)
    return "" if word in _STOP else _SYNONYMS.get(word, word)


def terms(text: str) -> list[str]:
    """The normalised words of ``text``, in order (repeats kept: they are term counts)."""
    return Terms()(text)


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


def document_of(definition: Mapping[str, Any], tool: str, tool_summary: str,
                terms: Terms | None = None) -> SearchDocument:
    """A function's document, from its ``tools[i]`` definition and its tool's summary."""
    terms = terms or Terms()
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
    return SearchDocument(name, tool, _first_line(definition), tuple(words))


def _first_line(definition: Mapping[str, Any]) -> str:
    description = str(definition.get("description") or "")
    return next((line.strip() for line in description.splitlines() if line.strip()), "")


# -- the manifest's section ---------------------------------------------------------

SECTION = "search"
# What a stored word list depends on besides the tool (its fingerprint): the rules above.
SECTION_FORMAT = hashlib.sha256(json.dumps(
    [_WORD.pattern, _PHRASES.pattern, sorted(_STOP), _SUFFIXES, _GROUPS, _NAME_WEIGHT,
     _PARAMETER_WEIGHT, 1]).encode()).hexdigest()[:16]
StoredWords = dict[str, dict[str, tuple[str, ...]]]  # tool -> function -> its words


def manifest_section(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``search`` section of a manifest of these entries (from
    :func:`~agentrt.jit.manifest.describe`): each Python tool's fingerprint and each of
    its functions' words, space-separated. MCP tools are named per agent (a prefix), so
    theirs are normalised when an index is built."""
    normalised = Terms()
    tools = {}
    for entry in entries:
        if entry.get("kind") != "python":
            continue
        functions = {}
        for fn in entry.get("functions", []):
            document = document_of(fn["definition"], entry["name"], entry.get("summary", ""),
                                   normalised)
            functions[document.function] = " ".join(document.words)
        tools[entry["name"]] = {"fingerprint": entry.get("fingerprint"), "functions": functions}
    return {"format": SECTION_FORMAT, "tools": tools}


def stored_words(section: Mapping[str, Any] | None,
                 fingerprints: Mapping[str, str | None]) -> StoredWords | None:
    """The words a manifest's ``search`` section holds for the tools of ``fingerprints``
    (tool -> its fingerprint now) that it describes as they are; None when there is no
    section or it was written under other rules (an older or newer agentrt)."""
    if section is None or section.get("format") != SECTION_FORMAT:
        if section is not None:
            log.info("jit.search_section_stale", hint="written by another agentrt version; "
                     "the index is built in memory (regenerate the manifest)")
        return None
    tools = section.get("tools")
    if not isinstance(tools, dict):
        return None
    found: StoredWords = {}
    for tool, fingerprint in fingerprints.items():
        data = tools.get(tool)
        if (isinstance(data, dict) and fingerprint is not None
                and data.get("fingerprint") == fingerprint
                and isinstance(data.get("functions"), dict)):
            found[tool] = {fn: tuple(str(words).split())
                           for fn, words in data["functions"].items()}
    return found


class SearchIndex:
    """BM25 over a fixed set of documents. Immutable once built; :meth:`search` is pure."""

    def __init__(self, documents: Iterable[SearchDocument], terms: Terms | None = None) -> None:
        self.documents: tuple[SearchDocument, ...] = tuple(documents)
        self._terms = terms or Terms()
        count = len(self.documents)
        lengths = [len(d.words) for d in self.documents]
        average = (sum(lengths) / count) if count else 1.0
        frequencies: dict[str, list[tuple[int, int]]] = {}
        for index, document in enumerate(self.documents):
            for word, tf in Counter(document.words).items():
                frequencies.setdefault(word, []).append((index, tf))
        # word -> ((document, weight), ...): BM25 with everything but the query folded in
        norms = [_K1 * (1 - _B + _B * length / (average or 1.0)) for length in lengths]
        self._postings: dict[str, tuple[tuple[int, float], ...]] = {}
        for word, postings in frequencies.items():
            idf = math.log((count - len(postings) + 0.5) / (len(postings) + 0.5) + 1)
            self._postings[word] = tuple((index, idf * tf * (_K1 + 1) / (tf + norms[index]))
                                         for index, tf in postings)

    def __len__(self) -> int:
        return len(self.documents)

    def search(self, query: str, limit: int = 5) -> list[SearchHit]:
        """The ``limit`` best matches of ``query``, best first (ties by catalog order);
        a document must share at least one word with the query and score at least a
        fifth of the best match's score."""
        # a list, not a dict: a query's common words touch every document, and indexing
        # a list costs a third of a dict's get-and-set (every weight is positive, so 0.0
        # means no shared word)
        scores = [0.0] * len(self.documents)
        for word in set(self._terms._split(query)):
            for index, weight in self._postings.get(word, ()):
                scores[index] += weight
        # nlargest is stable: among equal scores, the earlier document first
        top = heapq.nlargest(max(0, limit), range(len(scores)), key=scores.__getitem__)
        best = [(i, scores[i]) for i in top if scores[i] > 0.0]
        floor = best[0][1] * _CUTOFF if best else 0.0
        return [SearchHit(self.documents[i].function, self.documents[i].tool,
                          self.documents[i].summary, score) for i, score in best
                if score >= floor]


def build_index(definitions: Sequence[Mapping[str, Any]], owners: Mapping[str, str],
                summaries: Mapping[str, str], *, undescribed: Sequence[str] = (),
                stored: StoredWords | None = None) -> SearchIndex:
    """The index of ``definitions`` (``owners``: function -> tool; ``summaries``: tool ->
    its one-line summary), plus a document for each ``undescribed`` tool (one the
    manifest does not describe: found by its name and summary, with no function to
    reveal, so its hit has ``function == ""`` and the tool must be activated by name).
    ``stored``: the words of functions already normalised (:func:`stored_words`, only
    those still current); the others are normalised here."""
    normalised = Terms()
    documents = []
    for definition in definitions:
        name = str(definition.get("name"))
        tool = owners.get(name, "")
        words = stored.get(tool, {}).get(name) if stored is not None else None
        if words is None:
            documents.append(document_of(definition, tool, summaries.get(tool, ""), normalised))
        else:
            documents.append(SearchDocument(name, tool, _first_line(definition), words))
    documents += [SearchDocument("", tool, summaries.get(tool, ""), tuple(
        normalised(tool) * _NAME_WEIGHT + normalised(summaries.get(tool, ""))))
        for tool in undescribed]
    return SearchIndex(documents, normalised)


class LazyIndex:
    """A catalog's index, built on its first search rather than with the agent: a request
    that never searches pays nothing, and the first search builds it once (in a worker
    thread, so the event loop keeps serving other runs; some 100-300 ms at a thousand
    tools, see bench/README.md). Shared by every agent with the same catalog and policy."""

    def __init__(self, build: Callable[[], SearchIndex]) -> None:
        self._build = build
        self._index: SearchIndex | None = None

    @property
    def built(self) -> bool:
        return self._index is not None

    def get(self) -> SearchIndex:
        """The index, built here if need be."""
        if self._index is None:
            self._index = self._timed_build()
        return self._index

    async def aget(self) -> SearchIndex:
        """The index, built in a worker thread if need be (two first searches at once may
        both build it; the first to finish is kept)."""
        if self._index is None:
            index = await anyio.to_thread.run_sync(self._timed_build)
            if self._index is None:
                self._index = index
        return self._index

    def _timed_build(self) -> SearchIndex:
        started = time.perf_counter()
        index = self._build()
        log.info("jit.search_index_built", documents=len(index),
                 duration_ms=round((time.perf_counter() - started) * 1000, 3))
        return index
