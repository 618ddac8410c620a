"""Error mapping: an exception a servicer (or an inner interceptor) raises becomes a status here,
the one place where an error's ``code`` (data, see :mod:`services.common.errors`) becomes a
``grpc.StatusCode``.

- an error that carries a code (a :class:`~services.common.errors.TailorlineError`, the
  optimizer's ``ProblemInvalid`` / ``Infeasible``): that code, details ``"<field>: <reason>"``
  (or the error's message, e.g. the infeasible diagnosis), trailing metadata ``tailorline-field``;
- a downstream's UNAVAILABLE / DEADLINE_EXCEEDED: the same code, details ``"downstream: ..."``;
- anything else: INTERNAL with the request and trace ids only (no internals leak), logged with its
  traceback.

Whatever a caller sent and an error repeats stays short: the details are cut to
:data:`MAX_DETAILS_CHARS` and the field to :data:`MAX_FIELD_CHARS` (printable ASCII, as metadata
must be), so an error never fails to be sent (a client refuses trailers above its metadata limit,
8 KiB by default, with RESOURCE_EXHAUSTED) and a log line never carries a caller's megabytes.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from services.common.errors import clip, code_of
from services.common.telemetry import current_trace_id
from services.gateway.interceptors.base import Interceptor, rewrap
from services.gateway.interceptors.request_log import request_id

log = logging.getLogger("tailorline.gateway")
FIELD_KEY = "tailorline-field"
#: Longest status details (the field, the reason and a short echo of the value fit easily).
MAX_DETAILS_CHARS = 512
#: Longest ``tailorline-field`` value.
MAX_FIELD_CHARS = 160
#: Longest exception message in the log of an INTERNAL error (its traceback's frames aside).
MAX_LOGGED_MESSAGE_CHARS = 500


def metadata_value(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` as a metadata value may hold it: printable ASCII (anything else escaped as
    ``\\xNN``/``\\uNNNN``), at most ``limit`` characters."""
    escaped = "".join(
        ch if " " <= ch <= "~" else ch.encode("unicode_escape").decode("ascii")
        for ch in text[: limit + 1]
    )
    return clip(escaped, limit)


def failure_text(exc: BaseException) -> str:
    """An unexpected failure for the log: the frames of its traceback (and of its causes) and
    each message cut to :data:`MAX_LOGGED_MESSAGE_CHARS` (a message may quote a caller's value)."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 5:
        seen.add(id(current))
        message = clip(str(current), MAX_LOGGED_MESSAGE_CHARS)
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback:\n{frames}{type(current).__name__}: {message}")
        current = current.__cause__ or current.__context__
    return "\n-- caused by / during --\n".join(parts)


def grpc_status(code: str) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` that a code name (``"INVALID_ARGUMENT"``) stands for."""
    return grpc.StatusCode[str(code)]


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str, str]:
    """(code, details, field) of an exception raised by a servicer."""
    code = code_of(exc)
    if code is not None:
        field = str(getattr(exc, "field", None) or "")
        return grpc_status(code), clip(str(exc), MAX_DETAILS_CHARS), metadata_value(field)
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        downstream = exc.code()
        if downstream in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return downstream, clip(f"downstream: {exc.details()}", MAX_DETAILS_CHARS), ""
    return (
        grpc.StatusCode.INTERNAL,
        f"internal error (request id {request_id.get()}, trace id {current_trace_id()})",
        "",
    )


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
                        "%s %s failed (request id %s)\n%s",
                        method,
                        code.name,
                        request_id.get(),
                        failure_text(exc),
                    )
                trailing = tuple(context.trailing_metadata() or ())
                if field:
                    trailing += ((FIELD_KEY, field),)
                await context.abort(code, text, trailing)

        return rewrap(handler, scope=scope)
