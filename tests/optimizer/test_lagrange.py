"""The Lagrangian relaxation (optimizer/core/lagrange.py): every multiplier gives a bound no plan
can beat (brute force on tiny problems), the subgradient method tightens it below the per-variant
bound, and the plans it starts from are feasible and no worse than the DP pattern's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_brute import best_profit
from plan_checks import check_plan, close
from test_properties import tiny_problems

from optimizer import PlanningProblem, SolveOptions, solve
from optimizer.core import heuristics
from optimizer.core.data import prepare
from optimizer.core.heuristics import pattern_start
from optimizer.core.lagrange import Relaxation, lagrangian_start
from optimizer.core.model import build_model
from optimizer.core.setups import Setups
from optimizer.core.solver import Session
from optimizer.core.start import item_bound
from optimizer.core.synthetic import synthetic_problem


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_problems(), st.data())
def test_every_multiplier_bounds_the_brute_force_optimum(
    problem: PlanningProblem, data: st.DataObject
) -> None:
    best = best_profit(problem)
    if best is None:
        return  # infeasible requests are covered by test_properties
    d = prepare(problem)
    rel = Relaxation(d)
    lam, mu = rel.zeros()
    at_zero = rel.evaluate(lam, mu).value
    assert close(at_zero, item_bound(d), 1e-9)  # L(0, 0) is the per-variant bound
    price = st.floats(0, 40, allow_nan=False)
    lam = np.array(data.draw(st.lists(price, min_size=lam.size, max_size=lam.size)))
    mu = np.array(data.draw(st.lists(price, min_size=mu.size, max_size=mu.size)))
    value = rel.evaluate(lam.reshape(rel.cap.shape), mu.reshape(rel.avail.shape)).value
    assert value >= best - 1e-6 * max(1.0, abs(best)), (value, best)


@pytest.fixture(scope="module")
def tight() -> PlanningProblem:
    """Lines loaded to 95% and materials short for some variants: capacity and material
    multipliers both matter."""
    return synthetic_problem(6, 8, 2, seed=4, load=0.95)


def test_subgradient_tightens_the_bound_and_improves_the_start(tight: PlanningProblem) -> None:
    d = prepare(tight.validate())
    m = build_model(d)
    session = Session(m)
    setups = Setups(m)
    dp = pattern_start(session, setups, d, 1e18)
    assert dp.objective is not None
    out = lagrangian_start(session, setups, d, 1e18, dp, max_iterations=150)
    optimum = solve(
        tight, SolveOptions(time_limit_s=120, mip_rel_gap=0.0, explain=False, whole_units=False)
    )
    assert optimum.status == "optimal" and optimum.objective is not None
    opt = optimum.objective
    assert out.bound is not None
    assert opt - 1e-6 * opt <= out.bound < item_bound(d) - 1e-3 * opt  # valid and tighter
    assert out.result.objective is not None
    assert dp.objective <= out.result.objective <= opt + 1e-6 * opt
    # the setups left fixed are that plan's: the LP over them gives its profit again
    assert close(session.run(60, 0.0, lp="ipm").objective, out.result.objective, 1e-6)


@pytest.mark.parametrize("method", ["monolithic", "fix_and_optimize"])
def test_solve_reports_the_lagrangian_bound(
    tight: PlanningProblem, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the Lagrangian start on (it runs from 2,000 free setups by default): the plan is
    feasible, its bound valid and tighter than the per-variant one, and the message says how
    the start was made."""
    monkeypatch.setattr(heuristics, "LAGRANGE_MIN_SETUPS", 0)
    options = SolveOptions(time_limit_s=5, mip_rel_gap=0.0, explain=False, method=method)
    plan = solve(tight, options)
    assert plan.objective is not None and plan.best_bound is not None
    assert close(check_plan(tight, plan), plan.objective, 1e-6)
    assert plan.best_bound >= plan.objective - 1e-6 * abs(plan.objective)
    assert plan.best_bound < item_bound(prepare(tight))
    assert "start: Lagrangian" in plan.message


def test_a_start_within_the_gap_is_returned_without_the_search() -> None:
    """Loose capacity: the DP start is already within the 2% asked for by the per-variant
    bound, so it comes back as 'optimal' without HiGHS's search, and the proven optimum
    (gap 0) is indeed within 2% of it."""
    problem = synthetic_problem(10, 8, 2, seed=1, load=0.3)
    plan = solve(
        problem, SolveOptions(time_limit_s=30, mip_rel_gap=0.02, explain=False, whole_units=False)
    )
    assert plan.status == "optimal" and plan.message.startswith("start")
    assert plan.objective is not None and plan.best_bound is not None and plan.gap is not None
    assert close(check_plan(problem, plan), plan.objective, 1e-6)
    assert plan.gap <= 0.02
    exact = solve(
        problem, SolveOptions(time_limit_s=60, mip_rel_gap=0.0, explain=False, whole_units=False)
    )
    assert exact.status == "optimal" and exact.objective is not None
    assert plan.objective <= exact.objective + 1e-6 * exact.objective <= plan.best_bound + 1e-3
    assert exact.objective <= plan.objective * 1.02
