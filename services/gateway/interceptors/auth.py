"""Bearer-token authentication: a call without the gateway's token is UNAUTHENTICATED before its
servicer runs (the error interceptor, outside this one, maps the error)."""

from __future__ import annotations

import hmac
from typing import Any

import grpc

from services.common.errors import Unauthenticated
from services.gateway.interceptors.base import Interceptor, metadata, rewrap


class _Refuse:
    """A scope that ends the call with ``error`` before anything runs."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def __aenter__(self) -> None:
        raise self.error

    async def __aexit__(self, *exc: object) -> None:
        return None


class AuthInterceptor(Interceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    def check(self, header: Any) -> Unauthenticated | None:
        """None when ``header`` (the ``authorization`` metadata) carries the token."""
        if not isinstance(header, str) or not header.lower().startswith("bearer "):
            return Unauthenticated("send metadata 'authorization: Bearer <token>'")
        if not hmac.compare_digest(header[7:].strip().encode(), self.token.encode()):
            return Unauthenticated("the bearer token is not valid")
        return None

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        denied = self.check(metadata(details).get("authorization"))
        if denied is None:
            return handler
        return rewrap(handler, scope=lambda _context: _Refuse(denied))
