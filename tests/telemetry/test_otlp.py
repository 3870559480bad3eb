"""The wire format: agentrt.telemetry.configure()'s real OTLP/HTTP exporters send to a
receiver this test runs on 127.0.0.1, which decodes the OTLP protobufs it gets."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from agentrt import Runtime, load_settings
from agentrt.telemetry import configure

from .support import shop_model, shop_module

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

pytestmark = [pytest.mark.anyio, pytest.mark.integration]


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector's two endpoints, protobuf only."""

    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert self.headers.get("Content-Type") == "application/x-protobuf"
        if self.path == "/v1/traces":
            self.server.traces.append(ExportTraceServiceRequest.FromString(body))
            reply = ExportTraceServiceResponse().SerializeToString()
        elif self.path == "/v1/metrics":
            self.server.metrics.append(ExportMetricsServiceRequest.FromString(body))
            reply = ExportMetricsServiceResponse().SerializeToString()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    traces: list[ExportTraceServiceRequest]
    metrics: list[ExportMetricsServiceRequest]


@pytest.fixture
def collector() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Receiver)
    server.traces, server.metrics = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


async def test_spans_and_metrics_reach_an_otlp_collector(collector: _Server) -> None:
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    tracer_provider, meter_provider = configure(service_name="shop-test", endpoint=endpoint,
                                                set_global=False)
    assert meter_provider is not None
    shop = shop_module()
    try:
        async with Runtime(load_settings(thread_store="memory"), model=shop_model(),
                           tracer_provider=tracer_provider,
                           meter_provider=meter_provider) as runtime:
            result = await shop.ShopAgent(runtime).run(shop.TASK)
        # the batch processor and the periodic reader export from their own threads
        assert await anyio.to_thread.run_sync(tracer_provider.force_flush)
        assert await anyio.to_thread.run_sync(meter_provider.force_flush)
    finally:
        await anyio.to_thread.run_sync(tracer_provider.shutdown)
        await anyio.to_thread.run_sync(meter_provider.shutdown)

    spans = []
    for request in collector.traces:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            assert resource["service.name"] == "shop-test"
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "agentrt"
                spans.extend(scope_spans.spans)
    by_id = {s.span_id: s for s in spans}
    names = sorted(s.name for s in spans)
    assert names == sorted(["invoke_agent ShopAgent", *["chat claude-haiku-5-5"] * 4,
                            *["execute_tool get_product"] * 4, *["execute_tool get_user"] * 2])
    (run,) = [s for s in spans if s.name.startswith("invoke_agent")]
    assert not run.parent_span_id
    assert all(by_id[s.parent_span_id] is run for s in spans if s is not run)
    assert len({s.trace_id for s in spans}) == 1
    attributes = {a.key: _value(a.value) for a in run.attributes}
    assert attributes["gen_ai.conversation.id"] == result.thread_id
    assert attributes["agentrt.run.saved"] == 4
    sources = sorted(_value(a.value) for s in spans for a in s.attributes
                     if a.key == "agentrt.tool.source")
    assert sources == ["executed", "executed", "memo", "memo", "memo", "turn_dedup"]
    (dedup,) = [s for s in spans if any(
        a.key == "agentrt.tool.source" and _value(a.value) == "turn_dedup" for a in s.attributes)]
    assert [link.span_id in by_id for link in dedup.links] == [True]
    chat = next(s for s in spans if s.name.startswith("chat"))
    assert chat.kind == chat.SPAN_KIND_CLIENT
    assert {a.key for a in chat.attributes} >= {
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
        "gen_ai.response.model", "gen_ai.response.id", "gen_ai.response.finish_reasons",
        "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens"}

    metrics: dict[str, Any] = {}
    for request in collector.metrics:
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    metrics[metric.name] = metric
    assert set(metrics) == {"gen_ai.client.token.usage", "gen_ai.client.operation.duration",
                            "agentrt.tool.calls", "agentrt.tool.upstream_saved"}
    assert metrics["gen_ai.client.token.usage"].unit == "{token}"
    assert metrics["gen_ai.client.operation.duration"].unit == "s"
    tokens = {next(_value(a.value) for a in p.attributes if a.key == "gen_ai.token.type"): p.sum
              for p in metrics["gen_ai.client.token.usage"].histogram.data_points}
    assert tokens == {"input": result.usage.prompt_tokens,
                      "output": result.usage.output_tokens}
    saved = sum(p.as_int for p in metrics["agentrt.tool.upstream_saved"].sum.data_points)
    calls = sum(p.as_int for p in metrics["agentrt.tool.calls"].sum.data_points)
    assert (saved, calls) == (4, 6)
