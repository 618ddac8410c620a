"""A client's cancellation of ``SolveStream`` reaches the ingress wherever it finds Serve's proxy.

Serve's proxy cancels its call to the ingress only when the cancellation arrives while it awaits
the next result. When gRPC's handler task is cancelled elsewhere (in gRPC's own send of a result),
the proxy's generators are closed later at a ``yield``, and the ingress goes on solving for nobody.
``proxy_like`` below has the proxy's shape (ray/serve/_private/proxy.py, send_request_to_replica
and ProxyResponseGenerator.__anext__); the timing that hits the gap cannot be forced through real
gRPC, so these tests drive the generators directly. The real path, Serve's proxy and ingress over
loopback, is covered by test_grpc.py::test_cancelling_a_stream_stops_the_scenarios_not_started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import Mock

import pytest

from optimizer.serving.servicer import add_OptimizerServiceServicer_to_server, cancel_safe_stream


class Call:
    """Stands for the proxy's call to the ingress: solving until it is cancelled."""

    def __init__(self) -> None:
        self.cancelled = False


class GrpcContext:
    """A servicer context that records what reaches it, and what reached it after gRPC had
    finished the call (in gRPC that memory is freed: the proxy process crashes)."""

    def __init__(self) -> None:
        self.ended = False
        self.codes: list[str] = []
        self.after_end: list[str] = []

    def end(self, _: object = None) -> None:
        self.ended = True

    def _touch(self, what: str) -> None:
        if self.ended:
            self.after_end.append(what)

    def peer(self) -> str:
        self._touch("peer")
        return "ipv4:127.0.0.1:5000"

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        self._touch("invocation_metadata")
        return (("application", "optimizer"),)

    def set_code(self, code: str) -> None:
        self._touch("set_code")
        self.codes.append(code)


async def proxy_like(call: Call, context: Any) -> AsyncIterator[str]:
    """Two results (each after a wait for the replica), then more scenarios queued. As in
    Serve's proxy, the call is cancelled only by a CancelledError that arrives during a wait,
    whatever ended the call becomes a status, and the status and the access log use the context."""
    context.peer()  # the request is read at the start
    code = "OK"
    try:
        for result in ("first", "second"):
            try:
                await asyncio.sleep(0.01)  # the next result from the replica
            except asyncio.CancelledError:
                call.cancelled = True
                raise
            yield result
        try:
            await asyncio.sleep(3600)  # more scenarios still queued
        except asyncio.CancelledError:
            call.cancelled = True
            raise
    except BaseException:
        code = "CANCELLED"
    context.set_code(code)
    context.peer()  # the access log


async def finite(call: Call, context: Any) -> AsyncIterator[str]:
    for m in ("a", "b", "c"):
        await asyncio.sleep(0)
        yield m
    context.set_code("OK")


async def as_grpc(
    stream: Any, call: Call, context: GrpcContext, send_s: float, keep: list[Any] | None = None
) -> list[str]:
    """gRPC's handler task: iterates the stream, and spends ``send_s`` sending each message
    (where a client's cancellation can find it); the call ends when the task does. ``keep``
    holds the stream, as a reference cycle in the proxy can: it is then not closed when the task
    ends, and only the wrapper's watch on the task can act."""

    async def handler() -> list[str]:
        sent = []
        messages = stream(call, context)
        if keep is not None:
            keep.append(messages)
        async for message in messages:
            sent.append(message)
            await asyncio.sleep(send_s)
        return sent

    task = asyncio.ensure_future(handler())
    task.add_done_callback(context.end)
    return await task


async def cancelled_after(seconds: float, coro: Any, call: Call) -> bool:
    """Cancel ``coro``'s task after ``seconds``; whether ``call`` was cancelled a few loop steps
    later (read inside the loop: closing it would cancel whatever is left running)."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    for _ in range(5):
        await asyncio.sleep(0)
    return call.cancelled


def test_a_client_cancelling_during_a_send_cancels_the_call_the_proxy_was_waiting_on() -> None:
    """The cancellation finds gRPC's task in its send of "first": the proxy's own generators sit
    at a ``yield``, where nothing cancels the call to the ingress."""

    def run(stream: Any) -> tuple[bool, GrpcContext]:
        call, context, keep = Call(), GrpcContext(), []
        coro = as_grpc(stream, call, context, send_s=3600, keep=keep)
        return asyncio.run(cancelled_after(0.1, coro, call)), context

    cancelled, context = run(cancel_safe_stream(proxy_like))
    assert cancelled
    assert context.after_end == []  # the proxy's status and access log did not reach the call
    # without the wrapper, the gap it closes: the call to the ingress goes on
    cancelled, _ = run(proxy_like)
    assert not cancelled


def test_a_client_cancelling_while_the_proxy_waits_cancels_the_call() -> None:
    call, context = Call(), GrpcContext()
    coro = as_grpc(cancel_safe_stream(proxy_like), call, context, send_s=0)
    assert asyncio.run(cancelled_after(0.1, coro, call))
    assert context.after_end == []


def test_a_stream_run_to_its_end_yields_every_message_in_order_and_sets_its_status() -> None:
    call, context = Call(), GrpcContext()
    sent = asyncio.run(as_grpc(cancel_safe_stream(finite), call, context, send_s=0))
    assert sent == ["a", "b", "c"]
    assert context.codes == ["OK"]  # set while the call was open
    assert not call.cancelled


def test_an_error_in_the_stream_reaches_grpc() -> None:
    async def broken(call: Call, context: Any) -> AsyncIterator[str]:
        yield "a"
        raise ValueError("replica died")

    with pytest.raises(ValueError, match="replica died"):
        asyncio.run(as_grpc(cancel_safe_stream(broken), Call(), GrpcContext(), send_s=0))


def test_serves_proxy_server_gets_the_wrapper_on_the_streaming_method_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Serve's own gRPC server class with a handler factory: what the proxy registers for
    ``SolveStream`` is the wrapped handler, in the registered-method table gRPC looks up first
    and in the generic one; the unary methods are left as built, and the server keeps its
    factory (other services registered after ours are not wrapped)."""
    import grpc.aio._server
    from ray.serve._private.grpc_util import gRPCGenericServer

    registered: dict[str, Any] = {}
    original = grpc.aio._server.Server.add_registered_method_handlers

    def record(self: Any, service: str, handlers: dict[str, Any]) -> None:
        registered.update({f"/{service}/{name}": h for name, h in handlers.items()})
        original(self, service, handlers)

    monkeypatch.setattr(grpc.aio._server.Server, "add_registered_method_handlers", record)

    async def built_stream(request: Any, context: Any) -> AsyncIterator[bytes]:
        yield b""

    async def built_unary(request: Any, context: Any) -> bytes:
        return b""

    def factory(service_method: str, streaming_type: Any) -> Any:
        return built_stream if streaming_type.name == "UNARY_STREAM" else built_unary

    async def register() -> Any:  # the server needs a running loop, as in the proxy actor
        server = gRPCGenericServer(factory)
        add_OptimizerServiceServicer_to_server(Mock(), server)
        return server

    server = asyncio.run(register())
    assert server.service_handler_factory is factory
    (handlers,) = server.generic_rpc_handlers
    service = "/tailorline.optimizer.v1.OptimizerService"
    for methods in (registered, handlers[0]._method_handlers):
        stream = methods[f"{service}/SolveStream"]
        assert stream.unary_stream is not built_stream
        assert stream.unary_stream.__wrapped__ is built_stream
        assert methods[f"{service}/Solve"].unary_unary is built_unary
