"""OpenTelemetry traces and metrics, on the GenAI semantic conventions (off unless configured).

A :class:`Telemetry` exists only when a tracer or meter provider is configured
(``AGENTRT_OTEL=true`` for the global ones, or ``Runtime(tracer_provider=...,
meter_provider=...)``); everywhere else the runtime holds ``None`` and no span or
metric object is ever made. :func:`configure` is the one-call set-up of the SDK with
an OTLP/HTTP exporter (``pip install 'agentrt[otel]'``).
"""

from ._setup import configure
from ._telemetry import SOURCE, Telemetry

__all__ = ["SOURCE", "Telemetry", "configure"]
