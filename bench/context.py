"""Long threads: each context strategy's billed input and largest request, against none.

The conversation (agentrt.testing's PageReading on the in-process fake model, its
prompt cache simulated): ``--turns`` tool turns (10 per user turn, one ``read_page`` call
each, 20 KB results) on a model whose context window is 50,000 tokens (budget: 0.75 of
it, 37,500). Each strategy runs the whole conversation; ``none`` (no management) runs it
on a 1,000,000-token window (the current models') until its prompt passes that window,
and dies there: the strategies are compared with it over the turns it managed ("the part
that fits").

Billed input uses the API's price ratios: uncached input x1, cache writes (5 minutes)
x1.25, cache reads x0.1, for every request (a summary's, a compaction's own iteration
included). ``largest`` is the largest prompt the API counted for a request as sent (after
the API's clearing; before a compaction). Targets: no request over the budget; billed
input at most 0.5x none's over the part that fits.

    python bench/context.py [--turns 300] [--repeat 3] [--strategies stub,api_edit,...]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from dataclasses import dataclass

import anyio

from agentrt import Agent, MemoryThreadStore, Runtime, Tool, function, load_settings
from agentrt.context import SUMMARY, ContextPolicy
from agentrt.llm._usage import Usage
from agentrt.testing import FunctionModel
from agentrt.testing._cache_sim import parse_prompt
from agentrt.testing._context import PageReading, emulate_context, page_text

MODEL = "claude-bench-50k"
WINDOW = 50_000
BIG = 1_000_000
PER_RUN = 10
STRATEGIES = ("stub", "api_edit", "api_compact", "summary")


class Pages(Tool):
    @function(read_only=True)
    async def read_page(self, page: int) -> str:
        """One page of the book.

        Args:
            page: Page number.
        """
        return page_text(page)


def billed(usage: Usage) -> float:
    return (usage.input_tokens + 1.25 * usage.cache_creation_input_tokens
            + 0.1 * usage.cache_read_input_tokens)


@dataclass
class Outcome:
    strategy: str
    turns: int  # tool turns completed
    requests: int
    summaries: int
    largest: int
    per_request: list[float]  # billed input of each conversation request (summaries in)
    seconds: float

    def billed_over(self, requests: int) -> float:
        return sum(self.per_request[:requests])


async def converse(strategy: str, turns: int) -> Outcome:
    window = BIG if strategy == "none" else WINDOW
    script = PageReading(PER_RUN)
    model = FunctionModel(script, context_windows={MODEL: window})
    store = MemoryThreadStore()
    policy = (ContextPolicy(strategy="off") if strategy == "none" else
              ContextPolicy(strategy=strategy, windows={MODEL: WINDOW}))  # type: ignore[arg-type]

    class Reader(Agent):
        tools = (Pages,)
        context_policy = policy

    Reader.model = MODEL
    settings = load_settings(thread_store="memory", stream=False, max_iterations=50)
    started = time.monotonic()
    thread_id: str | None = None
    done = 0
    async with Runtime(settings, model=model, store=store) as runtime:
        agent = Reader(runtime=runtime)
        for index in range(turns // PER_RUN):
            try:
                result = await agent.run(f"Please read the next pages ({index}).",
                                         thread_id=thread_id)
            except Exception as exc:  # none: the API refuses a prompt past the window
                if "prompt is too long" not in str(exc):
                    raise
                break
            thread_id = result.thread_id
        seconds = time.monotonic() - started
        messages = await store.messages(thread_id) if thread_id else []
        events = await store.events(thread_id) if thread_id else []
    done = sum(1 for m in messages for b in m.blocks() if b.get("type") == "tool_result")
    replies = [m for m in messages if m.role == "assistant"]
    summaries = sorted((e for e in events if e.kind == SUMMARY), key=lambda e: e.created_at)
    per_request: list[float] = []
    for reply in replies:
        cost = billed(Usage(**reply.metadata["usage"]))
        while summaries and summaries[0].created_at <= reply.created_at:
            cost += billed(Usage(**summaries.pop(0).data["usage"]))
        per_request.append(cost)
    largest = 0
    for request in model.requests:
        if request.system.startswith("You write the running summary"):
            continue
        betas = set(request.headers.get("anthropic-beta", "").split(","))
        try:
            seen = emulate_context(request.body, parse_prompt(request.body), betas,
                                   {MODEL: window})
        except ValueError:  # refused (none, past its window): never sent to the model
            continue
        largest = max(largest, seen.window_tokens)
    return Outcome(strategy, done, len(replies), script.summaries, largest, per_request,
                   seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--strategies", default=",".join(("none", *STRATEGIES)))
    args = parser.parse_args(argv)
    logging.getLogger("agentrt").setLevel(logging.WARNING)
    wanted = args.strategies.split(",")
    budget = ContextPolicy(windows={MODEL: WINDOW}).budget_for(MODEL, 4096)
    runs: dict[str, list[Outcome]] = {s: [] for s in wanted}
    for _ in range(args.repeat):
        for strategy in wanted:
            runs[strategy].append(anyio.run(converse, strategy, args.turns))
    none = runs.get("none", [None])[0]
    fits = none.requests if none is not None else 0
    print(f"conversation: {args.turns} tool turns of 20 KB results, {MODEL} window {WINDOW:,} "
          f"(budget {budget:,}); none on a {BIG:,} window fits {none.turns if none else 0} "
          f"turns ({fits} requests); {args.repeat} runs, median (min-max)")
    header = (f"| {'strategy':<11} | turns | requests | summaries |   largest | over budget "
              f"| billed input, all | billed, part that fits | vs none |           wall s |")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    base = statistics.median(o.billed_over(fits) for o in runs["none"]) if none else 0.0
    for strategy, outcomes in runs.items():
        def spread(values: list[float], form: str = "{:,.0f}") -> str:
            low, mid, high = min(values), statistics.median(values), max(values)
            return form.format(mid) if low == high else (
                f"{form.format(mid)} ({form.format(low)}-{form.format(high)})")
        part = [o.billed_over(fits) for o in outcomes]
        ratio = [p / base for p in part] if base else [0.0]
        over = "-" if strategy == "none" else str(
            (max(int(o.largest > budget) for o in outcomes) and "yes") or "no")
        print(f"| {strategy:<11} | {outcomes[0].turns:>5} | {outcomes[0].requests:>8} "
              f"| {outcomes[0].summaries:>9} | {max(o.largest for o in outcomes):>9,} "
              f"| {over:>11} | {spread([sum(o.per_request) for o in outcomes]):>17} "
              f"| {spread(part):>22} | {spread(ratio, '{:.3f}'):>7} "
              f"| {spread([o.seconds for o in outcomes], '{:.1f}'):>16} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
