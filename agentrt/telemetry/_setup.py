"""``configure()``: the OpenTelemetry SDK set up in one call (``pip install 'agentrt[otel]'``).

agentrt itself needs only the API: any tracer and meter provider the application set
up is used as it is. This is for an application that has none yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["configure"]


def configure(*, service_name: str = "agentrt", endpoint: str | None = None,
              console: bool = False, metrics: bool = True,
              set_global: bool = True) -> tuple[TracerProvider, MeterProvider | None]:
    """SDK providers exporting over OTLP/HTTP (batched), made the global ones by default.

    ``endpoint``: the collector's base URL (``http://127.0.0.1:4318``); unset, the
    exporters read ``OTEL_EXPORTER_OTLP_ENDPOINT`` and their other ``OTEL_*`` variables.
    ``console``: print spans to stdout instead (ConsoleSpanExporter), for a first look.
    Then run with ``AGENTRT_OTEL=true``, or pass the providers to ``Runtime(...)``.
    """
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            ConsoleMetricExporter,
            MetricExporter,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SpanExporter,
        )
    except ImportError as exc:
        raise ConfigError("the OpenTelemetry SDK is not installed: pip install 'agentrt[otel]'",
                          field="otel") from exc
    span_exporter: SpanExporter
    metric_exporter: MetricExporter
    if console:
        span_exporter, metric_exporter = ConsoleSpanExporter(), ConsoleMetricExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigError("the OTLP exporter is not installed: pip install "
                              "'agentrt[otel]'", field="otel") from exc
        base = endpoint.rstrip("/") if endpoint else None
        span_exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces" if base else None)
        metric_exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics" if base else None)
    resource = Resource.create({"service.name": service_name})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    meter_provider = (MeterProvider(resource=resource, metric_readers=[
        PeriodicExportingMetricReader(metric_exporter)]) if metrics else None)
    if set_global:
        from opentelemetry import metrics as otel_metrics
        from opentelemetry import trace

        trace.set_tracer_provider(tracer_provider)
        if meter_provider is not None:
            otel_metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider
