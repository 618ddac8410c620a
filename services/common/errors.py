"""One error hierarchy for tailorline: errors carry their status as data.

Every error a user can cause or fix is a :class:`TailorlineError` subclass whose ``code`` names its
gRPC status code (:class:`Code`, the names of ``grpc.StatusCode``) and whose ``http_status`` is
its HTTP status. Nothing here imports grpc: the gateway's error interceptor turns ``code`` into a
``grpc.StatusCode`` (the one place that happens) and the CLI root prints one line for any error
that carries a code. Code that raises only picks the right class and says *which field* and *why*.

Other layers follow the same contract without importing this module: the optimizer's
``ProblemInvalid`` (``code`` INVALID_ARGUMENT, with ``field``) and ``Infeasible`` (``code``
FAILED_PRECONDITION, with ``diagnosis``) are recognised by :func:`code_of` like these classes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Code(StrEnum):
    """The gRPC status codes by name (equal to the plain strings, e.g. ``"INVALID_ARGUMENT"``)."""

    OK = "OK"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    DATA_LOSS = "DATA_LOSS"
    UNAUTHENTICATED = "UNAUTHENTICATED"


class TailorlineError(Exception):
    """Base class. ``field`` names the offending input where there is one."""

    code: ClassVar[Code] = Code.INTERNAL
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)


class InvalidArgument(TailorlineError):
    """Bad input: the field and the reason are in the message."""

    code = Code.INVALID_ARGUMENT
    http_status = 400


class NotFound(TailorlineError):
    """A referenced object (plan, variant, model version, job) does not exist."""

    code = Code.NOT_FOUND
    http_status = 404


class AlreadyExists(TailorlineError):
    code = Code.ALREADY_EXISTS
    http_status = 409


class FailedPrecondition(TailorlineError):
    """The request is well formed but cannot be met in the current state (e.g. infeasible plan)."""

    code = Code.FAILED_PRECONDITION
    http_status = 412


class Unavailable(TailorlineError):
    """A downstream (predictor, optimizer, store) is not reachable; retrying may help."""

    code = Code.UNAVAILABLE
    http_status = 503


class DeadlineExceeded(TailorlineError):
    code = Code.DEADLINE_EXCEEDED
    http_status = 504


class Unauthenticated(TailorlineError):
    code = Code.UNAUTHENTICATED
    http_status = 401


#: Characters of a caller's value that an error repeats (the rest is elided, its length shown).
SHOWN_CHARS = 80


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` as an error quotes it: its ``repr`` (control characters escaped), cut to
    ``limit`` characters with ``…`` and the full length when longer. Every error that repeats
    what a caller sent quotes it through this, so no message carries a caller's megabytes."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:limit]}… ({size} chars)"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (``…`` marks the cut)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def code_of(exc: BaseException) -> Code | None:
    """The status code an error carries as data, or None: not an error a user can fix.

    Any exception whose ``code`` attribute is the name of a gRPC status code counts (a
    :class:`TailorlineError`, the optimizer's errors); a ``code`` that is something else (a
    method, as on ``grpc.RpcError``; a library's own error code) does not.
    """
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code in Code.__members__:
        return Code(code)
    return None
