"""OpenTelemetry traces and metrics of executions, opt-in.

Off (the default), call sites hold ``None`` instead of a ``Tracing`` and test only that, once
per execution, node visit, model call and tool call: no OpenTelemetry module is loaded and no
span object is made (OpenTelemetry is imported when a ``Tracing`` is made).
On (``RuntimeConfig(tracing=True)``, or ``ExecutorConfig(tracing=Tracing())`` for a bare
executor) spans follow the OpenTelemetry GenAI semantic conventions:

    invoke_agent {agent}        one per execution (GraphExecutor.execute)
      node {node_id}            one per node visit, retries included
        chat {model}            one per model call: model, token usage, finish reason
        execute_tool {tool}     one per tool call; a failing tool is an error span

and two histograms, ``gen_ai.client.token.usage`` (per model call, by token type) and
``gen_ai.client.operation.duration`` (seconds per model call). A span is parented by the
OpenTelemetry context current where it starts; trio copies context variables into a task at
spawn, so a fan-out branch's nodes and a turn's concurrent tool calls nest under the span
that was current when their nursery started them. A runtime runs executions in its own
nursery, so it captures the trigger caller's context and ``attach``es it in the execution's
task. Prompts, completions and tool arguments/results are recorded only with
``capture_content=True``.

Errors: an exception leaving a span records it and sets status ERROR with ``error.type``;
``trio.Cancelled`` only marks the span ``hive.cancelled`` (it is not an error).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from hive_actors.llm.provider import Usage

_SCOPE = "hive_actors"
# token counts: powers of 4 up to 64M, as the GenAI conventions advise
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                  16777216, 67108864]
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                     40.96, 81.92]


def provider_name(model: str) -> str:
    """The ``gen_ai.provider.name`` of a litellm-style model name ("openai/gpt-4o" -> "openai")."""
    prefix, sep, _ = model.partition("/")
    return prefix if sep else "unknown"


class Tracing:
    """Where spans and metrics of a runtime (or a bare executor) go.

    ``tracer_provider`` / ``meter_provider``: None = OpenTelemetry's global ones (which an
    application, or ``hive-actors run --trace``, configures). ``agent_name`` names the
    execution span (default: the graph's id). Raises ``ConfigurationError`` when the
    OpenTelemetry API is not installed (``pip install 'hive-actors[otel]'``).
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool = False,
        agent_name: str | None = None,
    ) -> None:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError:
            from hive_actors.errors import ConfigurationError

            raise ConfigurationError(
                "tracing needs OpenTelemetry: pip install 'hive-actors[otel]'"
            ) from None
        from importlib.metadata import PackageNotFoundError, version

        try:
            ours: str | None = version("hive-actors")
        except PackageNotFoundError:  # run from a source tree
            ours = None
        self._context = context
        self._trace = trace
        self.capture_content = capture_content
        self.agent_name = agent_name
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer(_SCOPE, ours)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(_SCOPE, ours)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Tokens used per model call, by gen_ai.token.type",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s",
            description="Duration of model calls",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )

    # -- context -----------------------------------------------------------------------------

    def current_context(self) -> Context:
        """The caller's OpenTelemetry context (to parent work started elsewhere)."""
        return self._context.get_current()

    def attach(self, parent: Context) -> None:
        """Make ``parent`` current in this task (an execution's task, for its whole life)."""
        self._context.attach(parent)

    # -- spans -------------------------------------------------------------------------------

    @contextmanager
    def _span(self, name: str, attributes: Mapping[str, Any], client: bool = False) -> Iterator[Span]:
        trace = self._trace
        kind = trace.SpanKind.CLIENT if client else trace.SpanKind.INTERNAL
        with self.tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except trio.Cancelled:
                span.set_attribute("hive.cancelled", True)
                raise
            except Exception as exc:
                span.record_exception(exc)
                self.fail(span, type(exc).__qualname__, f"{type(exc).__name__}: {exc}")
                raise

    def fail(self, span: Span, error_type: str, message: str) -> None:
        """Mark ``span`` failed (an exception, a failed node, a failed execution)."""
        span.set_attribute("error.type", error_type)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, message))

    def execution(self, graph_id: str, session_id: str, entry_node: str | None) -> Any:
        """The span of one execution (``invoke_agent {agent}``)."""
        agent = self.agent_name or graph_id
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": agent,
            "gen_ai.agent.id": graph_id,
        }
        if session_id:
            attributes["gen_ai.conversation.id"] = session_id
        if entry_node:
            attributes["hive.entry_node"] = entry_node
        return self._span(f"invoke_agent {agent}", attributes)

    def node(self, node_id: str, node_type: str, visit: int) -> Any:
        """The span of one node visit (``node {node_id}``)."""
        return self._span(f"node {node_id}", {
            "hive.node.id": node_id, "hive.node.type": node_type, "hive.node.visit": visit,
        })

    @contextmanager
    def chat(self, model: str, system: str = "", messages: Sequence[Mapping[str, Any]] = (),
             max_tokens: int | None = None) -> Iterator[ChatCall]:
        """The span of one model call (``chat {model}``) and its metrics; the body reports
        the turn's end through the yielded ``ChatCall``."""
        provider = provider_name(model)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.provider.name": provider,
        }
        if max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = max_tokens
        if self.capture_content:
            if system:
                attributes["gen_ai.system_instructions"] = _json([{"type": "text", "content": system}])
            attributes["gen_ai.input.messages"] = _json(list(messages))
        metric_attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                             "gen_ai.provider.name": provider}
        started = time.perf_counter()
        call = ChatCall()
        try:
            with self._span(f"chat {model}", attributes, client=True) as span:
                yield call
                span.set_attribute("gen_ai.response.finish_reasons", [call.finish_reason])
                if call.usage is not None:
                    span.set_attribute("gen_ai.usage.input_tokens", call.usage.input_tokens)
                    span.set_attribute("gen_ai.usage.output_tokens", call.usage.output_tokens)
                    if call.usage.cached_tokens:
                        span.set_attribute("gen_ai.usage.cache_read.input_tokens", call.usage.cached_tokens)
                if self.capture_content:
                    span.set_attribute("gen_ai.output.messages", _json([{
                        "role": "assistant", "content": call.text, "finish_reason": call.finish_reason,
                    }]))
        except BaseException as exc:
            metric_attributes["error.type"] = type(exc).__qualname__
            raise
        finally:
            self.operation_duration.record(time.perf_counter() - started, metric_attributes)
            if call.usage is not None:
                for kind, count in (("input", call.usage.input_tokens), ("output", call.usage.output_tokens)):
                    self.token_usage.record(count, {**metric_attributes, "gen_ai.token.type": kind})

    def tool(self, name: str, call_id: str, arguments: str) -> Any:
        """The span of one tool call (``execute_tool {tool}``)."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
        }
        if self.capture_content:
            attributes["gen_ai.tool.call.arguments"] = arguments
        return self._span(f"execute_tool {name}", attributes)

    def tool_result(self, span: Span, result: str) -> None:
        if self.capture_content:
            span.set_attribute("gen_ai.tool.call.result", result)


class ChatCall:
    """What a model call reports to its span when the turn ends."""

    __slots__ = ("finish_reason", "usage", "text")

    def __init__(self) -> None:
        self.finish_reason = "error"
        self.usage: Usage | None = None
        self.text = ""

    def end(self, finish_reason: str, usage: Usage, text: str) -> None:
        self.finish_reason, self.usage, self.text = finish_reason, usage, text


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def configure_from_env() -> Callable[[], None]:
    """Install global OpenTelemetry SDK providers configured by the standard ``OTEL_*``
    environment variables; returns the function that flushes and shuts them down.

    ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: ``otlp`` (default; the OTLP/HTTP
    exporter, which reads ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``..._HEADERS`` and the rest),
    ``console`` or ``none``. ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the
    resource (service name default: hive-actors). Raises ``ConfigurationError`` when the SDK or
    the chosen exporter is not installed.
    """
    from hive_actors.errors import ConfigurationError

    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            ConsoleMetricExporter,
            MetricExporter,
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
    except ImportError:
        raise ConfigurationError("--trace needs the OpenTelemetry SDK: pip install 'hive-actors[otel]'") from None

    def choice(variable: str) -> str:
        value = os.environ.get(variable, "otlp").strip().lower() or "otlp"
        if value not in ("otlp", "console", "none"):
            raise ConfigurationError(f"{variable}={value!r}: hive-actors knows otlp, console and none")
        return value

    def otlp(kind: str) -> Any:
        try:
            if kind == "traces":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                return OTLPSpanExporter()
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            return OTLPMetricExporter()
        except ImportError:
            raise ConfigurationError(
                f"OTLP export of {kind} needs opentelemetry-exporter-otlp-proto-http: "
                f"pip install 'hive-actors[otel]' (or set OTEL_{kind.upper()}_EXPORTER=console)"
            ) from None

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "hive-actors")})
    tracer_provider = TracerProvider(resource=resource)
    traces = choice("OTEL_TRACES_EXPORTER")
    if traces != "none":
        span_exporter: SpanExporter = otlp("traces") if traces == "otlp" else ConsoleSpanExporter()
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    readers = []
    metrics_choice = choice("OTEL_METRICS_EXPORTER")
    if metrics_choice != "none":
        metric_exporter: MetricExporter = otlp("metrics") if metrics_choice == "otlp" else ConsoleMetricExporter()
        readers.append(PeriodicExportingMetricReader(metric_exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return shutdown
