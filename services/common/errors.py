"""One error hierarchy for tailorline.

Every error a user can cause or fix is a :class:`TailorlineError` subclass that knows its gRPC
status code and its HTTP status. Status mapping happens in one place (the gateway's error
interceptor, the CLI's ``main``); code that raises only picks the right class and says *which field*
and *why*.
"""

from __future__ import annotations

from typing import ClassVar

import grpc


class TailorlineError(Exception):
    """Base class. ``field`` names the offending input where there is one."""

    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)


class InvalidArgument(TailorlineError):
    """Bad input: the field and the reason are in the message."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class NotFound(TailorlineError):
    """A referenced object (plan, variant, model version, job) does not exist."""

    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404


class AlreadyExists(TailorlineError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    http_status = 409


class FailedPrecondition(TailorlineError):
    """The request is well formed but cannot be met in the current state (e.g. infeasible plan)."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 412


class Unavailable(TailorlineError):
    """A downstream (predictor, optimizer, store) is not reachable; retrying may help."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503


class DeadlineExceeded(TailorlineError):
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    http_status = 504


class Unauthenticated(TailorlineError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


def translate(exc: BaseException) -> TailorlineError | None:
    """The one mapping of other layers' errors onto this hierarchy (None: not a user error).

    The optimizer depends on nothing in ``services/``, so its errors are translated here:
    a malformed problem is INVALID_ARGUMENT with its field, an infeasible one FAILED_PRECONDITION
    with the diagnosis (kept on the error as ``diagnosis``).
    """
    if isinstance(exc, TailorlineError):
        return exc
    from optimizer.core.errors import Infeasible, ProblemInvalid

    if isinstance(exc, ProblemInvalid):
        return InvalidArgument(exc.reason, field=exc.field)
    if isinstance(exc, Infeasible):
        err = FailedPrecondition(str(exc))
        err.diagnosis = exc.diagnosis  # type: ignore[attr-defined]
        return err
    return None
