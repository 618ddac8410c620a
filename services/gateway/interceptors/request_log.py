"""Request id and logging: the client's ``x-request-id`` (or a new one) is the call's id, set for
the call (:data:`request_id`) and sent back as trailing metadata, with the call's trace id
(``trace-id``, from the tracing interceptor's span: the id to look the call up by in the traces and
the logs); each RPC is logged once with its
code, latency and details (cut to :data:`MAX_LOGGED_DETAILS_CHARS`: details may quote a caller's
value, and no log line carries more than about 1 KB of what a caller sent)."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from services.common.errors import clip
from services.common.telemetry import NO_TRACE, current_trace_id
from services.gateway.interceptors.base import Interceptor, metadata, rewrap, timed

log = logging.getLogger("tailorline.gateway")
#: The id of the call being handled ("-" outside one).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
REQUEST_ID_KEY = "x-request-id"
TRACE_ID_KEY = "trace-id"
#: Longest request id taken from a client.
MAX_REQUEST_ID_CHARS = 64
#: Longest status details in a log line.
MAX_LOGGED_DETAILS_CHARS = 1024


class RequestLogInterceptor(Interceptor):
    """Outermost: every other interceptor and the servicer see the id."""

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method = details.method
        rid = str(metadata(details).get(REQUEST_ID_KEY) or uuid.uuid4().hex)[:MAX_REQUEST_ID_CHARS]

        @asynccontextmanager
        async def scope(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
            request_id.set(rid)
            trailing: tuple[tuple[str, str], ...] = ((REQUEST_ID_KEY, rid),)
            trace_id = current_trace_id()
            if trace_id != NO_TRACE:
                trailing += ((TRACE_ID_KEY, trace_id),)
            context.set_trailing_metadata(trailing)

            def done(code: grpc.StatusCode, seconds: float, details: str) -> None:
                text = clip(details, MAX_LOGGED_DETAILS_CHARS)
                log.info("%s %s %.1f ms rid=%s %s", method, code.name, seconds * 1e3, rid, text)

            async with timed(context, done):
                yield

        return rewrap(handler, scope=scope)
