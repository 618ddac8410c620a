"""Relax-and-fix / fix-and-optimize return feasible plans bracketed by the true optimum."""

from __future__ import annotations

import pytest
from plan_checks import check_plan, close

from optimizer import SolveOptions, solve
from optimizer.core.synthetic import synthetic_problem


@pytest.fixture(scope="module")
def small():
    problem = synthetic_problem(4, 5, 2, seed=5, orders=2)
    exact = solve(problem, SolveOptions(time_limit_s=60, mip_rel_gap=0.0, explain=False))
    assert exact.status == "optimal"
    return problem, exact.objective


@pytest.mark.parametrize("method", ["relax_and_fix", "fix_and_optimize"])
def test_heuristic_plan_is_feasible_and_bracketed(small, method: str) -> None:
    problem, optimum = small
    plan = solve(
        problem,
        SolveOptions(time_limit_s=10, mip_rel_gap=0.0, method=method, window=2, overlap=1),
    )
    assert plan.method == method and plan.status == "feasible"
    profit = check_plan(problem, plan)
    assert close(profit, plan.objective, 1e-6)
    assert plan.objective <= optimum + 1e-6 * abs(optimum)  # never better than the optimum
    assert plan.best_bound >= optimum - 1e-6 * abs(optimum)  # the bound is valid
    assert plan.objective >= 0.9 * optimum  # and not a bad plan on this easy instance
    assert plan.explanation.bottlenecks or plan.explanation.shortages or plan.explanation.notes


def test_fix_and_optimize_by_variant_groups(small, monkeypatch: pytest.MonkeyPatch) -> None:
    """When a period window frees too many setups, the neighbourhoods are groups of variants
    over the whole horizon: the plan is still feasible, no worse than its start, bracketed."""
    from optimizer.core import heuristics

    problem, optimum = small
    monkeypatch.setattr(heuristics, "MAX_FREE", 12)
    plan = solve(problem, SolveOptions(time_limit_s=20, mip_rel_gap=0.0, method="fix_and_optimize"))
    assert plan.status == "feasible"
    assert close(check_plan(problem, plan), plan.objective, 1e-6)
    assert plan.objective <= optimum + 1e-6 * abs(optimum)
    assert plan.best_bound >= optimum - 1e-6 * abs(optimum)
    assert plan.objective >= 0.9 * optimum
