"""Trace context across the optimizer's hops: client -> Serve's gRPC proxy -> ingress -> Solver.

W3C trace context (``traceparent``, ``tracestate``) travels as gRPC metadata from the client
(:func:`inject_metadata`) to the ingress, which reads it from Serve's gRPC context
(:func:`context_from_metadata`), and as a small dict argument from the ingress to a Solver replica
(:func:`carrier`), since a ``DeploymentHandle`` call carries no metadata.

Every Ray worker of the app sets up its own tracer provider (:func:`setup_tracing`, called by
each deployment's constructor): spans are made either way (their ids go into the log lines), and
exported over OTLP/gRPC when ``TAILORLINE_OTLP_ENDPOINT`` is set in the worker's environment (the
local runner forwards it through the Ray runtime env; on Kubernetes the RayService's pods have
it). The same variable as the services' (``services.common.telemetry``), which this package may
not import.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

OTLP_ENDPOINT_ENV = "TAILORLINE_OTLP_ENDPOINT"
#: Environment a Ray worker needs for tracing (forwarded by the local runner when set).
TRACING_ENV = (OTLP_ENDPOINT_ENV, "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT")
SERVICE_NAME = "tailorline-optimizer"
F = TypeVar("F", bound=Callable[..., Any])


def tracer() -> trace.Tracer:
    return trace.get_tracer("tailorline.optimizer")


def setup_tracing(service_name: str = SERVICE_NAME) -> None:
    """An SDK tracer provider for this process (once), exporting over OTLP when
    ``TAILORLINE_OTLP_ENDPOINT`` is set; and the trace id on this process's log records."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    endpoint = os.environ.get(OTLP_ENDPOINT_ENV, "")
    if endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter = OTLPSpanExporter(endpoint=endpoint, insecure=not endpoint.startswith("https"))
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _log_trace_ids()


def _log_trace_ids() -> None:
    """Records of our loggers (``optimizer.*``) made inside a span end with ``trace=<id>``:
    Ray Serve formats the replicas' log lines itself, so the id goes into the message."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_tailorline", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ctx = trace.get_current_span().get_span_context()
        trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        record.trace_id = trace_id
        if ctx.is_valid and record.name.startswith("optimizer") and isinstance(record.msg, str):
            record.msg = f"{record.msg} trace={trace_id}"
        return record

    factory._tailorline = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def inject_metadata(metadata: Iterable[tuple[str, str]] = ()) -> tuple[tuple[str, str], ...]:
    """``metadata`` plus the current trace context's W3C headers (none outside a span)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return (*tuple(metadata), *headers.items())


def context_from_metadata(metadata: Iterable[tuple[str, Any]]) -> otel_context.Context:
    """The caller's trace context from gRPC invocation metadata (an empty one without it)."""
    carrier = {str(k).lower(): v for k, v in metadata if isinstance(v, str)}
    return propagate.extract(carrier)


def carrier() -> dict[str, str]:
    """The current trace context as a dict to hand to another deployment."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def context_from(carrier: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(carrier or {}))


# --------------------------------------------------------------------------- the ingress's spans


def _enum_name(message: Any, field: str, prefix: str) -> str:
    """An enum field's value name without its prefix, lower case (``PLAN_STATUS_OPTIMAL`` ->
    ``optimal``)."""
    value = getattr(message, field)
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    name = enum.values_by_number[value].name if value in enum.values_by_number else str(value)
    return name.removeprefix(prefix).lower()


def _problem_of(request: Any) -> Any:
    """The (base) problem of a Solve / SolveBatch / SolveStream request, or None."""
    for path in (("problem",), ("batch", "problem")):
        message = request
        for name in path:
            if name not in message.DESCRIPTOR.fields_by_name or not message.HasField(name):
                message = None
                break
            message = getattr(message, name)
        if message is not None:
            return message
    return None


def _plans_of(response: Any) -> list[tuple[str, Any]]:
    """``(status, plan or None)`` of each plan or scenario result in a response message."""
    fields = response.DESCRIPTOR.fields_by_name
    if "plan" in fields and response.HasField("plan"):
        return [(_enum_name(response.plan, "status", "PLAN_STATUS_"), response.plan)]
    out: list[tuple[str, Any]] = []
    results = list(response.results) if "results" in fields else []
    if "result" in fields and response.HasField("result"):
        results.append(response.result)
    for result in results:
        if result.HasField("plan"):
            out.append((_enum_name(result.plan, "status", "PLAN_STATUS_"), result.plan))
        elif result.HasField("error"):
            code = result.error.code
            out.append(("infeasible" if code == 9 else "invalid" if code == 3 else "error", None))
    return out


def describe_span(span: trace.Span, request: Any, responses: list[Any], code: Any) -> None:
    """What operators filter solve spans on: ``tailorline.status`` (``optimal``, ``feasible``,
    ``infeasible``, ..., ``mixed`` for a batch of several), ``tailorline.gap``,
    ``tailorline.method``, ``tailorline.variants`` x ``tailorline.periods``, the solve time."""
    problem = _problem_of(request)
    if problem is not None:
        span.set_attribute("tailorline.variants", len(problem.variants))
        span.set_attribute("tailorline.periods", len(problem.periods))
    plans = [p for r in responses for p in _plans_of(r)]
    statuses = sorted({s for s, _ in plans})
    code_name = getattr(code, "name", None) or "OK"
    span.set_attribute("rpc.grpc.status_code", code_name)
    if len(plans) > 1:
        span.set_attribute("tailorline.scenarios", len(plans))
    if statuses:
        span.set_attribute("tailorline.status", statuses[0] if len(statuses) == 1 else "mixed")
    elif code_name == "FAILED_PRECONDITION":
        span.set_attribute("tailorline.status", "infeasible")
    elif code_name == "INVALID_ARGUMENT":
        span.set_attribute("tailorline.status", "invalid")
    elif code_name != "OK":
        span.set_attribute("tailorline.status", "error")
    solved = [p for _, p in plans if p is not None]
    if solved:
        span.set_attribute("tailorline.method", _enum_name(solved[0], "method", "SOLVE_METHOD_"))
        gaps = [p.gap for p in solved if p.HasField("gap")]
        if gaps:
            span.set_attribute("tailorline.gap", max(gaps))
        span.set_attribute("tailorline.solve_time_s", max(p.total_time_s for p in solved))
    if code_name not in ("OK", "INVALID_ARGUMENT", "FAILED_PRECONDITION"):
        span.set_status(trace.Status(trace.StatusCode.ERROR, code_name))


def traced_rpc(rpc: str) -> Callable[[F], F]:
    """A SERVER span around an ingress method (unary or streaming), a child of the caller's
    trace (W3C ``traceparent`` in the call's metadata, which Serve's proxy hands over in its gRPC
    context), described by :func:`describe_span` when the call ends."""

    def wrap(method: F) -> F:
        name = f"tailorline.optimizer.v1.OptimizerService/{rpc}"

        def start(grpc_context: Any, current: bool) -> Any:
            setup_tracing()
            begin = tracer().start_as_current_span if current else tracer().start_span
            return begin(
                name,
                context=context_from_metadata(grpc_context.invocation_metadata()),
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.method": rpc},
            )

        if inspect.isasyncgenfunction(method):
            # not made current: an async generator resumes in its consumer's context each time,
            # and a context attached in one step could not be detached in another

            @functools.wraps(method)
            async def streamed(self: Any, request: Any, grpc_context: Any) -> AsyncIterator[Any]:
                span = start(grpc_context, current=False)
                sent: list[Any] = []
                items = method(self, request, grpc_context)
                try:
                    async for item in items:
                        sent.append(item)
                        yield item
                finally:
                    # closed or cancelled while paused at ``yield`` (Serve throws the caller's
                    # cancellation in there): close the method too, now, so its own ``finally``
                    # (e.g. cancelling the solves not started) runs at once, not when collected
                    await items.aclose()
                    describe_span(span, request, sent, grpc_context.code())
                    span.end()

            return cast(F, streamed)

        @functools.wraps(method)
        async def single(self: Any, request: Any, grpc_context: Any) -> Any:
            with start(grpc_context, current=True) as span:
                response = await method(self, request, grpc_context)
                describe_span(span, request, [response], grpc_context.code())
                return response

        return cast(F, single)

    return wrap
