"""Error mapping: an exception a servicer (or an inner interceptor) raises becomes a status here,
the one place where an error's ``code`` (data, see :mod:`services.common.errors`) becomes a
``grpc.StatusCode``.

- an error that carries a code (a :class:`~services.common.errors.TailorlineError`, the
  optimizer's ``ProblemInvalid`` / ``Infeasible``): that code, details ``"<field>: <reason>"``
  (or the error's message, e.g. the infeasible diagnosis), trailing metadata ``tailorline-field``;
- a downstream's UNAVAILABLE / DEADLINE_EXCEEDED: the same code, details ``"downstream: ..."``;
- anything else: INTERNAL with the request id only (no internals leak), logged with its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from services.common.errors import code_of
from services.gateway.interceptors.base import Interceptor, rewrap
from services.gateway.interceptors.request_log import request_id

log = logging.getLogger("tailorline.gateway")
FIELD_KEY = "tailorline-field"


def grpc_status(code: str) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` that a code name (``"INVALID_ARGUMENT"``) stands for."""
    return grpc.StatusCode[str(code)]


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """(code, details, field) of an exception raised by a servicer."""
    code = code_of(exc)
    if code is not None:
        return grpc_status(code), str(exc), getattr(exc, "field", None) or ""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        downstream = exc.code()
        if downstream in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return downstream, f"downstream: {exc.details()}", ""
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id.get()})", ""


class ErrorInterceptor(Interceptor):
    """Aborts a failed call with :func:`status_of`'s status; what is already in its trailing
    metadata (the request id) stays."""

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method = details.method

        @asynccontextmanager
        async def scope(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
            try:
                yield
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                code, text, field = status_of(exc)
                if code == grpc.StatusCode.INTERNAL:
                    log.error(
                        "%s %s failed (request id %s)",
                        method,
                        code.name,
                        request_id.get(),
                        exc_info=exc,
                    )
                trailing = tuple(context.trailing_metadata() or ())
                if field:
                    trailing += ((FIELD_KEY, field),)
                await context.abort(code, text, trailing)

        return rewrap(handler, scope=scope)
