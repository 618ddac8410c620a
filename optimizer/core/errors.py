"""Errors the optimizer raises; each carries its status code as data.

The optimizer depends on nothing in ``services/``. ``code`` is the name of the gRPC status code
(a plain string): :class:`ProblemInvalid` is INVALID_ARGUMENT (with the field),
:class:`Infeasible` FAILED_PRECONDITION (with the diagnosis). The adapters map the name to their
protocol's status: the optimizer's gRPC servicer (:mod:`optimizer.serving.status`), the gateway's
error interceptor and the ``tailorline`` command's root.
"""

from __future__ import annotations

from typing import Any, ClassVar


class OptimizerError(Exception):
    """Base class of every error the optimizer raises on purpose."""

    code: ClassVar[str] = "INTERNAL"


class ProblemInvalid(OptimizerError):
    """The problem (or an option of the solve) is malformed: ``field`` names the offending input,
    ``reason`` says why."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Infeasible(OptimizerError):
    """The problem is well formed but no plan meets every hard constraint.

    ``diagnosis`` is a :class:`optimizer.core.problem.Diagnosis` (or its ``to_dict()``): the
    constraints that conflict, found by an elastic relaxation, and by how much each is violated.
    """

    code = "FAILED_PRECONDITION"

    def __init__(self, diagnosis: Any) -> None:
        self.diagnosis = diagnosis
        summary = getattr(diagnosis, "summary", None) or str(diagnosis)
        super().__init__(f"infeasible: {summary}")
