"""The optimizer's core: production planning as a Pyomo MIP solved by HiGHS.

Public surface: :func:`solve` takes a :class:`PlanningProblem` and :class:`SolveOptions` and returns
a :class:`Plan`; malformed input raises :class:`ProblemInvalid`, an infeasible request
:class:`Infeasible` with a :class:`Diagnosis`. Pyomo is imported only when a solve happens.
Nothing here depends on ``services/``, gRPC or Ray (import-linter checks it).
"""

from __future__ import annotations

from optimizer.core.errors import Infeasible, OptimizerError, ProblemInvalid
from optimizer.core.problem import (
    WEEK_CORRELATION,
    Bottleneck,
    ChangeoverGroup,
    CostBreakdown,
    Diagnosis,
    Explanation,
    FamilyChangeover,
    FamilySetup,
    FirmOrder,
    Kpis,
    Line,
    LinePeriod,
    Material,
    MaterialUse,
    Plan,
    PlanLine,
    PlanningProblem,
    PreviousPlanLine,
    Route,
    Shortage,
    SolveOptions,
    Variant,
    VariantPeriod,
    Violation,
)


def solve(problem: PlanningProblem, options: SolveOptions | None = None) -> Plan:
    """Validate, build, solve and explain ``problem``; see :mod:`optimizer.core.pipeline`."""
    from optimizer.core.pipeline import solve as _solve

    return _solve(problem, options or SolveOptions())


__all__ = [
    "WEEK_CORRELATION",
    "Bottleneck",
    "ChangeoverGroup",
    "CostBreakdown",
    "Diagnosis",
    "Explanation",
    "FamilyChangeover",
    "FamilySetup",
    "FirmOrder",
    "Infeasible",
    "Kpis",
    "Line",
    "LinePeriod",
    "Material",
    "MaterialUse",
    "OptimizerError",
    "Plan",
    "PlanLine",
    "PlanningProblem",
    "PreviousPlanLine",
    "ProblemInvalid",
    "Route",
    "Shortage",
    "SolveOptions",
    "Variant",
    "VariantPeriod",
    "Violation",
    "solve",
]
