"""Server interceptors of the gateway, one concern each, and the chain they form.

Outermost first (:func:`gateway_interceptors`):

0. :class:`TracingInterceptor`: the call's SERVER span (a child of the caller's W3C trace
   context), current while everything else runs;
1. :class:`RequestLogInterceptor`: the request id and the trace id (set for the call, sent back as
   trailing metadata ``x-request-id`` and ``trace-id``) and one log line per RPC;
2. :class:`MetricsInterceptor`: requests, errors and latency per method and code;
3. :class:`ErrorInterceptor`: exceptions become statuses, the one place where an error's
   ``code`` becomes a ``grpc.StatusCode`` (:func:`status_of`);
4. :class:`AuthInterceptor`: the bearer token (when one is configured);
5. :class:`MessageCheckInterceptor`: malformed or oversized request messages.

Logging and metrics sit outside the error mapping, so they see the final status of every call
(an unauthenticated or malformed one included); health and reflection pass through untouched.
All rewrap handlers with the one helper :func:`~services.gateway.interceptors.base.rewrap`.
"""

from __future__ import annotations

import grpc

from services.gateway.interceptors.auth import AuthInterceptor
from services.gateway.interceptors.base import OPEN_PREFIXES, Interceptor, rewrap
from services.gateway.interceptors.errors import (
    FIELD_KEY,
    MAX_DETAILS_CHARS,
    ErrorInterceptor,
    grpc_status,
    status_of,
)
from services.gateway.interceptors.metrics import Metrics, MetricsInterceptor
from services.gateway.interceptors.request_log import (
    REQUEST_ID_KEY,
    TRACE_ID_KEY,
    RequestLogInterceptor,
    request_id,
)
from services.gateway.interceptors.size import MessageCheckInterceptor, safe_deserializer
from services.gateway.interceptors.tracing import TracingInterceptor

__all__ = [
    "FIELD_KEY",
    "MAX_DETAILS_CHARS",
    "OPEN_PREFIXES",
    "REQUEST_ID_KEY",
    "TRACE_ID_KEY",
    "AuthInterceptor",
    "ErrorInterceptor",
    "Interceptor",
    "MessageCheckInterceptor",
    "Metrics",
    "MetricsInterceptor",
    "RequestLogInterceptor",
    "TracingInterceptor",
    "gateway_interceptors",
    "grpc_status",
    "request_id",
    "rewrap",
    "safe_deserializer",
    "status_of",
]


def gateway_interceptors(
    *, token: str | None, metrics: Metrics | None, max_message_bytes: int
) -> list[grpc.aio.ServerInterceptor]:
    """The gateway's chain, outermost first (no auth without a token, no metrics without
    ``metrics``)."""
    chain: list[grpc.aio.ServerInterceptor] = [TracingInterceptor(), RequestLogInterceptor()]
    if metrics is not None:
        chain.append(MetricsInterceptor(metrics))
    chain.append(ErrorInterceptor())
    if token is not None:
        chain.append(AuthInterceptor(token))
    chain.append(MessageCheckInterceptor(max_message_bytes))
    return chain
