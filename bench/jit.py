"""Just-in-time tools against eager loading: agent start-up and first-request size.

Generates catalogs of 10, 100 and 1,000 tool modules in a temporary directory, each
with an import cost like a real tool module (compiled regexes, a decimal table, JSON
defaults, and three typed functions whose schemas pydantic builds at class
definition), writes their manifest, then measures in fresh interpreter processes:

- eager: import every module, construct every tool, build the agent;
- JIT cold: build the agent from the manifest in a fresh process (the first agent
  pays for reading the manifest, and for checking the entry points it recorded or
  scanning them again);
- JIT warm: construct another agent in that process (what every later agent costs);
- the first request's tools+system: characters as sent, and tokens from
  count_tokens on agentrt.testing's fake Messages API server (these first two
  parts with ``tool_loading = "append"``, the JIT issue's behaviour);
- the first request of a ``deferred`` process: the time to build its tools list,
  which reads the manifest entry of every tool the config allows (all of them, or
  an allow-list of ten), and the same for the next run of that process;
- how catalog tools reach the model (``tool_loading``): one 20-request
  conversation over a 100-tool catalog of which the task needs 3, for ``append``,
  ``deferred`` (with ``search_first`` too, and with the listing of ``initialize_tools``
  instead of ``search_tools``) and ``server_search`` (regex and BM25), on the fake server's
  prompt-cache simulation: the first request's prompt tokens, cache reads on each
  request, prefix changes, and the billed input (cache writes x1.25 + reads x0.1 +
  uncached x1, the API's price ratios). It runs twice: with a system prompt of
  realistic size (a sentence and 35 house rules: the first request, tools included,
  is over the 1,024-token cache minimum, as a real agent's is; the targets are
  judged on this one), and with the one-sentence prompt alone, whose first requests
  stay under the minimum and are billed in full whatever the mode.

A cold start-up is the first agent of a process: defining its class (eager: with
every tool imported and constructed) and constructing it. A warm one is the next
agent of the same class in that process. The interpreter, ``import agentrt`` (with
``agentrt.jit``, which ``import agentrt`` leaves to first use: a fixed cost whatever the
catalog's size) and the Runtime are outside the timed region.

    python bench/jit.py                     # 10, 100, 1000 tools, 7 runs each
    python bench/jit.py --sizes 10,100 --repeat 3
    python bench/jit.py --sizes "" --min-cache-tokens 4096   # the tool_loading part only
    python bench/jit.py --sizes "" --system-rules 0          # only the one-sentence prompt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOPICS = ("invoice", "customer", "ticket", "shipment", "contract", "sensor", "article",
          "calendar", "repository", "payment")

MODULE = '''\
"""Generated tool module {i}: the {topic} service client."""

from __future__ import annotations

import decimal
import json
import re

from agentrt import Tool, function

_PATTERNS = [re.compile(rf"(?P<key>{topic}{i}_{{j}})\\s*=\\s*(?P<value>\\d+(?:\\.\\d+)?)")
             for j in range(20)]
_RATES = {{f"{topic}-{i}-{{j}}": decimal.Decimal(j) / 7 for j in range(2000)}}
_DEFAULTS = json.loads(json.dumps({{"limit": 10, "fields": [f"f{{j}}" for j in range(50)]}}))


class Tool{i:04d}(Tool):
    """Work with {topic} records (service {i}): search, read and update them.

    Records have an id, a title, a status and free-form fields. Searches are ranked
    by relevance; updates are audited and need a reason.
    """

    name = "tool_{i:04d}"
    requires = {requires}

    def __init__(self, thread_id: str, limit: int = 10) -> None:
        self.thread_id = thread_id
        self.limit = limit

    @function(read_only=True)
    async def tool_{i:04d}_search(self, query: str, limit: int = 10,
                                include_archived: bool = False) -> dict:
        """Search the {topic} records for entries matching a query.

        Returns matching records ranked by relevance, with their ids, titles and a
        short snippet. Use it before reading a record in full.

        Args:
            query: Free-text search terms; quote phrases for exact matches.
            limit: Maximum number of records to return (1-100).
            include_archived: Also search records archived more than a year ago.
        """
        return {{"query": query, "limit": limit}}

    @function(read_only=True)
    async def tool_{i:04d}_get(self, record_id: str, fields: list[str] | None = None) -> dict:
        """Read one {topic} record in full.

        Args:
            record_id: The record's id, as returned by the search.
            fields: Only these fields (all of them when omitted).
        """
        return {{"id": record_id}}

    @function
    async def tool_{i:04d}_update(self, record_id: str, changes: dict[str, str],
                                reason: str) -> str:
        """Change fields of a {topic} record. The change is audited.

        Args:
            record_id: The record's id.
            changes: Field name to new value.
            reason: Why the change is made; shown in the audit log.
        """
        return "updated"
'''


def generate(root: Path, n: int) -> tuple[str, list[str]]:
    package = f"jitbench_{n}"
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("", encoding="utf-8")
    paths = []
    for i in range(n):
        requires = f'("tool_{i - 1:04d}",)' if i % 10 == 9 else "()"
        text = MODULE.format(i=i, topic=TOPICS[i % len(TOPICS)], requires=requires)
        (root / package / f"t{i:04d}.py").write_text(text, encoding="utf-8")
        paths.append(f"{package}.t{i:04d}:Tool{i:04d}")
    return package, paths


# -- child processes ------------------------------------------------------------

CHILD_SETUP = """
import json, sys, time
import anyio
import agentrt
from agentrt import Agent, MemoryThreadStore, Runtime, load_settings
from agentrt.testing import FakeAnthropicServer, Reply
import agentrt.jit  # the JIT package's own import, a fixed cost like ``import agentrt``
paths = json.loads(sys.argv[1]); manifest = sys.argv[2]
"""

JIT_CHILD = CHILD_SETUP + """
def define():
    class JITAgent(Agent):
        system = "You are a helpful operations assistant."
        tool_catalog = paths
        tool_config = {"manifest": manifest, "tool_loading": "append"}
    return JITAgent
"""

EAGER_CHILD = CHILD_SETUP + """
import importlib
def define():
    classes = []
    for path in paths:
        module, _, name = path.partition(":")
        classes.append(getattr(importlib.import_module(module), name))
    class EagerAgent(Agent):
        system = "You are a helpful operations assistant."
        tools = [cls(thread_id="t") for cls in classes]
    return EagerAgent
"""

MEASURE = """
async def main():
    async with FakeAnthropicServer([Reply(text="ok")] * 2) as server, server.client() as client:
        runtime = Runtime(load_settings(thread_store="memory", stream=False),
                          client=client, store=MemoryThreadStore())
        started = time.perf_counter()
        agent_cls = define()
        agent = agent_cls(runtime)
        cold = time.perf_counter() - started
        warm = []
        for _ in range(WARM):
            started = time.perf_counter()
            agent_cls(runtime)
            warm.append(time.perf_counter() - started)
        await agent.run("hi")
        body = server.requests[0].body
        prefix = {"tools": body.get("tools", []), "system": body.get("system")}
        strip = lambda ts: [{k: v for k, v in t.items() if k != "cache_control"} for t in ts]
        msgs = [{"role": "user", "content": "hi"}]
        full = await client.messages.count_tokens(model=body["model"], messages=msgs,
                                                  tools=strip(prefix["tools"]),
                                                  system=body["system"][0]["text"])
        bare = await client.messages.count_tokens(model=body["model"], messages=msgs)
        print(json.dumps({"cold": cold, "warm": statistics.median(warm) if warm else None,
                          "chars": len(json.dumps(prefix)), "tools": len(prefix["tools"]),
                          "tokens": full.input_tokens - bare.input_tokens}))
import statistics
anyio.run(main)
"""

DEFERRED_CHILD = CHILD_SETUP + """
allowed = json.loads(sys.argv[3])  # tool names, or null for all of them
class DeferredAgent(Agent):
    system = "You are a helpful operations assistant."
    tool_catalog = paths
    tool_config = {"manifest": manifest, "tool_loading": "deferred",
                   **({"tools": dict.fromkeys(allowed, True)} if allowed else {})}

async def main():
    async with FakeAnthropicServer([]) as server, server.client() as client:
        runtime = Runtime(load_settings(thread_store="memory", stream=False),
                          client=client, store=MemoryThreadStore())
        agent = DeferredAgent(runtime)
        times = []
        for _ in range(2):
            started = time.perf_counter()
            tools = (await agent.tools_for()).definitions()
            times.append(time.perf_counter() - started)
        print(json.dumps({"first": times[0], "next": times[1], "definitions": len(tools)}))
anyio.run(main)
"""

INDEX_CHILD = CHILD_SETUP + """
from agentrt.jit.search import SECTION, build_index, stored_words
TOPICS = json.loads(sys.argv[3])
class DeferredAgent(Agent):
    system = "You are a helpful operations assistant."
    tool_catalog = paths
    tool_config = {"manifest": manifest, "tool_loading": "deferred"}

async def main():
    async with FakeAnthropicServer([]) as server, server.client() as client:
        runtime = Runtime(load_settings(thread_store="memory", stream=False),
                          client=client, store=MemoryThreadStore())
        loader = DeferredAgent(runtime)._manager.tools
        deferred = loader.agent_tools().deferred  # what the first request reads anyway
        catalog = loader.catalog
        owners = {d["name"]: catalog.tool_for(d["name"]) for d in deferred.definitions}
        tools = set(owners.values())
        summaries = {t: catalog.entry(t).summary for t in tools}
        started = time.perf_counter()
        section = catalog.manifest.section(SECTION)
        read = time.perf_counter() - started
        stored = stored_words(section, {t: catalog.entry(t).fingerprint for t in tools})
        index = build_index(deferred.definitions, owners, summaries, stored=stored)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        memory = build_index(deferred.definitions, owners, summaries)
        built = time.perf_counter() - started
        same = [d.words for d in index.documents] == [d.words for d in memory.documents]
        queries = [f"find the {TOPICS[i % len(TOPICS)]} records of service {i}"
                   for i in range(0, len(paths), max(1, len(paths) // 200))]
        times = []
        for query in queries:
            started = time.perf_counter()
            index.search(query, 5)
            times.append(time.perf_counter() - started)
        times.sort()
        print(json.dumps({"read": read, "loaded": loaded, "built": built, "same": same,
                          "documents": len(index), "query": statistics.median(times),
                          "query_max": times[-1], "queries": len(times)}))
import statistics
anyio.run(main)
"""

MANIFEST_CHILD = """
import json, sys
from agentrt.jit import describe, render_manifest
from agentrt.jit.catalog import import_tool, record_entry_points
paths = json.loads(sys.argv[1])
# as `agentrt tools manifest` writes it when the config enables entry points (the default)
open(sys.argv[2], "w", encoding="utf-8").write(render_manifest(
    (describe(import_tool(p), p) for p in paths), entry_points=record_entry_points()))
"""


LOADING_CHILD = CHILD_SETUP + """
from agentrt.testing import ToolUse, ToolSearch
from agentrt.testing._cache_sim import parse_prompt
mode, search, min_cache = sys.argv[3], sys.argv[4], int(sys.argv[5])
needed = json.loads(sys.argv[6])  # three tool names, e.g. tool_0012
system_rules = int(sys.argv[7])  # numbered house rules after the system prompt's sentence
tasks = json.loads(sys.argv[8])
queries = {"regex": lambda t: t + "_", "bm25": lambda t: f"{t} search records"}

def use(name, **arguments):
    return Reply(tool_calls=[ToolUse(name, arguments)])

class Load:
    # The model's first call of a tool it needs: made at once when the function is
    # visible already (a tool_reference revealed it), else after finding it. With
    # server_search one reply searches and calls (the API runs the search inside the
    # model's turn); deferred: search_tools, a client tool (a round trip), then the
    # call; append and deferred without tool_finder: initialize_tools, then the call.
    def __init__(self, tool, function, arguments):
        self.tool, self.function, self.arguments = tool, function, arguments

    def replies(self, request):
        call = use(self.function, **self.arguments)
        visible = self.function not in parse_prompt(request.body).hidden and any(
            t.get("name") == self.function for t in request.body.get("tools", []))
        if mode in ("server_search", "deferred", "deferred_first") and visible:
            return [call]
        if mode == "server_search":
            return [Reply(searches=[ToolSearch(queries[search](self.tool))],
                          tool_calls=[ToolUse(self.function, self.arguments)])]
        if mode in ("deferred", "deferred_first"):
            return [use("search_tools", query=queries["bm25"](self.tool)), call]
        return [use("initialize_tools", tool_names=[self.tool]), call]

a, b, c = needed
plan = [
    Load(a, a + "_search", {"query": "overdue"}), use(a + "_get", record_id="r1"),
    use(a + "_get", record_id="r2"), Reply(text="Two overdue records."),
    Load(b, b + "_search", {"query": "renewal"}), use(b + "_get", record_id="c9"),
    use(a + "_update", record_id="r1", changes={"status": "paid"}, reason="matched"),
    Reply(text="Marked as paid."),
    Load(c, c + "_search", {"query": "late"}), use(c + "_get", record_id="s4"),
    use(c + "_update", record_id="s4", changes={"eta": "friday"}, reason="carrier"),
    use(b + "_get", record_id="c9"), use(a + "_search", query="paid"),
    use(c + "_search", query="friday"),
    use(b + "_update", record_id="c9", changes={"owner": "ops"}, reason="handover"),
    use(a + "_get", record_id="r1"), Reply(text="All three updated."),
]

def respond(request):
    step = plan.pop(0)
    if isinstance(step, Load):
        first, *rest = step.replies(request)
        plan[:0] = rest
        return first
    return step

class LoadingAgent(Agent):
    system = "You are a helpful operations assistant." + "".join(
        f"\\nRule {i}: quote record ids exactly, state each change you make and its reason, "
        f"and ask before touching more than {i + 2} records." for i in range(system_rules))
    tool_catalog = paths
    tool_config = {"manifest": manifest,
                   "tool_loading": "deferred" if mode.startswith("deferred") else mode,
                   **({"search_first": True} if mode == "deferred_first" else {}),
                   **({"tool_search": search} if mode == "server_search" else {}),
                   **({"disabled": ["tool_finder"]} if mode == "deferred_listing" else {})}

async def main():
    # strict: the fake's model cannot call a deferred tool no tool_reference revealed
    async with FakeAnthropicServer(respond, min_cache_tokens=min_cache,
                                   strict_deferred=True) as server, \
            server.client() as client:
        store = MemoryThreadStore()
        runtime = Runtime(load_settings(thread_store="memory", stream=False),
                          client=client, store=store)
        agent = LoadingAgent(runtime)
        thread = None
        for task in tasks:
            result = await agent.run(task, thread_id=thread)
            thread = result.thread_id
            assert result.stats.errors == 0, result.stats
        stored = await store.messages(thread)
    bodies = [r.body for r in server.requests]
    prefixes = [json.dumps([b.get("tools"), b.get("system")], sort_keys=True) for b in bodies]
    for body in bodies:  # each search found the tool the model then calls
        for message in body["messages"]:
            for block in message["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_search_tool_result":
                    found = [r["tool_name"] for r in block["content"]["tool_references"]]
                    assert any(f.startswith(tuple(needed)) for f in found), found
    usage = [m.metadata["usage"] for m in stored if "usage" in m.metadata]
    first = bodies[0]
    # the requests that only carry a search_tools answer: the round trips the API's own
    # search (inside the model's turn) does not make
    # the requests that follow a reply asking only for search_tools: the round trips the
    # API's own search (inside the model's turn) does not make
    replies = [m for m in stored if "usage" in m.metadata]
    searched = [index + 1 for index, m in enumerate(replies)
                if any(b.get("name") == "search_tools" for b in m.blocks()
                       if b.get("type") == "tool_use")]
    print(json.dumps({
        "usage": usage,
        "search_round_trips": searched,
        "changes": sum(p != q for p, q in zip(prefixes, prefixes[1:])),
        "first_chars": len(json.dumps({"tools": first.get("tools"),
                                       "system": first.get("system")})),
        "tools_sent": len(first.get("tools", [])),
    }))
anyio.run(main)
"""


VAGUE_TASKS = ("Find the overdue invoices.", "Match the renewals.", "Fix the rest.")


def measure_loading(root: Path, paths: list[str], manifest: Path, min_cache: int,
                    system_rules: int = 0, vague: bool = False
                    ) -> list[tuple[str, dict[str, Any]]]:
    n = len(paths)
    needed = []
    for i in (n // 8, n // 2 - 3, n - 17):  # three tools without dependencies
        needed.append(f"tool_{i - 1 if i % 10 == 9 else i:04d}")
    # each task names the service it is about, as a user's request would (the generated
    # tools differ only by it); vague: tasks that do not say what they need
    tasks = list(VAGUE_TASKS) if vague else [
        f"{verb} in service {int(tool[5:])}." for verb, tool in zip(
            ("Find the overdue records", "Match the renewals", "Fix the late ones"), needed,
            strict=True)]
    rows = []
    for mode, search in (("append", "regex"), ("deferred", "regex"), ("deferred_first", "regex"),
                         ("deferred_listing", "regex"), ("server_search", "regex"),
                         ("server_search", "bm25")):
        found = child(LOADING_CHILD, root, json.dumps(paths), str(manifest), mode, search,
                      str(min_cache), json.dumps(needed), str(system_rules), json.dumps(tasks))
        usage = found["usage"]
        first = usage[0]
        found.update(
            requests=len(usage),
            first_tokens=sum(first[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                                "cache_read_input_tokens")),
            read=sum(u["cache_read_input_tokens"] for u in usage),
            written=sum(u["cache_creation_input_tokens"] for u in usage),
            uncached=sum(u["input_tokens"] for u in usage),
            reading=sum(u["cache_read_input_tokens"] > 0 for u in usage[1:]),
        )
        found["billed"] = found["uncached"] + 1.25 * found["written"] + 0.1 * found["read"]
        found["round_trip_billed"] = sum(_billed(usage[i]) for i in found["search_round_trips"])
        label = {"server_search": f"server_search ({search})",
                 "deferred_listing": "deferred, listing",
                 "deferred_first": "deferred, search_first"}.get(mode, mode)
        rows.append((label, found))
    return rows


def _billed(usage: dict[str, Any]) -> float:
    """One request's input at the API's price ratios (cache writes x1.25, reads x0.1)."""
    return (usage["input_tokens"] + 1.25 * usage["cache_creation_input_tokens"]
            + 0.1 * usage["cache_read_input_tokens"])


def report_loading(rows: list[tuple[str, dict[str, Any]]], n: int, min_cache: int,
                   system_rules: int, judged: bool) -> None:
    print()
    prompt = (f"system prompt of a sentence and {system_rules} house rules" if system_rules
              else "one-sentence system prompt")
    print(f"Tool loading: one conversation, {n} catalog tools, 3 needed "
          f"(prompt cache minimum {min_cache:,} tokens, {prompt})")
    base = dict(rows)["server_search (bm25)"]["billed"]
    print(f"{'mode':<22} {'requests':>8} {'1st tok':>8} {'1st chars':>10} {'changes':>8} "
          f"{'reading':>8} {'read':>8} {'written':>8} {'uncached':>9} {'billed':>9} "
          f"{'vs bm25':>8}")
    for label, r in rows:
        print(f"{label:<22} {r['requests']:>8} {r['first_tokens']:>8,} {r['first_chars']:>10,} "
              f"{r['changes']:>8} {r['reading']:>4}/{r['requests'] - 1:<3} {r['read']:>8,} "
              f"{r['written']:>8,} {r['uncached']:>9,} {r['billed']:>9,.0f} "
              f"{r['billed'] / base:>7.3f}x")
    for label, r in rows:
        reads = " ".join(str(u["cache_read_input_tokens"]) for u in r["usage"])
        print(f"  cache_read per request, {label}: {reads}")
    by = dict(rows)
    deferred = by["deferred"]
    print()
    print("Targets" if judged else
          "The same targets, for comparison (a first request under the cache minimum: no mode "
          "can read the cache on the second)")
    every = deferred["reading"] == deferred["requests"] - 1
    print(f"  deferred reads the cache on every request after the first: "
          f"{deferred['reading']}/{deferred['requests'] - 1} [{'ok' if every else 'MISSED'}]")
    ratio = deferred["billed"] / by["server_search (bm25)"]["billed"]
    print(f"  deferred billed at most 1.10x server_search (bm25): {ratio:.3f}x "
          f"[{'ok' if ratio <= 1.10 else 'MISSED'}]")
    first = by["deferred, search_first"]
    print(f"  deferred with search_first (opt-in): {first['billed']:,.0f}, "
          f"{first['billed'] / by['server_search (bm25)']['billed']:.3f}x server_search "
          f"(bm25), {first['requests']} requests, reading "
          f"{first['reading']}/{first['requests'] - 1}")
    below = deferred["billed"] < by["append"]["billed"]
    print(f"  deferred billed below append: {deferred['billed']:,.0f} against "
          f"{by['append']['billed']:,.0f} ({deferred['billed'] / by['append']['billed']:.3f}x) "
          f"[{'ok' if below else 'MISSED'}]")
    print(f"  deferred's prefix never changes: {deferred['changes']} changes "
          f"[{'ok' if deferred['changes'] == 0 else 'MISSED'}]")
    gap = deferred["billed"] - by["server_search (bm25)"]["billed"]
    # the other part of the gap: requests under the minimum cacheable length (nothing read
    # nor written: billed in full), which a smaller prompt has more of
    under = {label: [i for i, u in enumerate(by[label]["usage"])
                     if not u["cache_read_input_tokens"] and not u["cache_creation_input_tokens"]]
             for label in ("deferred", "server_search (bm25)")}
    full = {label: sum(_billed(by[label]["usage"][i]) for i in found)
            for label, found in under.items()}
    print(f"  uncached (under the {min_cache:,}-token minimum): deferred's requests "
          f"{under['deferred']} bill {full['deferred']:,.0f}, server_search (bm25)'s "
          f"{under['server_search (bm25)']} bill {full['server_search (bm25)']:,.0f}: "
          f"{full['deferred'] - full['server_search (bm25)']:,.0f} of the gap of {gap:,.0f}")
    trips = deferred["round_trip_billed"]
    print(f"  the search_tools round trips (requests {deferred['search_round_trips']}) bill "
          f"{trips:,.0f} of deferred's {deferred['billed']:,.0f}; the gap to server_search "
          f"(bm25) is {gap:,.0f}" + (f", so the round trips are {trips / gap:.0%} of it"
                                     if gap > 0 else ""))


def child(code: str, root: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "AGENTRT_LOG_LEVEL": "error", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def run_children(kind: str, root: Path, catalogs: dict[int, tuple[list[str], Path]],
                 repeat: int, warm: int) -> dict[int, dict[str, Any]]:
    """Median figures per catalog size, from ``repeat`` fresh processes each.

    The sizes take turns (10, 100, 1000, 10, 100, ...) rather than running one
    after the other, so that a change in the machine's load while the benchmark
    runs falls on every size alike and the ratio between them stays fair.
    """
    code = (JIT_CHILD if kind == "jit" else EAGER_CHILD) + MEASURE.replace("WARM", str(warm))
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in catalogs}
    for _ in range(repeat):
        for n, (paths, manifest) in catalogs.items():
            runs[n].append(child(code, root, json.dumps(paths), str(manifest)))
    return {n: summarize(found) for n, found in runs.items()}


def run_deferred(root: Path, catalogs: dict[int, tuple[list[str], Path]],
                 repeat: int) -> dict[int, dict[str, Any]]:
    """The tools list of a deferred agent's first run and of its next one (ms, median),
    with every tool allowed and with an allow-list of the first ten."""
    ten = json.dumps([f"tool_{i:04d}" for i in range(10)])
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for _ in range(repeat):
        for n, (paths, manifest) in catalogs.items():
            for allowed in ("null", ten):
                runs.setdefault((n, allowed), []).append(
                    child(DEFERRED_CHILD, root, json.dumps(paths), str(manifest), allowed))

    def median_ms(found: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in found) * 1000

    return {n: {"deferred_first_ms": median_ms(runs[n, "null"], "first"),
                "deferred_next_ms": median_ms(runs[n, "null"], "next"),
                "deferred_definitions": runs[n, "null"][0]["definitions"],
                "deferred_ten_ms": median_ms(runs[n, ten], "first")}
            for n in catalogs}


def run_index(root: Path, paths: list[str], manifest: Path, repeat: int) -> dict[str, Any]:
    """The search index of a deferred agent over every tool, in fresh processes (median):
    reading the manifest's ``search`` section, building the index from it, building it in
    memory instead, and one query."""
    runs = [child(INDEX_CHILD, root, json.dumps(paths), str(manifest), json.dumps(TOPICS))
            for _ in range(repeat)]
    found = {key: statistics.median(r[key] for r in runs) * 1000
             for key in ("read", "loaded", "built", "query", "query_max")}
    return {**found, "same": all(r["same"] for r in runs), "documents": runs[0]["documents"],
            "queries": runs[0]["queries"], "tools": len(paths)}


def report_index(found: dict[str, Any]) -> None:
    print()
    print(f"Search index at {found['tools']:,} tools ({found['documents']:,} functions; ms, "
          "median of fresh processes)")
    print(f"  manifest section read {found['read']:.1f}, index loaded from it (read included) "
          f"{found['loaded']:.1f}, built in memory instead {found['built']:.1f}; same words: "
          f"{found['same']}")
    print(f"  query: median {found['query']:.3f}, slowest of {found['queries']} "
          f"{found['query_max']:.3f} [{'ok' if found['query_max'] < 1 else 'MISSED'} < 1 ms]")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    warms = [r["warm"] for r in runs if r["warm"] is not None]
    return {"cold_ms": statistics.median(r["cold"] for r in runs) * 1000,
            "warm_ms": statistics.median(warms) * 1000 if warms else None,
            "chars": runs[0]["chars"], "tokens": runs[0]["tokens"], "tools": runs[0]["tools"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per figure")
    parser.add_argument("--system-rules", default="35,0",
                        help="house rules appended to the tool_loading agent's system "
                             "prompt (about 30 tokens each), one comparison per number: "
                             "35 (the default's first) makes a prompt of realistic size, "
                             "about 1,300 tokens with the tools, which the targets are "
                             "judged on; 0 leaves a one-sentence prompt under the cache "
                             "minimum")
    parser.add_argument("--loading-tools", type=int, default=100,
                        help="catalog size of the tool_loading comparison (0 skips it)")
    parser.add_argument("--vague-tasks", action="store_true",
                        help="tasks that do not name the service they need (search_first "
                             "then finds nothing useful and the model searches)")
    parser.add_argument("--min-cache-tokens", type=int, default=1024,
                        help="the fake server's minimum cacheable prefix")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rows: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    loading: list[tuple[int, list[tuple[str, dict[str, Any]]]]] = []
    index: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="agentrt-jit-bench-") as tmp:
        root = Path(tmp)
        catalogs: dict[int, tuple[list[str], Path]] = {}

        def catalog(n: int) -> tuple[list[str], Path]:
            if n not in catalogs:
                _, paths = generate(root, n)
                manifest = root / f"manifest_{n}.json"
                child(MANIFEST_CHILD, root, json.dumps(paths), str(manifest))
                catalogs[n] = (paths, manifest)
            return catalogs[n]

        sized: dict[int, tuple[list[str], Path]] = {}
        for n in sizes:
            started = time.perf_counter()
            sized[n] = catalog(n)
            print(f"  generated {n} tools (manifest {sized[n][1].stat().st_size / 1e6:.2f} MB, "
                  f"written in {time.perf_counter() - started:.1f} s)", file=sys.stderr)
        jit = run_children("jit", root, sized, args.repeat, warm=20)
        eager = run_children("eager", root, sized, max(1, min(args.repeat, 3)), warm=5)
        deferred = run_deferred(root, sized, args.repeat)
        rows = [(n, {**jit[n], **deferred[n]}, eager[n]) for n in sizes]
        index = run_index(root, *sized[max(sizes)], max(1, min(args.repeat, 3))) if sizes \
            else None
        if args.loading_tools:
            loading = [(rules, measure_loading(root, *catalog(args.loading_tools),
                                               args.min_cache_tokens, rules, args.vague_tasks))
                       for rules in (int(r) for r in args.system_rules.split(",") if r)]
    if rows:
        report(rows)
    if index:
        report_index(index)
    for position, (rules, found) in enumerate(loading):
        report_loading(found, args.loading_tools, args.min_cache_tokens, rules,
                       judged=position == 0)
    return 0


def report(rows: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> None:
    print("Start-up (ms, median; cold = first agent of a fresh process, warm = the next one)")
    print(f"{'tools':>6} {'eager cold':>11} {'JIT cold':>9} {'ratio':>7} "
          f"{'eager warm':>11} {'JIT warm':>9} {'ratio':>7}")
    for n, jit, eager in rows:
        print(f"{n:>6} {eager['cold_ms']:>11.1f} {jit['cold_ms']:>9.2f} "
              f"{eager['cold_ms'] / jit['cold_ms']:>6.0f}x {eager['warm_ms']:>11.3f} "
              f"{jit['warm_ms']:>9.3f} {eager['warm_ms'] / jit['warm_ms']:>6.1f}x")
    print()
    print("First request: tools + system (as sent)")
    print(f"{'tools':>6} {'eager chars':>12} {'JIT chars':>10} {'smaller':>8} "
          f"{'eager tok':>10} {'JIT tok':>8} {'smaller':>8}")
    for n, jit, eager in rows:
        print(f"{n:>6} {eager['chars']:>12,} {jit['chars']:>10,} "
              f"{1 - jit['chars'] / eager['chars']:>8.1%} {eager['tokens']:>10,} "
              f"{jit['tokens']:>8,} {1 - jit['tokens'] / eager['tokens']:>8.1%}")
    print()
    print("First request of a deferred process: its tools list (ms, median)")
    print(f"{'tools':>6} {'definitions':>12} {'first run':>10} {'next run':>9} "
          f"{'10 allowed':>11}")
    for n, jit, _ in rows:
        print(f"{n:>6} {jit['deferred_definitions']:>12,} {jit['deferred_first_ms']:>10.2f} "
              f"{jit['deferred_next_ms']:>9.3f} {jit['deferred_ten_ms']:>11.2f}")
    (small, first, _), (large, last, eager) = rows[0], rows[-1]
    print()
    print("Targets")
    print(f"  JIT cold start-up at {large:,} tools < 5 ms: {last['cold_ms']:.2f} ms "
          f"[{'ok' if last['cold_ms'] < 5 else 'MISSED'}]")
    faster = eager["cold_ms"] / last["cold_ms"]
    print(f"  at least 500x faster than eager at {large:,} tools: {faster:,.0f}x "
          f"[{'ok' if faster >= 500 else 'MISSED'}]")
    cold_ratio = last["cold_ms"] / first["cold_ms"]
    print(f"  at most 3x the {small}-tool figure at {large:,} tools: {cold_ratio:.2f}x "
          f"[{'ok' if cold_ratio <= 3 else 'MISSED'}]")
    for unit, key in (("characters", "chars"), ("tokens", "tokens")):
        worst = min(1 - j[key] / e[key] for _, j, e in rows)
        print(f"  first request (append) at least 90% smaller than eager in {unit}: worst "
              f"{worst:.1%} [{'ok' if worst >= 0.9 else 'MISSED'}]")


if __name__ == "__main__":
    raise SystemExit(main())

