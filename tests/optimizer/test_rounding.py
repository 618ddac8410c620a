"""Whole units: the plan's quantities are whole numbers, the rounded plan is feasible, its
profit is what the plan reports, and the rounding's cost is the fractional optimum minus it."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from plan_checks import check_plan, close
from test_properties import tiny_problems

from optimizer import Infeasible, PlanningProblem, SolveOptions, solve
from optimizer.core.synthetic import synthetic_problem

WHOLE = SolveOptions(time_limit_s=20, mip_rel_gap=0.0, explain=False)
FRACTIONAL = replace(WHOLE, whole_units=False)


def _both(problem: PlanningProblem):  # type: ignore[no-untyped-def]
    try:
        return solve(problem, FRACTIONAL), solve(problem, WHOLE)
    except Infeasible:
        return None, None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_problems())
def test_whole_unit_plans_are_feasible_and_priced_exactly(problem: PlanningProblem) -> None:
    fractional, whole = _both(problem)
    if whole is None or whole.objective is None or fractional is None:
        return
    assert all(pl.quantity == round(pl.quantity) for pl in whole.lines), whole.lines
    scale = max(1.0, abs(fractional.objective or 0.0))
    if "no rounding was feasible" in whole.message:
        return  # the fractional plan stands (said in the message)
    # every hard constraint holds and the reported profit is the recomputed one
    assert close(check_plan(problem, whole), whole.objective, 1e-6)
    assert fractional.objective is not None
    assert whole.objective <= fractional.objective + 1e-6 * scale
    cost = fractional.objective - whole.objective
    assert abs(whole.kpis.rounding_cost - max(0.0, cost)) <= 1e-6 * scale


def test_a_plan_of_fractional_quantities_reports_what_rounding_cost() -> None:
    problem = synthetic_problem(6, 4, 2, seed=3, orders=1)
    fractional, whole = _both(problem)
    assert fractional is not None and whole is not None
    assert any(pl.quantity != round(pl.quantity) for pl in fractional.lines)
    assert whole.kpis.rounded_quantities > 0
    assert "whole units" in whole.message
    assert fractional.objective is not None and whole.objective is not None
    assert 0 <= fractional.objective - whole.objective <= 0.02 * abs(fractional.objective)
    assert whole.kpis.expected_leftover >= 0
