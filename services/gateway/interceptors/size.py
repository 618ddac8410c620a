"""Request checks at deserialisation: a malformed or oversized message is INVALID_ARGUMENT naming
the request (gRPC's own deserialisation failure would surface as an opaque status).

A deserializer that raised would end the call with gRPC's own opaque status, so this one returns
a :class:`_Malformed` marker instead, which the check raises as the call's error once the call
runs (inside the error interceptor); a streamed request is checked as the servicer reads it.

The server's own receive limit (``grpc.max_receive_message_length``) is set above this check's
limit (twice it, see :mod:`services.gateway.server`), so a message up to that size gets this
INVALID_ARGUMENT naming the request and its size; a larger one is refused by gRPC itself, before
any of the gateway's code runs, with RESOURCE_EXHAUSTED (docs/api.md, *Input bounds*)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from services.common.errors import InvalidArgument, clip
from services.gateway.interceptors.base import Interceptor, rewrap


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
            return _Malformed(
                InvalidArgument(f"malformed message: {clip(str(exc), 200)}", field="request")
            )

    return parse


def _well_formed(request: Any) -> Any:
    if isinstance(request, _Malformed):
        raise request.error
    return request


class MessageCheckInterceptor(Interceptor):
    def __init__(self, max_message_bytes: int) -> None:
        self.max_bytes = max_message_bytes

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        deserialize = safe_deserializer(
            handler.request_deserializer or (lambda b: b), self.max_bytes
        )
        return rewrap(handler, check=_well_formed, request_deserializer=deserialize)
