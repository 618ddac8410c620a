"""The persistent HiGHS session reports the plan it loads.

HiGHS 1.16.0 can misread a MIP start on a model it presolves: on the plan below it valued the
one-lot start (21.9) at 28.9 "in the reduced space", proved 28.9 optimal and returned the start.
The plan then made one lot where two earn more. These tests pin the answer worked out by hand
and the session's way round it."""

from __future__ import annotations

import time

import pyomo.environ as pyo
import pytest
from plan_checks import check_plan, close

import optimizer.core.solver as solver
from optimizer import Line, PlanningProblem, Route, SolveOptions, Variant, solve
from optimizer.core.data import prepare
from optimizer.core.model import build_model
from optimizer.core.setups import Setups

# Demand 4 then 7 with 3 units on hand, 2 hours a period, 1 hour a unit. Two lots of 2 sell 7
# units: 7 x 5 - 4 x 1 (units) - 2 x 1 (setups) - 0.1 (the unit held in period 0) = 28.9. One
# lot in period 0 sells 5: 25 - 2 - 1 - 0.1 = 21.9.
TWO_LOTS = 28.9
ONE_LOT = 21.9


def _problem() -> PlanningProblem:
    return PlanningProblem(
        periods=("w1", "w2"),
        variants=(
            Variant(
                id="a",
                price=(5.0, 5.0),
                demand=((4.0,), (7.0,)),
                holding_cost=0.1,
                initial_inventory=3.0,
            ),
        ),
        lines=(Line(id="L", capacity_hours=(2.0, 2.0), setup_cost=1.0),),
        routes=(Route(variant="a", line="L", unit_cost=1.0, hours_per_unit=1.0),),
    )


def _session_after_one_lot_lp() -> tuple[pyo.ConcreteModel, solver.Session, list[pyo.Var]]:
    """The pipeline's order: the LP over the one-lot pattern (its values stay loaded), then
    the setups freed for the MIP."""
    m = build_model(prepare(_problem()))
    session = solver.Session(m)
    session.translate()
    setups = Setups(m)
    one_lot = {id(m.y["a", "L", 0]): 1.0, id(m.y["a", "L", 1]): 0.0}
    setups.fix(range(2), one_lot)
    lp = session.run(10, 0.0, changed=setups.take())
    assert close(lp.objective, ONE_LOT, 1e-9)
    free = [v for vs in setups.by_t.values() for v in vs]
    for v in free:
        v.unfix()
        v.domain = pyo.Binary
    return m, session, free


def test_solve_makes_both_lots() -> None:
    options = SolveOptions(time_limit_s=20, mip_rel_gap=0.0, explain=False, whole_units=False)
    plan = solve(_problem(), options)
    assert close(plan.objective, TWO_LOTS, 1e-9), plan.message
    assert sorted((pl.period, pl.quantity) for pl in plan.lines) == [(0, 2.0), (1, 2.0)]
    assert close(check_plan(_problem(), plan), TWO_LOTS, 1e-9)


def test_a_mip_from_a_start_reports_the_plan_it_loads() -> None:
    m, session, free = _session_after_one_lot_lp()
    res = session.run(10, 0.0, start=True, changed=free)
    assert close(res.objective, TWO_LOTS, 1e-9), res
    assert close(pyo.value(m.objective), TWO_LOTS, 1e-9)
    assert m.x["a", "L", 1].value == pytest.approx(2.0)


def test_without_time_to_retry_the_start_comes_back_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No time left for the run without the start: the start's plan, at its own worth, not the
    profit HiGHS claimed for it."""
    monkeypatch.setattr(solver, "MIN_RETRY_S", 1e9)
    m, session, free = _session_after_one_lot_lp()
    t0 = time.perf_counter()
    res = session.run(10, 0.0, start=True, changed=free)
    assert time.perf_counter() - t0 < 10
    if close(res.objective, TWO_LOTS, 1e-9):
        pytest.skip("this HiGHS reads the start right: nothing to fall back from")
    assert res.status == "feasible"
    assert close(res.objective, ONE_LOT, 1e-9)
    assert close(pyo.value(m.objective), ONE_LOT, 1e-9)
    assert res.bound is not None and res.bound >= TWO_LOTS - 1e-9


def test_a_variable_changed_twice_before_a_run_reaches_highs() -> None:
    """Relaxed, then fixed to the one-lot pattern before one run: the setups reach HiGHS fixed.
    HiGHS rejects a change set that names a column twice and Pyomo ignores the status, so the
    setups stayed free binaries and the "LP over the one-lot pattern" made both lots."""
    m, session, free = _session_after_one_lot_lp()
    res = session.run(10, 0.0, start=True, changed=free)
    assert close(res.objective, TWO_LOTS, 1e-9), res
    setups = Setups(m)
    setups.relax(range(2))
    setups.fix(range(2), {id(m.y["a", "L", 0]): 1.0, id(m.y["a", "L", 1]): 0.0})
    changed = setups.take()
    assert len(changed) > len({id(v) for v in changed})  # the case: a variable named twice
    lp = session.run(10, 0.0, changed=changed)
    assert lp.status == "optimal"
    assert close(lp.objective, ONE_LOT, 1e-9)
    assert m.x["a", "L", 1].value == pytest.approx(0.0)
