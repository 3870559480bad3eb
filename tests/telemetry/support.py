"""The real OpenTelemetry SDK, recording in memory: spans as a tree, metrics as points."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def shop_module() -> Any:
    """examples/shop.py (ShopAgent, ShopAPI, REPLIES, TASK), imported as the examples run."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    import shop

    return shop


def shop_model() -> Any:
    """A ScriptedModel answering as examples/shop.py's REPLIES script the conversation."""
    from agentrt.testing import ScriptedModel, replies_by_turn

    return ScriptedModel(replies_by_turn(shop_module().REPLIES))


def call_once(name: str, arguments: dict[str, Any]) -> Any:
    """A FunctionModel that calls ``name`` once, then answers "done"."""
    from agentrt.testing import FunctionModel, RecordedRequest, Reply, ToolUse

    def reply(request: RecordedRequest) -> Reply:
        answered = any(isinstance(m.get("content"), list) and any(
            b.get("type") == "tool_result" for b in m["content"]) for m in request.messages)
        return Reply(text="done") if answered else Reply(tool_calls=[ToolUse(name, arguments)])

    return FunctionModel(reply)


def span_json(span: ReadableSpan) -> dict[str, Any]:
    """What a test compares of a span, across a process boundary."""
    assert span.context is not None
    return {"name": span.name, "trace_id": f"{span.context.trace_id:032x}",
            "span_id": f"{span.context.span_id:016x}",
            "parent": f"{span.parent.span_id:016x}" if span.parent else None,
            "attributes": {k: v if isinstance(v, str | int | float | bool) else list(v)
                           for k, v in (span.attributes or {}).items()},
            "links": [{"trace_id": f"{link.context.trace_id:032x}",
                       "span_id": f"{link.context.span_id:016x}",
                       "attributes": dict(link.attributes or {})} for link in span.links]}


@dataclass
class Recorder:
    """A tracer and a meter provider of the real SDK, exporting to memory."""

    spans: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    tracer_provider: TracerProvider = field(default_factory=TracerProvider)
    meter_provider: MeterProvider = field(init=False)

    def __post_init__(self) -> None:
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def finished(self) -> list[ReadableSpan]:
        return sorted(self.spans.get_finished_spans(), key=lambda s: s.start_time or 0)

    def tree(self) -> list[str]:
        """Each span's name, indented by its depth, in start order (children after
        their parent)."""
        spans = self.finished()
        by_id = {s.context.span_id: s for s in spans if s.context is not None}

        def depth(span: ReadableSpan) -> int:
            found = 0
            while span.parent is not None and span.parent.span_id in by_id:
                span = by_id[span.parent.span_id]
                found += 1
            return found

        lines = ["  " * depth(s) + s.name for s in spans]
        # Calls of one message run side by side (and start early, while it streams): the
        # order their spans start in is the scheduler's, so a run of sibling leaf calls is
        # shown sorted.
        ordered: list[str] = []
        run: list[str] = []
        for index, line in enumerate(lines):
            following = lines[index + 1] if index + 1 < len(lines) else ""
            leaf = _indent(following) <= _indent(line)
            if line.lstrip().startswith("execute_tool") and leaf and (
                    not run or _indent(run[0]) == _indent(line)):
                run.append(line)
                continue
            ordered += sorted(run)
            run = []
            ordered.append(line)
        return ordered + sorted(run)

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def points(self) -> Iterator[tuple[str, dict[str, Any], Any]]:
        """(metric name, attributes, value or (count, sum)) for every data point."""
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        yield (metric.name, dict(point.attributes or {}),
                               value if value is not None else (point.count, point.sum))

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
