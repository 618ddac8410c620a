"""Errors the optimizer raises; adapters map them to their protocol's status.

The optimizer depends on nothing in ``services/``: the gRPC/CLI adapters translate
:class:`ProblemInvalid` to INVALID_ARGUMENT (with the field) and :class:`Infeasible` to
FAILED_PRECONDITION (with the diagnosis).
"""

from __future__ import annotations

from typing import Any


class OptimizerError(Exception):
    """Base class of every error the optimizer raises on purpose."""


class ProblemInvalid(OptimizerError):
    """The problem is malformed: ``field`` names the offending input, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Infeasible(OptimizerError):
    """The problem is well formed but no plan meets every hard constraint.

    ``diagnosis`` is a :class:`optimizer.core.problem.Diagnosis` (or its ``to_dict()``): the
    constraints that conflict, found by an elastic relaxation, and by how much each is violated.
    """

    def __init__(self, diagnosis: Any) -> None:
        self.diagnosis = diagnosis
        summary = getattr(diagnosis, "summary", None) or str(diagnosis)
        super().__init__(f"infeasible: {summary}")
