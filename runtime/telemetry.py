"""OpenTelemetry traces of jobs, following the GenAI semantic conventions.

A job is one trace: a root span for the job, an ``invoke_agent`` span per run segment, a ``chat``
span per model call and an ``execute_tool`` span per tool call. A delegate's run nests under the
``execute_tool`` span of the call that started it, so the trace reads like the studio's tree.
Spans are built from the runtime's events (the same ones ``perstack run`` prints), live through
:class:`SpanRecorder` as a listener, or after the fact from a stored job
(:func:`export_stored_job`), with the events' own timestamps.

Off unless asked for (``--otel``, or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``): this module,
and the OpenTelemetry SDK it imports, are never loaded otherwise. The SDK and the OTLP exporter
are an optional extra: ``pip install 'perstack-studio[otel]'``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runtime.errors import UsageError
from runtime.schema.kinds import TERMINAL_EVENT_TYPES
from runtime.schema.results import tool_result_failed

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from runtime.schema.checkpoint import Usage
    from runtime.schema.events import PerstackEvent

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
"""The standard variable: when set, runs are traced to this OTLP/HTTP endpoint."""

INSTALL_HINT = "pip install 'perstack-studio[otel]'"

_GENERATION_ENDS = {
    "callTools": "tool_calls",
    "callDelegate": "tool_calls",
    "callInteractiveTool": "tool_calls",
    "completeRun": "stop",
    "retry": "error",
}


def wanted(flag: str | None) -> str | None:
    """The OTLP endpoint to trace to: ``--otel URL``, else the standard variable, else None."""
    return flag or os.environ.get(ENDPOINT_ENV) or None


def tracer_provider(endpoint: str) -> TracerProvider:
    """A tracer provider exporting over OTLP/HTTP to ``endpoint`` (``<endpoint>/v1/traces``).

    Raises:
        UsageError: The OpenTelemetry SDK or its OTLP exporter is not installed.
    """
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise UsageError(
            f"Tracing needs the OpenTelemetry SDK and OTLP exporter: {INSTALL_HINT}"
        ) from None
    from runtime.version import __version__

    resource = Resource.create({"service.name": "perstack", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _ns(ms: int) -> int:
    return ms * 1_000_000


def _usage_attributes(usage: Usage) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
    }
    if usage.reasoning_tokens:
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    if usage.cached_input_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
    if usage.cost_usd is not None:
        attributes["perstack.usage.cost_usd"] = usage.cost_usd
    return attributes


class SpanRecorder:
    """Turns one job's events into spans, as they come (an event listener).

    Args:
        tracer: Where the spans go.
        provider: The model provider (``gen_ai.provider.name``), when known.
    """

    def __init__(self, tracer: Tracer, *, provider: str | None = None) -> None:
        self._tracer = tracer
        self._provider = provider
        self._model: str | None = None
        self._job: Span | None = None
        self._runs: dict[str, Span] = {}
        self._generations: dict[str, Span] = {}
        self._tools: dict[str, Span] = {}
        self._first_ms: int | None = None
        self._last_ms = 0
        self.span_count = 0

    def __call__(self, event: PerstackEvent) -> None:
        """Record one event."""
        self._last_ms = max(self._last_ms, event.timestamp)
        if self._first_ms is None:
            self._first_ms = event.timestamp  # the job starts with its set-up, before its run
        if event.type == "initializeRuntime":
            self._model = event.model
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)
        if event.type in _GENERATION_ENDS:
            self._end_generation(event)
        if event.type in TERMINAL_EVENT_TYPES:
            self._end_run(event)

    def close(self) -> None:
        """End every span still open (an interrupted job) at the last event's time."""
        end = _ns(self._last_ms)
        for spans in (self._tools, self._generations, self._runs):
            for span in spans.values():
                span.end(end_time=end)
            spans.clear()
        if self._job is not None:
            self._job.end(end_time=end)
            self._job = None

    # spans -----------------------------------------------------------------------------------

    def _start(self, name: str, parent: Span | None, ms: int, attributes: dict[str, Any]) -> Span:
        from opentelemetry import trace

        context = trace.set_span_in_context(parent) if parent is not None else None
        self.span_count += 1
        return self._tracer.start_span(
            name, context=context, start_time=_ns(ms), attributes=attributes
        )

    def _job_span(self, event: Any) -> Span:
        if self._job is None:
            self._job = self._start(
                f"invoke_workflow {event.expert_key}",
                None,
                self._first_ms if self._first_ms is not None else event.timestamp,
                {
                    "gen_ai.operation.name": "invoke_workflow",
                    "gen_ai.agent.name": event.expert_key,
                    "gen_ai.conversation.id": event.job_id,
                    "perstack.job.id": event.job_id,
                },
            )
        return self._job

    def _on_startRun(self, event: Any) -> None:
        job = self._job_span(event)
        delegated_by = event.initial_checkpoint.delegated_by
        parent = job
        if delegated_by is not None:
            parent = (
                self._tools.get(delegated_by.tool_call_id)
                or self._runs.get(delegated_by.run_id)
                or job
            )
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": event.expert_key,
            "gen_ai.conversation.id": event.job_id,
            "perstack.run.id": event.run_id,
            "perstack.run.initial_status": event.initial_checkpoint.status,
        }
        if self._provider:
            attributes["gen_ai.provider.name"] = self._provider
        self._runs[event.run_id] = self._start(
            f"invoke_agent {event.expert_key}", parent, event.timestamp, attributes
        )

    def _on_startGeneration(self, event: Any) -> None:
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        if self._model:
            attributes["gen_ai.request.model"] = self._model
        if self._provider:
            attributes["gen_ai.provider.name"] = self._provider
        name = f"chat {self._model}" if self._model else "chat"
        run = self._runs.get(event.run_id)
        self._generations[event.run_id] = self._start(name, run, event.timestamp, attributes)

    def _end_generation(self, event: Any) -> None:
        span = self._generations.pop(event.run_id, None)
        if span is None:
            return
        span.set_attributes(_usage_attributes(event.usage))
        span.set_attribute("gen_ai.response.finish_reasons", [_GENERATION_ENDS[event.type]])
        if self._model:
            span.set_attribute("gen_ai.response.model", self._model)
        if event.type == "retry":
            self._fail(span, event.reason, "retry")
        span.end(end_time=_ns(event.timestamp))

    def _tool_spans(self, event: Any, calls: Iterable[Any]) -> None:
        run = self._runs.get(event.run_id)
        for call in calls:
            if call.id in self._tools:  # callDelegate repeats calls that callTools announced
                continue
            self._tools[call.id] = self._start(
                f"execute_tool {call.tool_name}",
                run,
                event.timestamp,
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": call.tool_name,
                    "gen_ai.tool.call.id": call.id,
                    "perstack.skill.name": call.skill_name,
                },
            )

    def _on_callTools(self, event: Any) -> None:
        self._tool_spans(event, event.tool_calls)

    def _on_callDelegate(self, event: Any) -> None:
        self._tool_spans(event, event.tool_calls)

    def _on_callInteractiveTool(self, event: Any) -> None:
        self._tool_spans(event, [event.tool_call])

    def _on_resolveToolResults(self, event: Any) -> None:
        for result in event.tool_results:
            span = self._tools.pop(result.id, None)
            if span is None:
                continue
            first = next((p.text for p in result.result if p.type == "textPart"), "")
            if tool_result_failed(first, is_error=result.is_error):
                self._fail(span, first[:200], "tool_error")
            span.end(end_time=_ns(event.timestamp))

    def _end_run(self, event: Any) -> None:
        span = self._runs.pop(event.run_id, None)
        if span is None:
            return
        checkpoint = event.checkpoint
        span.set_attribute("perstack.run.status", checkpoint.status)
        span.set_attribute("perstack.run.steps", checkpoint.step_number)
        span.set_attributes(_usage_attributes(checkpoint.usage))
        if event.type == "stopRunByError":
            self._fail(span, event.error.message, event.error.name)
        span.end(end_time=_ns(event.timestamp))
        delegated_by = checkpoint.delegated_by
        if event.type != "stopRunByDelegate" and delegated_by is not None:
            # The delegate answered: the call that started it is over.
            call = self._tools.pop(delegated_by.tool_call_id, None)
            if call is not None:
                call.end(end_time=_ns(event.timestamp))
        if event.type == "completeRun" and delegated_by is None and not self._runs:
            self.close()

    @staticmethod
    def _fail(span: Span, message: str, kind: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, message))
        span.set_attribute("error.type", kind)


def export_stored_job(
    events: Iterable[PerstackEvent], endpoint: str, *, provider: str | None = None
) -> int:
    """Send a stored job's events as one trace to ``endpoint``; return the number of spans.

    Raises:
        UsageError: The OpenTelemetry SDK or its OTLP exporter is not installed.
    """
    traces = tracer_provider(endpoint)
    recorder = SpanRecorder(traces.get_tracer("perstack"), provider=provider)
    try:
        for event in events:
            recorder(event)
        recorder.close()
    finally:
        traces.shutdown()  # flushes the batch
    return recorder.span_count
