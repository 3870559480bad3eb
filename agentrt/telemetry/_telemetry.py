"""Telemetry: the spans and metrics of one Runtime, named by the GenAI conventions.

Span tree of a run (parallel tool calls are siblings; a JIT activation sits where it
happened: under the run when a call activated its tool, under ``execute_tool
initialize_tools`` when the model asked for it):

    invoke_agent {agent}
      chat {model}                        one per model request
      execute_tool {function}             one per tool_use block
      activate_tool {tool}                one per JIT activation

An ``execute_tool`` span says where the answer came from (``agentrt.tool.source``:
``executed``, or the name of the pipeline stage that answered it), so what the
pipeline saved shows on a dashboard. A call that joined another's execution links to
the leader's span: in this process (single-flight) and across processes (the shared
flight's lease carries the leader's trace context).

The loop and the processor hold ``None`` instead of a Telemetry when nothing is
configured, and test that before touching any of this: tracing off costs one ``is
None`` per call, and this module is not even imported.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from ..pipeline._types import NOT_ANSWERED, ToolCall, ToolOutcome
from ._content import bounded, messages_json, output_json, system_json

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from .._result import RunResult
    from ..llm._model import ModelReply
    from ..pipeline._types import CallContext, ToolHandler

__all__ = ["SOURCE", "Telemetry"]

SCOPE = "agentrt"
# agentrt's own attributes (the GenAI conventions have no word for these)
SOURCE = "agentrt.tool.source"  # executed, or the stage that answered (turn_dedup, memo, ...)
KEY = "agentrt.tool.key"  # the call key's first 12 hex digits (read-only calls only)
ERROR = "agentrt.tool.error"  # the result is an is_error tool_result
TOOL_CLASS = "agentrt.tool.class"  # the Tool class that defines the function
LINK = "agentrt.link"  # why a span links to another: single_flight, shared_flight
RUN_ID = "agentrt.run.id"
STOP_REASON = "agentrt.run.stop_reason"
ITERATIONS = "agentrt.run.iterations"
TOOL_CALLS = "agentrt.run.tool_calls"
EXECUTED = "agentrt.run.executed"
SAVED = "agentrt.run.saved"
DEPENDENCIES = "agentrt.tool.dependencies"
TRIGGER = "agentrt.jit.trigger"
# the conventions' content capture flag, honoured besides the setting
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

_ANTHROPIC = gen_ai.GenAiProviderNameValues.ANTHROPIC.value
_CHAT = gen_ai.GenAiOperationNameValues.CHAT.value
_INVOKE_AGENT = gen_ai.GenAiOperationNameValues.INVOKE_AGENT.value
_EXECUTE_TOOL = gen_ai.GenAiOperationNameValues.EXECUTE_TOOL.value
_INPUT = gen_ai.GenAiTokenTypeValues.INPUT.value
_OUTPUT = gen_ai.GenAiTokenTypeValues.OUTPUT.value


def capture_from_env() -> bool:
    return os.environ.get(CAPTURE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentrt")
    except PackageNotFoundError:  # run from a source tree
        return "0"


def _fail(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:300]))
    span.set_attribute(ERROR_TYPE, type(exc).__qualname__)


class _Current:
    """A span made current for a ``with`` block (a class: cheaper than a generator)."""

    __slots__ = ("span", "token")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.token: object = None

    def __enter__(self) -> None:
        if self.span is not None:
            self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            otel_context.detach(self.token)  # type: ignore[arg-type]


class Telemetry:
    """What a Runtime traces and measures; ``tracer`` is None with metrics only.

    ``chat_spans``: whether agentrt makes the ``chat`` spans; off when the SDK client
    makes its own (its ``open_telemetry`` option), so a model request has one span.
    ``capture_content``: record prompts, tool inputs and results (opt-in).
    """

    def __init__(self, tracer_provider: TracerProvider | None = None,
                 meter_provider: MeterProvider | None = None, *,
                 capture_content: bool = False, chat_spans: bool = True) -> None:
        self.tracer = (tracer_provider.get_tracer(SCOPE, _version())
                       if tracer_provider is not None else None)
        self.capture_content = capture_content or capture_from_env()
        self.chat_spans = chat_spans and self.tracer is not None
        self.metering = meter_provider is not None
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE, _version())
            self.token_usage = gen_ai_metrics.create_gen_ai_client_token_usage(meter)
            self.duration = gen_ai_metrics.create_gen_ai_client_operation_duration(meter)
            self.tool_calls = meter.create_counter(
                "agentrt.tool.calls", unit="{call}",
                description="Tool calls, by the source of their answer (executed or a stage).")
            self.saved = meter.create_counter(
                "agentrt.tool.upstream_saved", unit="{call}",
                description="Tool calls a pipeline stage answered without running the tool.")

    # -- context --------------------------------------------------------------------

    @staticmethod
    def attach(span: Span | None) -> object:
        """Makes ``span`` current until :meth:`detach` (in the same task, no yield between)."""
        return otel_context.attach(trace.set_span_in_context(span)) if span is not None else None

    @staticmethod
    def detach(token: object) -> None:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    @staticmethod
    def current(span: Span | None) -> _Current:
        """``span`` current inside the block (which must not span a ``yield``)."""
        return _Current(span)

    # -- the run ----------------------------------------------------------------------

    def start_run(self, agent: str, thread_id: str, run_id: str) -> Span | None:
        if self.tracer is None:
            return None
        return self.tracer.start_span(
            f"{_INVOKE_AGENT} {agent}", kind=SpanKind.INTERNAL, attributes={
                gen_ai.GEN_AI_OPERATION_NAME: _INVOKE_AGENT,
                gen_ai.GEN_AI_PROVIDER_NAME: _ANTHROPIC,
                gen_ai.GEN_AI_AGENT_NAME: agent,
                gen_ai.GEN_AI_CONVERSATION_ID: thread_id,
                RUN_ID: run_id})

    @staticmethod
    def end_run(span: Span | None, result: RunResult | None,
                exc: BaseException | None = None) -> None:
        if span is None:
            return
        if result is not None:
            usage, stats = result.usage, result.stats
            span.set_attributes({
                gen_ai.GEN_AI_USAGE_INPUT_TOKENS: usage.prompt_tokens,
                gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
                gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_input_tokens,
                gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS:
                    usage.cache_creation_input_tokens,
                gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: [result.stop_reason],
                STOP_REASON: result.stop_reason, ITERATIONS: result.iterations,
                TOOL_CALLS: stats.tool_calls, EXECUTED: stats.executed,
                SAVED: sum(stats.hits.values())})
        if exc is not None and not isinstance(exc, GeneratorExit):
            _fail(span, exc)
        span.end()

    # -- model requests ---------------------------------------------------------------

    def start_chat(self, request: Mapping[str, Any], stream: bool,
                   parent: Span | None) -> Span | None:
        """The ``chat`` span of one request, a child of ``parent`` (the run's)."""
        if not self.chat_spans:
            return None
        assert self.tracer is not None
        model = str(request.get("model"))
        span = self.tracer.start_span(f"{_CHAT} {model}", kind=SpanKind.CLIENT, context=(
            trace.set_span_in_context(parent) if parent is not None else None), attributes={
            gen_ai.GEN_AI_OPERATION_NAME: _CHAT,
            gen_ai.GEN_AI_PROVIDER_NAME: _ANTHROPIC,
            gen_ai.GEN_AI_REQUEST_MODEL: model,
            gen_ai.GEN_AI_REQUEST_MAX_TOKENS: int(request.get("max_tokens") or 0),
            gen_ai.GEN_AI_REQUEST_STREAM: stream})
        if self.capture_content and span.is_recording():
            span.set_attribute(gen_ai.GEN_AI_INPUT_MESSAGES,
                               messages_json(request.get("messages") or ()))
            if request.get("system"):
                span.set_attribute(gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS,
                                   system_json(request.get("system")))
        return span

    def end_chat(self, span: Span | None, request: Mapping[str, Any], reply: ModelReply,
                 duration: float, first_token: float | None) -> None:
        usage = reply.usage
        if span is not None:
            span.set_attributes({
                gen_ai.GEN_AI_RESPONSE_MODEL: reply.model,
                gen_ai.GEN_AI_RESPONSE_ID: reply.id,
                gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: [reply.stop_reason],
                gen_ai.GEN_AI_USAGE_INPUT_TOKENS: usage.prompt_tokens,
                gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
                gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: usage.cache_read_input_tokens,
                gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS:
                    usage.cache_creation_input_tokens})
            if first_token is not None:
                span.set_attribute(gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, first_token)
            if self.capture_content:
                span.set_attribute(gen_ai.GEN_AI_OUTPUT_MESSAGES,
                                   output_json(reply.content, reply.stop_reason))
            span.end()
        if self.metering:
            attributes = {gen_ai.GEN_AI_OPERATION_NAME: _CHAT,
                          gen_ai.GEN_AI_PROVIDER_NAME: _ANTHROPIC,
                          gen_ai.GEN_AI_REQUEST_MODEL: str(request.get("model")),
                          gen_ai.GEN_AI_RESPONSE_MODEL: reply.model}
            self.duration.record(duration, attributes)
            self.token_usage.record(usage.prompt_tokens,
                                    {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: _INPUT})
            self.token_usage.record(usage.output_tokens,
                                    {**attributes, gen_ai.GEN_AI_TOKEN_TYPE: _OUTPUT})

    def fail_chat(self, span: Span | None, request: Mapping[str, Any], exc: BaseException,
                  duration: float) -> None:
        if span is not None:
            if not isinstance(exc, GeneratorExit):
                _fail(span, exc)
            span.end()
        if self.metering:
            self.duration.record(duration, {gen_ai.GEN_AI_OPERATION_NAME: _CHAT,
                                            gen_ai.GEN_AI_PROVIDER_NAME: _ANTHROPIC,
                                            gen_ai.GEN_AI_REQUEST_MODEL: str(request.get("model")),
                                            ERROR_TYPE: type(exc).__qualname__})

    # -- tool calls -------------------------------------------------------------------

    async def tool_call(self, block: Mapping[str, Any], item: ToolCall | ToolOutcome,
                        handler: ToolHandler, ctx: CallContext) -> ToolOutcome:
        """Runs one call (``item`` is already its outcome when it was rejected) in its
        ``execute_tool`` span, current while it runs, and counts it."""
        name = str(block.get("name"))
        span = None
        if self.tracer is not None:
            attributes: dict[str, Any] = {
                gen_ai.GEN_AI_OPERATION_NAME: _EXECUTE_TOOL,
                gen_ai.GEN_AI_TOOL_NAME: name,
                gen_ai.GEN_AI_TOOL_CALL_ID: str(block.get("id")),
                gen_ai.GEN_AI_TOOL_TYPE: "function"}
            if isinstance(item, ToolCall):
                attributes[TOOL_CLASS] = item.spec.tool_name
                if item.key is not None:
                    attributes[KEY] = item.key[:12]
            if self.capture_content:
                attributes[gen_ai.GEN_AI_TOOL_CALL_ARGUMENTS] = bounded(json.dumps(
                    block.get("input"), ensure_ascii=False, default=str))
            span = self.tracer.start_span(f"{_EXECUTE_TOOL} {name}", kind=SpanKind.INTERNAL,
                                          attributes=attributes)
        token = self.attach(span)
        try:
            outcome = item if isinstance(item, ToolOutcome) else await handler(item, ctx)
        except BaseException as exc:  # the run is cancelled (an outcome otherwise)
            if span is not None:
                _fail(span, exc)
                span.end()
            raise
        finally:
            self.detach(token)
        if span is not None:
            span.set_attributes({SOURCE: outcome.source, ERROR: outcome.is_error})
            if outcome.is_error:
                span.set_status(Status(StatusCode.ERROR, outcome.content[:300]))
                span.set_attribute(ERROR_TYPE, outcome.error_type or (
                    "rejected" if outcome.source == "rejected" else "tool_error"))
            if self.capture_content:
                span.set_attribute(gen_ai.GEN_AI_TOOL_CALL_RESULT, bounded(outcome.content))
            span.end()
        if self.metering:
            fields = {gen_ai.GEN_AI_TOOL_NAME: name, SOURCE: outcome.source}
            self.tool_calls.add(1, fields)
            if outcome.source not in NOT_ANSWERED:
                self.saved.add(1, fields)
        return outcome

    # -- links between a call and the execution it joined ----------------------------

    @staticmethod
    def current_span_context() -> SpanContext | None:
        """The current span's context, to link to (None when nothing records)."""
        found = trace.get_current_span().get_span_context()
        return found if found.is_valid else None

    @staticmethod
    def link_current(to: SpanContext, why: str) -> None:
        """Links the current span (a joining call's) to ``to`` (the leader's)."""
        trace.get_current_span().add_link(to, {LINK: why})

    @classmethod
    def traceparent(cls) -> str | None:
        """The current span's W3C ``traceparent``, to send to another process."""
        found = cls.current_span_context()
        if found is None:
            return None
        return f"00-{found.trace_id:032x}-{found.span_id:016x}-{int(found.trace_flags):02x}"

    @staticmethod
    def from_traceparent(value: str) -> SpanContext | None:
        parts = value.split("-")
        try:
            if len(parts) != 4 or parts[0] != "00":
                return None
            found = SpanContext(int(parts[1], 16), int(parts[2], 16), is_remote=True,
                                trace_flags=TraceFlags(int(parts[3], 16)))
        except ValueError:
            return None
        return found if found.is_valid else None

    # -- JIT -----------------------------------------------------------------------------

    @contextmanager
    def activation(self, tool: str, dependencies: Sequence[str],
                   trigger: str) -> Iterator[Span | None]:
        """The ``activate_tool`` span of one JIT activation (current while it runs)."""
        if self.tracer is None:
            yield None
            return
        with self.tracer.start_as_current_span(
                f"activate_tool {tool}", kind=SpanKind.INTERNAL,
                attributes={gen_ai.GEN_AI_TOOL_NAME: tool, DEPENDENCIES: list(dependencies),
                            TRIGGER: trigger}) as span:
            yield span

    @staticmethod
    def activation_failed(span: Span | None, error: str | None) -> None:
        if span is not None and error is not None:
            span.set_status(Status(StatusCode.ERROR, error[:300]))
            span.set_attribute(ERROR_TYPE, "activation_failed")
