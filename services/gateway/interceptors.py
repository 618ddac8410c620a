"""Server interceptors of the gateway: request id + logging + metrics, auth, error mapping.

Every handler of the tailorline.v1 services is rewrapped so that
- requests are deserialised here: a malformed or oversized message is INVALID_ARGUMENT (gRPC's own
  deserialisation failure would surface as an opaque status);
- a bearer token is checked (health and reflection stay open, as probes send no token);
- exceptions become statuses in ONE place (:func:`status_of`): a :class:`TailorlineError` (or an
  optimizer error via ``translate``) carries its code, field and reason; anything else is INTERNAL
  with the request id, and is logged with its traceback.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from services.common.errors import InvalidArgument, Unauthenticated, translate

log = logging.getLogger("tailorline.gateway")
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
FIELD_KEY = "tailorline-field"
REQUEST_ID_KEY = "x-request-id"


class _Malformed:
    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def safe_deserializer(
    deserialize: Callable[[bytes], Any], max_bytes: int
) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        if len(data) > max_bytes:
            return _Malformed(
                InvalidArgument(
                    f"message of {len(data)} bytes; at most {max_bytes}", field="request"
                )
            )
        try:
            return deserialize(data)
        except (DecodeError, ValueError, RuntimeError) as exc:
            return _Malformed(InvalidArgument(f"malformed message: {exc}", field="request"))

    return parse


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """(code, details, field) of an exception raised by a servicer."""
    err = translate(exc)
    if err is not None:
        return err.grpc_code, str(err), err.field or ""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        code = exc.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return code, f"downstream: {exc.details()}", ""
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id.get()})", ""


class Metrics:
    """Prometheus metrics of the gateway, in their own registry."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tailorline_gateway_requests",
            "RPCs handled",
            ["method", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "tailorline_gateway_errors",
            "RPCs that ended with an error",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tailorline_gateway_request_seconds",
            "RPC latency",
            ["method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.solve_seconds = Histogram(
            "tailorline_gateway_solve_seconds",
            "Optimizer time per plan (total_time_s)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.downstream_up = Gauge(
            "tailorline_gateway_downstream_up",
            "1 while a downstream answers its health probe",
            ["downstream"],
            registry=self.registry,
        )


class GatewayInterceptor(grpc.aio.ServerInterceptor):
    """Request id, auth, logging, metrics and the status mapping around every RPC."""

    def __init__(
        self, *, token: str | None, metrics: Metrics | None, max_message_bytes: int
    ) -> None:
        self.token = token
        self.metrics = metrics
        self.max_bytes = max_message_bytes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        metadata = {k: v for k, v in (details.invocation_metadata or ())}
        rid = str(metadata.get(REQUEST_ID_KEY) or uuid.uuid4().hex)[:64]
        denied = self._check_token(metadata.get("authorization"))
        return self._wrap(handler, method, rid, denied)

    def _check_token(self, header: Any) -> Unauthenticated | None:
        if self.token is None:
            return None
        if not isinstance(header, str) or not header.lower().startswith("bearer "):
            return Unauthenticated("send metadata 'authorization: Bearer <token>'")
        if not hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
            return Unauthenticated("the bearer token is not valid")
        return None

    def _wrap(
        self, handler: grpc.RpcMethodHandler, method: str, rid: str, denied: Exception | None
    ) -> grpc.RpcMethodHandler:
        interceptor = self

        async def finish(context: Any, started: float, exc: BaseException | None) -> None:
            code, details, field = (grpc.StatusCode.OK, "", "") if exc is None else status_of(exc)
            elapsed = time.perf_counter() - started
            if interceptor.metrics is not None:
                interceptor.metrics.requests.labels(method, code.name).inc()
                interceptor.metrics.latency.labels(method).observe(elapsed)
                if code != grpc.StatusCode.OK:
                    interceptor.metrics.errors.labels(method, code.name).inc()
            if code == grpc.StatusCode.INTERNAL:
                log.error("%s %s failed (request id %s)", method, code.name, rid, exc_info=exc)
            else:
                log.info("%s %s %.1f ms rid=%s %s", method, code.name, elapsed * 1e3, rid, details)
            trailing: list[tuple[str, str]] = [(REQUEST_ID_KEY, rid)]
            if exc is None:
                context.set_trailing_metadata(tuple(trailing))
                return
            if field:
                trailing.append((FIELD_KEY, field))
            await context.abort(code, details, tuple(trailing))

        def checked(request: Any) -> Any:
            if denied is not None:
                raise denied
            if isinstance(request, _Malformed):
                raise request.error
            return request

        async def checked_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for r in requests:
                yield checked(r)

        deserialize = safe_deserializer(
            handler.request_deserializer or (lambda b: b), self.max_bytes
        )
        serialize = handler.response_serializer

        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: Any) -> Any:
                request_id.set(rid)
                started = time.perf_counter()
                try:
                    response = await inner_uu(checked(request), context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await finish(context, started, exc)
                    raise AssertionError("abort returned") from None
                await finish(context, started, None)
                return response

            return grpc.unary_unary_rpc_method_handler(unary_unary, deserialize, serialize)

        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
                request_id.set(rid)
                started = time.perf_counter()
                try:
                    async for item in inner_us(checked(request), context):
                        yield item
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await finish(context, started, exc)
                    return
                await finish(context, started, None)

            return grpc.unary_stream_rpc_method_handler(unary_stream, deserialize, serialize)

        if handler.stream_unary is not None:
            inner_su = handler.stream_unary

            async def stream_unary(requests: Any, context: Any) -> Any:
                request_id.set(rid)
                started = time.perf_counter()
                try:
                    if denied is not None:
                        raise denied
                    response = await inner_su(checked_stream(requests), context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await finish(context, started, exc)
                    raise AssertionError("abort returned") from None
                await finish(context, started, None)
                return response

            return grpc.stream_unary_rpc_method_handler(stream_unary, deserialize, serialize)

        return handler  # stream-stream: none in this API
