"""Traced: the shop conversation as OpenTelemetry spans, printed to the console, offline.

The same run as examples/shop.py (product 42 asked for again and again; copy shop.py
beside it), with a tracer
provider of the OpenTelemetry SDK given to the Runtime. Each span is printed as it ends
by the SDK's ``ConsoleSpanExporter`` (one line each here, through its ``formatter``),
then the run's span tree: one ``invoke_agent`` span, a ``chat`` span per model request,
an ``execute_tool`` span per tool call saying who answered it (``executed``, or the
pipeline stage that saved the upstream call). Send the same spans to Jaeger, Grafana
Tempo, Honeycomb or Langfuse with an OTLP exporter instead (docs/concepts/observability.md).

    pip install 'agentrt[otel]'    # the SDK (the dev install has it)
    python examples/traced.py
"""

from __future__ import annotations

import anyio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from shop import REPLIES, TASK, ShopAgent

from agentrt.testing import runtime_or_replay

SHOWN = ("agentrt.tool.source", "agentrt.tool.key", "gen_ai.usage.input_tokens",
         "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons", "agentrt.run.saved")


def one_line(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    shown = " ".join(f"{k.rpartition('.')[2]}={attributes[k]}" for k in SHOWN if k in attributes)
    ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    return f"[span] {span.name:<28} {ms:7.2f} ms  {shown}\n"


def tree(spans: list[ReadableSpan]) -> list[str]:
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    lines = []
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        depth, parent = 0, span.parent
        while parent is not None and parent.span_id in by_id:
            depth, parent = depth + 1, by_id[parent.span_id].parent
        source = (span.attributes or {}).get("agentrt.tool.source")
        lines.append("  " * depth + span.name + (f"  <- {source}" if source else ""))
    return lines


async def main() -> None:
    kept = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    # shop.py's scripted replies, when no API key is set
    async with runtime_or_replay(REPLIES, thread_store="memory",
                                 tracer_provider=provider) as runtime:
        result = await ShopAgent(runtime).run(TASK)
    provider.shutdown()
    print(f"\nThe span tree of run {result.run_id}:")
    for line in tree(list(kept.get_finished_spans())):
        print("  " + line)
    stats = result.stats
    print(f"\n{stats.tool_calls} tool calls, {stats.executed} executed, "
          f"{sum(stats.hits.values())} answered by the pipeline")


if __name__ == "__main__":
    anyio.run(main)
