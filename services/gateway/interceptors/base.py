"""What the gateway's interceptors share: which methods stay open, and the ONE helper that rewraps
a method handler of any kind (unary or streaming on either side) around a concern.

A concern is at most four things, all optional (:func:`rewrap`):
- a ``scope``: an async context manager around the whole call, a streamed response included;
  what it does before, after and on an exception is the concern (an id, a timer, the mapping);
- a ``check`` of each request message (a streamed one as the servicer reads it);
- a request deserializer in place of the handler's own;
- an ``observe`` of each response message the servicer returns or streams (metrics).
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import grpc

#: Methods no interceptor touches: probes send no token and need no request id or metrics.
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Scope = Callable[[grpc.aio.ServicerContext], AbstractAsyncContextManager[Any]]
Check = Callable[[Any], Any]

_FACTORIES = {  # (request streaming, response streaming) -> how grpc builds such a handler
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _same(request: Any) -> Any:
    return request


def _no_scope(_context: grpc.aio.ServicerContext) -> AbstractAsyncContextManager[Any]:
    return nullcontext()


async def _checked(requests: AsyncIterator[Any], check: Check) -> AsyncIterator[Any]:
    async for request in requests:
        yield check(request)


def rewrap(
    handler: grpc.RpcMethodHandler,
    *,
    scope: Scope | None = None,
    check: Check | None = None,
    request_deserializer: Callable[[bytes], Any] | None = None,
    observe: Callable[[Any], None] | None = None,
) -> grpc.RpcMethodHandler:
    """``handler`` with its behaviour run inside ``scope(context)``, each request message passed
    through ``check`` first, ``request_deserializer`` (where given) instead of its own, and each
    response message shown to ``observe``."""
    inner: Any = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    enter = scope or _no_scope
    each = check or _same
    streaming_in = bool(handler.request_streaming)

    def arguments(request: Any) -> Any:
        return _checked(request, each) if streaming_in else each(request)

    async def single(request: Any, context: grpc.aio.ServicerContext) -> Any:
        async with enter(context):
            response = await inner(arguments(request), context)
            if observe is not None:
                observe(response)
            return response

    async def streamed(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with enter(context):
            async for item in inner(arguments(request), context):
                if observe is not None:
                    observe(item)
                yield item

    streaming_out = bool(handler.response_streaming)
    factory: Any = _FACTORIES[(streaming_in, streaming_out)]
    return factory(
        streamed if streaming_out else single,
        request_deserializer or handler.request_deserializer,
        handler.response_serializer,
    )


@asynccontextmanager
async def timed(
    context: grpc.aio.ServicerContext, done: Callable[[grpc.StatusCode, float, str], None]
) -> AsyncIterator[None]:
    """Run the call, then ``done(code, seconds, details)``: OK, the code it was aborted with (the
    error interceptor aborts every failed call), or DEADLINE_EXCEEDED/CANCELLED for a call the
    client gave up on (gRPC cancels the handler: without this it would leave no log line and no
    metric). A streamed call that ends while gRPC is sending one of its messages is not cancelled
    at an ``await`` of ours: its generator is closed later, at its ``yield``, when gRPC has
    released the call, so neither path reads the context (touching a released call crashes the
    process): the deadline, read at the start, is told from the clock."""
    started = time.perf_counter()
    left = context.time_remaining()
    deadline = None if left is None else started + left
    try:
        yield
    except grpc.aio.AbortError:
        seconds = time.perf_counter() - started
        done(context.code() or grpc.StatusCode.UNKNOWN, seconds, context.details() or "")
        raise
    except (asyncio.CancelledError, GeneratorExit):
        now = time.perf_counter()
        code = (
            grpc.StatusCode.DEADLINE_EXCEEDED
            if deadline is not None and now >= deadline
            else grpc.StatusCode.CANCELLED
        )
        done(code, now - started, "")
        raise
    done(grpc.StatusCode.OK, time.perf_counter() - started, "")


def metadata(details: grpc.HandlerCallDetails) -> dict[str, Any]:
    """The call's invocation metadata as a dict."""
    return {k: v for k, v in (details.invocation_metadata or ())}


class Interceptor(grpc.aio.ServerInterceptor):
    """A gateway interceptor: open methods (health, reflection) and unknown ones pass untouched;
    every other handler is what :meth:`wrap` makes of it."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_PREFIXES):
            return handler
        return self.wrap(handler, details)

    @abc.abstractmethod
    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        """``handler`` with this interceptor's concern around it (usually via :func:`rewrap`)."""
