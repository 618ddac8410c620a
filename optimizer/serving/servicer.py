"""The servicer function Serve's gRPC proxy registers (``grpc_options.grpc_servicer_functions``).

Serve pickles request and response messages between its proxy and the replicas, and pickle finds a
message class through its ``__module__``: the generated package ``tailorline`` (gen/, from
protos/) is importable under the very name protoc bakes into the classes, so the generated function
does the registering.

It runs in Serve's proxy actor, and it does one thing more: it makes a client's cancellation of a
streamed call (``SolveStream``) reach the ingress every time. Serve's proxy cancels the call it
made to the ingress only when the cancellation finds its handler awaiting the next result. A client
that cancels right after a result can find the handler elsewhere: in gRPC's own send of that result.
The handler's generators are then closed by garbage collection, whose ``GeneratorExit`` the proxy
catches without cancelling anything, and the ingress goes on solving every queued scenario for
nobody (ray-project/ray#42665 describes the gap; it was never merged). So each streaming handler
the proxy builds for this service runs in a task of its own that is only ever suspended while it
waits for the next result, and the handler gRPC sees cancels that task whenever it ends early:
the cancellation then lands where the proxy handles it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from tailorline.optimizer.v1.optimizer_service_pb2_grpc import (
    add_OptimizerServiceServicer_to_server as _add_generated,
)

SERVICER_FUNCTION = f"{__name__}:add_OptimizerServiceServicer_to_server"

logger = logging.getLogger(__name__)

_END = object()


def add_OptimizerServiceServicer_to_server(servicer: Any, server: Any) -> None:
    """Register the service as the generated function does; where ``server`` is Serve's proxy
    server, wrap the streaming handlers its factory builds (see the module docstring)."""
    factory = getattr(server, "service_handler_factory", None)
    if factory is None:  # a plain grpc server, or a Serve that builds handlers another way
        if type(server).__module__.startswith("ray."):
            logger.warning(
                "Serve's gRPC server has no service_handler_factory: a client's cancellation of "
                "SolveStream may not reach the optimizer"
            )
        _add_generated(servicer, server)
        return
    server.service_handler_factory = _closing_streams(factory)
    try:
        _add_generated(servicer, server)
    finally:
        server.service_handler_factory = factory


def _closing_streams(factory: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        handler = factory(*args, **kwargs)
        if inspect.isasyncgenfunction(handler):
            return cancel_safe_stream(handler)
        return handler

    return build


def cancel_safe_stream(
    handler: Callable[..., AsyncIterator[Any]],
) -> Callable[..., AsyncIterator[Any]]:
    """``handler(request, context)`` (an async generator function) run in a task that pumps its
    messages into a queue, for a generator that yields them to gRPC. When gRPC's handler task
    ends before ``handler`` has (cancelled at any ``await``, the send included) or the generator
    is closed early, the pump is cancelled: it only ever waits inside ``handler``'s own
    ``__anext__``, so the cancellation always arrives there.

    ``handler`` sees the context through :class:`_CallContext`: what it does after gRPC has
    finished the call (its status, its access log) must not reach the call, whose memory gRPC
    releases when its handler task ends (touching it then crashes the process).

    The queue is unbounded: the proxy reads every result from the ingress as it comes, however
    slowly the client reads (a pump that waited for room would wait outside ``handler`` and bring
    the gap back). A stream holds at most ``max_scenarios`` plans, so this is bounded."""

    @functools.wraps(handler)
    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue()
        call = _CallContext(context)

        async def pump() -> None:
            try:
                async for message in handler(request, call):
                    queue.put_nowait((message, None))
            except Exception as exc:  # the caller sees it
                queue.put_nowait((_END, exc))
                return
            except BaseException as exc:  # cancelled: end the stream, should gRPC still wait
                queue.put_nowait((_END, RuntimeError(f"the stream ended: {type(exc).__name__}")))
                raise
            queue.put_nowait((_END, None))

        task = asyncio.ensure_future(pump())

        def end(_: object = None) -> None:
            call.close()
            if not task.done():
                task.cancel()

        grpc_task = asyncio.current_task()
        if grpc_task is not None:  # ends however gRPC leaves the handler, even outside it
            grpc_task.add_done_callback(end)
        try:
            while True:
                message, error = await queue.get()
                if message is _END:
                    if error is not None:
                        raise error
                    return
                yield message
        finally:
            if grpc_task is not None:
                grpc_task.remove_done_callback(end)
            end()

    return stream


class _CallContext:
    """A gRPC servicer context that goes quiet once the call has ended: ``peer()`` and
    ``invocation_metadata()`` (fixed for a call) are read once at the start; everything else is
    the context's until :meth:`close`, after which it does nothing and returns None."""

    def __init__(self, context: Any) -> None:
        self._context = context
        self._open = True
        self._peer = context.peer()
        self._metadata = context.invocation_metadata()

    def close(self) -> None:
        self._open = False

    def peer(self) -> Any:
        return self._peer

    def invocation_metadata(self) -> Any:
        return self._metadata

    def __getattr__(self, name: str) -> Any:
        if self._open:
            return getattr(self._context, name)
        return _nothing


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


__all__ = ["SERVICER_FUNCTION", "add_OptimizerServiceServicer_to_server", "cancel_safe_stream"]
