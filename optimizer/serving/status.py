"""How optimizer outcomes become gRPC statuses: the one place the optimizer's servicer maps them.

The errors carry their code's name as data (``ProblemInvalid.code``, ``Infeasible.code``); this
module turns it into a ``grpc.StatusCode`` and adds what a client reads:

- :class:`~optimizer.core.errors.ProblemInvalid` -> INVALID_ARGUMENT, details
  ``"<field>: <reason>"``, trailing metadata ``tailorline-field``;
- :class:`~optimizer.core.errors.Infeasible` (or a plan whose status is ``infeasible``) ->
  FAILED_PRECONDITION, details ``"infeasible: <summary>; violated: <constraint> (<amount>), ..."``,
  trailing metadata ``tailorline-diagnosis-bin`` (a serialized ``Diagnosis``);
- a plan with status ``error`` (the solver itself failed) -> INTERNAL.

:class:`Failure` is what crosses the Ray boundary instead of the exception: the optimizer's
exceptions take constructor arguments that Python's exception pickling drops, and a frozen
dataclass of plain fields survives any serializer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from optimizer.core.errors import Infeasible, ProblemInvalid
from optimizer.core.problem import Diagnosis, Plan
from optimizer.serving.convert import diagnosis_to_proto

FIELD_KEY = "tailorline-field"
DIAGNOSIS_KEY = "tailorline-diagnosis-bin"


@dataclass(frozen=True)
class Failure:
    """Why a solve produced no plan: the gRPC code, the details a client reads, and the field
    (INVALID_ARGUMENT) or diagnosis (FAILED_PRECONDITION) behind it."""

    code: grpc.StatusCode
    details: str
    field: str = ""
    diagnosis: Diagnosis | None = None


def _as_diagnosis(value: object) -> Diagnosis:
    if isinstance(value, Diagnosis):
        return value
    if isinstance(value, dict):
        return Diagnosis.from_dict(value)
    return Diagnosis(summary=str(value))


def describe(diagnosis: Diagnosis) -> str:
    """One line naming the summary and the violated constraints, largest violation first."""
    text = f"infeasible: {diagnosis.summary}"
    worst = sorted(diagnosis.violations, key=lambda v: -v.amount)
    if worst:
        parts = [
            f"{v.constraint} ({v.amount:g}{': ' + v.detail if v.detail else ''})" for v in worst
        ]
        shown = parts[:10] + ([f"... {len(parts) - 10} more"] if len(parts) > 10 else [])
        text += "; violated: " + ", ".join(shown)
    return text


def invalid(exc: ProblemInvalid) -> Failure:
    return Failure(grpc.StatusCode[exc.code], f"{exc.field}: {exc.reason}", field=exc.field)


def infeasible(diagnosis: object) -> Failure:
    d = _as_diagnosis(diagnosis)
    return Failure(grpc.StatusCode[Infeasible.code], describe(d), diagnosis=d)


def run_solve(solve: Callable[[], Plan]) -> Plan | Failure:
    """Call ``solve`` and turn the errors a user can fix (and non-plans) into a :class:`Failure`.
    Anything else propagates: it is a bug and should surface as INTERNAL with its traceback."""
    try:
        plan = solve()
    except ProblemInvalid as exc:
        return invalid(exc)
    except Infeasible as exc:
        return infeasible(exc.diagnosis)
    if plan.status == "infeasible":
        return infeasible(Diagnosis(summary=plan.message or "no plan meets every constraint"))
    if plan.status == "error":
        return Failure(grpc.StatusCode.INTERNAL, f"solver error: {plan.message}")
    return plan


def trailing_metadata(failure: Failure) -> list[tuple[str, str | bytes]]:
    """Machine-readable companions of the details string."""
    out: list[tuple[str, str | bytes]] = []
    if failure.field:
        out.append((FIELD_KEY, failure.field))
    if failure.diagnosis is not None:
        out.append((DIAGNOSIS_KEY, diagnosis_to_proto(failure.diagnosis).SerializeToString()))
    return out
