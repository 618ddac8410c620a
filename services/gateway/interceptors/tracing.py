"""Tracing: every RPC is a SERVER span (``tailorline.v1.PlanningService/CreatePlan``), a child of
the caller's trace when the call's metadata carries W3C ``traceparent``, else a new trace. The
span is current while the call runs, so the log lines, the downstream calls (predictor, optimizer,
store) and the error details (``trace-id`` trailing metadata, see
:class:`~services.gateway.interceptors.request_log.RequestLogInterceptor`) all carry its trace id.
Outermost of the chain: the other interceptors run inside the span."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from opentelemetry import propagate, trace

from services.common.telemetry import tracer
from services.gateway.interceptors.base import Interceptor, metadata, rewrap, timed

#: Codes a caller caused: the span is not marked as an error for them.
CLIENT_CODES = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.CANCELLED,
}


class TracingInterceptor(Interceptor):
    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method = details.method
        carrier = {str(k).lower(): v for k, v in metadata(details).items() if isinstance(v, str)}
        service, _, rpc = method.lstrip("/").partition("/")

        @asynccontextmanager
        async def scope(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
            with tracer("tailorline.gateway").start_as_current_span(
                method.lstrip("/"),
                context=propagate.extract(carrier),
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc},
                record_exception=False,
                set_status_on_exception=False,
            ) as span:

                def done(code: grpc.StatusCode, _seconds: float, _details: str) -> None:
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                    if code not in CLIENT_CODES:
                        span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))

                async with timed(context, done):
                    yield

        return rewrap(handler, scope=scope)
