"""``search_tools`` (deferred mode's client-side tool search): quality and speed.

Quality: a realistic 100-tool catalog (``bench/data/saas_catalog.json``: a back-office
SaaS API, one function per tool, distinct names, summaries and parameters) and a set
of task phrasings written before the ranker was tuned (``bench/data/search_phrasings.json``:
each with the function it needs). For each phrasing, is the needed function the first
match (recall@1) or among the first five (recall@5)? Three rankers over the same
definitions:

- agentrt's ``search_tools`` (:class:`agentrt.jit.search.SearchIndex`), queried with the
  phrasing as it is;
- the fake server's emulation of the API's BM25 tool search, queried the same way;
- the fake server's emulation of the API's regex tool search, queried with a
  case-insensitive alternation of the phrasing's words of four letters or more (what
  a model writing a regex from the task might send; the API answers in catalog order).

Speed: building the index and answering a query (median of the phrasings, each run
200 times) for the 100-tool catalog, the same catalog ten times over (1,000 tools), and
bench/jit.py's generated 1,000-tool catalog (3,000 near-identical functions: every query
word hits thousands of documents, the worst case for an inverted index).

    python bench/search_quality.py
    python bench/search_quality.py --variants    # what each normalisation step buys
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from agentrt.jit import search as search_module  # noqa: E402
from agentrt.jit.search import build_index  # noqa: E402
from agentrt.testing._search import MAX_PATTERN_CHARS, run_search  # noqa: E402


def load_catalog(copies: int = 1) -> tuple[list[dict[str, Any]], dict[str, str],
                                             dict[str, str]]:
    """Definitions (as the manifest holds them), function -> tool, tool -> summary."""
    rows = json.loads((ROOT / "data" / "saas_catalog.json").read_text(encoding="utf-8"))
    definitions, owners, summaries = [], {}, {}
    for copy in range(copies):
        suffix = f"_{copy}" if copies > 1 else ""
        for tool, summary, name, description, parameters in rows:
            definitions.append({"name": name + suffix, "description": description,
                                "input_schema": {"type": "object", "properties": {
                                    p: {"type": "string", "description": d}
                                    for p, d in parameters.items()}}})
            owners[name + suffix] = tool + suffix
            summaries[tool + suffix] = summary
    return definitions, owners, summaries


def phrasings(name: str = "search_phrasings.json") -> list[tuple[str, str]]:
    rows = json.loads((ROOT / "data" / name).read_text(encoding="utf-8"))
    return [(task, function) for task, function in rows]


def regex_query(task: str) -> str:
    words = [w for w in re.findall(r"[A-Za-z]{4,}", task)]
    return ("(?i)" + "|".join(dict.fromkeys(w.lower() for w in words)))[:MAX_PATTERN_CHARS]


def recall(ranked: list[list[str]], needed: list[str]) -> tuple[float, float, list[int]]:
    ranks = [r.index(n) + 1 if n in r else 0 for r, n in zip(ranked, needed, strict=True)]
    at1 = sum(1 for k in ranks if k == 1) / len(ranks)
    at5 = sum(1 for k in ranks if 1 <= k <= 5) / len(ranks)
    return at1, at5, ranks


def quality(show_misses: bool, name: str = "search_phrasings.json"
            ) -> list[tuple[str, float, float]]:
    definitions, owners, summaries = load_catalog()
    deferred = [{**d, "defer_loading": True} for d in definitions]
    tasks = phrasings(name)
    needed = [n for _, n in tasks]
    index = build_index(definitions, owners, summaries)
    rankers = {
        "agentrt search_tools (BM25)": lambda q: [h.function for h in index.search(q, 5)],
        "API BM25 (fake's emulation)": lambda q: _names(run_search("bm25", q, deferred)),
        "API regex (fake's emulation)": lambda q: _names(
            run_search("regex", regex_query(q), deferred)),
    }
    rows = []
    for label, rank in rankers.items():
        at1, at5, ranks = recall([rank(task) for task, _ in tasks], needed)
        rows.append((label, at1, at5))
        if show_misses and label.startswith("agentrt"):
            for (task, need), k in zip(tasks, ranks, strict=True):
                if not 1 <= k <= 5:
                    print(f"  miss: {task!r} needs {need}; got {rank(task)}")
    return rows


def _names(result: dict[str, Any]) -> list[str]:
    return [r["tool_name"] for r in result.get("tool_references", [])]


def generated_definitions(n: int) -> tuple[list[dict[str, Any]], dict[str, str],
                                           dict[str, str]]:
    """bench/jit.py's catalog of ``n`` generated tools, defined in this process."""
    sys.path.insert(0, str(ROOT))
    import jit as jit_bench

    definitions, owners, summaries = [], {}, {}
    for i in range(n):
        source = jit_bench.MODULE.format(i=i, topic=jit_bench.TOPICS[i % 10], requires="()")
        scope: dict[str, Any] = {"__name__": f"generated_{i}"}
        exec(compile(source, f"generated_{i}", "exec"), scope)
        cls = scope[f"Tool{i:04d}"]
        for spec in cls.functions().values():
            definitions.append(spec.definition())
            owners[spec.name] = cls.name
        summaries[cls.name] = (cls.__doc__ or "").strip().splitlines()[0]
    return definitions, owners, summaries


def speed(catalog: tuple[list[dict[str, Any]], dict[str, str], dict[str, str]],
          queries: list[str], rounds: int = 200) -> tuple[float, float, float]:
    """(build ms, median query µs, slowest query's median µs)."""
    started = time.perf_counter()
    index = build_index(*catalog)
    build = (time.perf_counter() - started) * 1000
    per_query = []
    for query in queries:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            index.search(query, 5)
            samples.append(time.perf_counter() - started)
        per_query.append(statistics.median(samples) * 1e6)
    return build, statistics.median(per_query), max(per_query)


def loop_seconds() -> float:
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def variants() -> None:
    """Recall of the ranker with each normalisation step turned off, one at a time."""
    definitions, owners, summaries = load_catalog()
    tasks = phrasings()
    names = ("_stem", "_STOP", "_NAME_WEIGHT", "_SYNONYMS")
    original = tuple(getattr(search_module, n) for n in names)
    stem, stop, weight, synonyms = original
    cases = {"as shipped": original,
             "no word groups": (stem, stop, weight, {}),
             "no stem/groups": (lambda w: w, stop, weight, {}),
             "no stop words": (stem, frozenset(), weight, synonyms),
             "names weigh 1": (stem, stop, 1, synonyms)}
    print(f"{'variant':<16} {'tuning @1':>9} {'tuning @5':>9} {'held @1':>8} {'held @5':>8}")
    for label, values in cases.items():
        for name, value in zip(names, values, strict=True):
            setattr(search_module, name, value)
        index = build_index(definitions, owners, summaries)
        row = []
        for held in (tasks, phrasings("search_phrasings_heldout.json")):
            at1, at5, _ = recall([[h.function for h in index.search(t, 5)] for t, _ in held],
                                 [n for _, n in held])
            row += [at1, at5]
        print(f"{label:<16} {row[0]:>9.3f} {row[1]:>9.3f} {row[2]:>8.3f} {row[3]:>8.3f}")
    for name, value in zip(names, original, strict=True):
        setattr(search_module, name, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="list agentrt's misses at 5")
    parser.add_argument("--variants", action="store_true",
                        help="recall with each normalisation step turned off")
    args = parser.parse_args(argv)
    print(f"10M-iteration loop: {loop_seconds():.2f} s")
    if args.variants:
        variants()
        return 0
    for name, what in (("search_phrasings.json", "the tuning set, written before tuning"),
                       ("search_phrasings_heldout.json", "held out, written after tuning")):
        rows = quality(args.misses, name)
        print(f"\n{len(phrasings(name))} phrasings ({what}), 100-tool catalog")
        print(f"{'ranker':<30} {'recall@1':>9} {'recall@5':>9}")
        for label, at1, at5 in rows:
            print(f"{label:<30} {at1:>9.3f} {at5:>9.3f}")
        ours = rows[0][2]
        print(f"  target: recall@5 >= 0.90: {ours:.3f} [{'ok' if ours >= 0.9 else 'MISSED'}]")
    tasks = phrasings()
    queries = [t for t, _ in tasks]
    print(f"\n{'catalog':<36} {'functions':>9} {'build ms':>9} {'query µs':>9} {'max µs':>8}")
    for label, catalog in (("SaaS, 100 tools", load_catalog()),
                           ("SaaS x10, 1,000 tools", load_catalog(10)),
                           ("bench/jit.py generated, 1,000 tools", generated_definitions(1000))):
        build, median, slowest = speed(catalog, queries)
        print(f"{label:<36} {len(catalog[0]):>9,} {build:>9.1f} {median:>9.1f} "
              f"{slowest:>8.1f}")
    print("  target: a query under 1 ms (1,000 µs) at 1,000 tools")
    return 0


if __name__ == "__main__":
    sys.exit(main())
