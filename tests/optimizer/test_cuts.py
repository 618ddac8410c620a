"""The strengthening tools keep the optimum and only tighten bounds: (l,S) cuts separated on the
LP (on the mean demand, per demand scenario, per family on its changeovers), the per-variant
bound, and the dynamic-programming start of the monolithic solve."""

from __future__ import annotations

from dataclasses import replace

import pyomo.environ as pyo
import pytest
from family_brute import best_profit as family_best
from hypothesis import HealthCheck, given, settings
from plan_brute import best_profit
from plan_checks import check_plan, close
from test_expected_profit import brute_expected_profit, tiny_saa
from test_family_setups import tiny_families
from test_properties import tiny_problems

from optimizer import PlanningProblem, SolveOptions, solve
from optimizer.core.cuts import (
    KINDS,
    cut_rounds,
    separate,
    separate_families,
    separate_scenarios,
)
from optimizer.core.data import prepare
from optimizer.core.model import build_model
from optimizer.core.solver import Session
from optimizer.core.start import dp_pattern, item_bound
from optimizer.core.synthetic import synthetic_problem


def _lp(problem: PlanningProblem, strengthen: str) -> float:
    m = build_model(prepare(problem.validate()), strengthen=strengthen)
    for v in m.y.values():
        if not v.fixed:
            v.domain = pyo.UnitInterval
    res = Session(m).run(30, 0.0)
    assert res.status == "optimal" and res.objective is not None
    return res.objective


def _mip_with_cuts(problem: PlanningProblem) -> tuple[float | None, tuple[float, ...], int]:
    d = prepare(problem.validate())
    session = Session(build_model(d))
    rounds = cut_rounds(session, d, budget_s=30, rounds=3)
    res = session.run(30, 0.0)
    return res.objective, rounds.bounds, rounds.cuts


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_problems())
def test_cuts_and_item_bound_keep_the_brute_force_optimum(problem: PlanningProblem) -> None:
    best = best_profit(problem)
    if best is None:
        return  # infeasible requests are covered by test_properties
    scale = max(1.0, abs(best))
    objective, bounds, _ = _mip_with_cuts(problem)
    assert objective is not None and abs(objective - best) <= 1e-6 * scale, (objective, best)
    assert bounds and bounds[-1] >= best - 1e-6 * scale  # every cut LP is still a bound
    assert bounds[-1] <= _lp(problem, "none") + 1e-6 * scale  # and no weaker than the plain LP
    bound = item_bound(prepare(problem))
    assert bound is not None and bound >= best - 1e-6 * scale, (bound, best)


@pytest.fixture(scope="module")
def lot_sizing() -> PlanningProblem:
    """Lots of a few periods pay here (setups dear against holding): LP setups go fractional."""
    return synthetic_problem(4, 6, 2, seed=3, orders=1)


@pytest.fixture(scope="module")
def optimum(lot_sizing: PlanningProblem) -> float:
    plan = solve(
        lot_sizing, SolveOptions(time_limit_s=60, mip_rel_gap=0.0, explain=False, whole_units=False)
    )
    assert plan.status == "optimal" and plan.objective is not None
    assert close(check_plan(lot_sizing, plan), plan.objective, 1e-6)
    return plan.objective


def test_cuts_tighten_the_lp_and_keep_the_optimum(
    lot_sizing: PlanningProblem, optimum: float
) -> None:
    objective, bounds, cuts = _mip_with_cuts(lot_sizing)
    assert cuts > 0
    assert bounds[-1] < bounds[0] - 1e-6 * abs(bounds[0])  # strictly tighter than without cuts
    assert bounds[-1] >= optimum - 1e-6 * abs(optimum)
    assert objective is not None and close(objective, optimum, 1e-6)


def test_separation_finds_nothing_at_an_integer_optimum(lot_sizing: PlanningProblem) -> None:
    d = prepare(lot_sizing.validate())
    m = build_model(d)
    res = Session(m).run(60, 0.0)
    assert res.status == "optimal"
    assert separate(m, d) == []  # valid cuts cannot cut off a feasible plan


def test_item_bound_is_above_the_optimum(lot_sizing: PlanningProblem, optimum: float) -> None:
    bound = item_bound(prepare(lot_sizing))
    assert bound is not None and bound >= optimum - 1e-6 * abs(optimum)


def test_monolithic_starts_from_the_pattern_plan() -> None:
    """The monolithic solve never returns less than the dynamic-programming plan it starts from
    (setups of dp_pattern fixed, LP over the rest), and that plan is feasible."""
    problem = synthetic_problem(8, 8, 2, seed=2)
    d = prepare(problem.validate())
    m = build_model(d)
    pattern = dp_pattern(d)
    for key, v in m.y.items():
        if not v.fixed:
            v.fix(pattern[key])
    start = Session(m).run(60, 0.0)
    assert start.status == "optimal" and start.objective is not None
    plan = solve(problem, SolveOptions(time_limit_s=60, mip_rel_gap=0.01, explain=False))
    assert plan.objective is not None
    assert plan.objective >= start.objective - 1e-6 * abs(start.objective)
    assert close(check_plan(problem, plan), plan.objective, 1e-6)
    assert plan.best_bound is not None and plan.best_bound >= plan.objective - 1e-6


# --------------------------------------------------------------- scenario and family (l,S) cuts


def _all_kinds_keep_the_optimum(problem: PlanningProblem, best: float) -> None:
    """Cut rounds with every kind (mean demand, each scenario, each family's aggregate), then
    the MIP: the optimum is the brute force's, and every cut LP is still a bound. The model
    has no lot_cover rows here, so that the separators find cuts on these tiny plans too."""
    scale = max(1.0, abs(best))
    d = prepare(problem.validate())
    session = Session(build_model(d, strengthen="none"))
    rounds = cut_rounds(session, d, budget_s=30, rounds=3, kinds=KINDS)
    assert rounds.bounds and min(rounds.bounds) >= best - 1e-6 * scale, (rounds.bounds, best)
    res = session.run(30, 0.0)
    assert res.objective is not None and abs(res.objective - best) <= 1e-6 * scale
    # and at that optimum (integral setups) no separator finds a violated cut
    m = session.model
    assert separate_scenarios(m, d) == [] and separate_families(m, d) == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_saa())
def test_scenario_cuts_keep_the_expected_profit_optimum(problem: PlanningProblem) -> None:
    _all_kinds_keep_the_optimum(problem, brute_expected_profit(problem))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_families())
def test_family_and_scenario_cuts_keep_the_family_optimum(problem: PlanningProblem) -> None:
    best = family_best(problem)
    assert best is not None
    _all_kinds_keep_the_optimum(problem, best)


def test_scenario_and_family_cuts_tighten_the_lp_of_a_synthetic_plan() -> None:
    """On a small expected-profit plan with families, each kind finds violated cuts at the LP
    optimum and lowers the LP bound below the mean-demand (l,S) cuts' alone."""
    p = replace(
        synthetic_problem(12, 6, 2, seed=1, families=3),
        demand_mode="expected_profit",
        scenario_count=8,
    )
    d = prepare(p.validate())
    session = Session(build_model(d))
    item = cut_rounds(session, d, budget_s=60, rounds=4, kinds=("item",))
    more = cut_rounds(session, d, budget_s=60, rounds=4, kinds=("scenario", "family"))
    assert more.cuts > 0
    assert more.bounds[-1] < item.bounds[-1] - 1e-4 * abs(item.bounds[-1])
