"""Property tests: random tiny problems, every plan feasible, profit as recomputed, and optimal
against a brute force that shares no code with the model."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_brute import best_profit
from plan_checks import check_plan, close

from optimizer import (
    FirmOrder,
    Infeasible,
    Line,
    Material,
    MaterialUse,
    PlanningProblem,
    Route,
    SolveOptions,
    Variant,
    solve,
)

OPTS = SolveOptions(time_limit_s=20, mip_rel_gap=0.0, explain=False, whole_units=False)


@st.composite
def tiny_problems(draw: st.DrawFn, max_choices: int = 8) -> PlanningProblem:
    n = draw(st.integers(2, 3))
    nv = draw(st.integers(1, 2))
    nl = draw(st.integers(1, 2))
    money = st.floats(0, 30).map(lambda v: round(v, 1))
    variants = []
    for k in range(nv):
        demand = []
        for _ in range(n):
            lo = draw(st.integers(0, 20))
            demand.append((float(lo), float(lo + draw(st.integers(0, 10)))))
        variants.append(
            Variant(
                id=f"V{k}",
                price=tuple(float(draw(st.integers(5, 40))) for _ in range(n)),
                demand=tuple(demand),
                service_level=draw(st.sampled_from((0.3, 0.5, 0.8))),
                holding_cost=draw(st.floats(0, 3).map(lambda v: round(v, 2))),
                backlog_cost=draw(st.floats(0, 5).map(lambda v: round(v, 2))),
                lost_sale_cost=draw(money),
                initial_inventory=float(draw(st.integers(0, 10))),
                bom=(MaterialUse("M0", draw(st.sampled_from((0.5, 1.0, 2.0)))),),
            )
        )
    lines = [
        Line(
            id=f"L{k}",
            capacity_hours=tuple(float(draw(st.integers(0, 30))) for _ in range(n)),
            overtime_max_hours=float(draw(st.integers(0, 5))),
            overtime_cost=draw(money),
            setup_hours=float(draw(st.integers(0, 4))),
            setup_cost=draw(money),
        )
        for k in range(nl)
    ]
    routes = []
    for v in variants:
        chosen = draw(st.lists(st.sampled_from([ln.id for ln in lines]), min_size=1, unique=True))
        for ln in chosen:
            routes.append(
                Route(
                    variant=v.id,
                    line=ln,
                    unit_cost=float(draw(st.integers(0, 15))),
                    hours_per_unit=draw(st.sampled_from((0.5, 1.0, 1.5))),
                    min_lot=float(draw(st.sampled_from((0, 0, 5)))),
                )
            )
    if len(routes) * n > max_choices:
        routes = routes[: max(1, max_choices // n)]
        kept = {r.variant for r in routes}
        variants = [v for v in variants if v.id in kept]
    orders = [
        FirmOrder(
            id=f"O{k}",
            variant=draw(st.sampled_from([v.id for v in variants])),
            quantity=float(draw(st.integers(1, 15))),
            due_period=draw(st.integers(0, n - 1)),
            price=draw(st.none() | st.just(25.0)),
        )
        for k in range(draw(st.integers(0, 2)))
    ]
    material = Material(
        id="M0",
        unit_cost=draw(st.floats(0, 3).map(lambda v: round(v, 2))),
        stock=float(draw(st.integers(0, 30))),
        arrivals=tuple(float(draw(st.integers(0, 20))) for _ in range(n)),
    )
    return PlanningProblem(
        periods=tuple(f"t{t}" for t in range(n)),
        variants=tuple(variants),
        lines=tuple(lines),
        routes=tuple(routes),
        quantiles=(0.25, 0.75),
        materials=(material,),
        orders=tuple(orders),
        allow_backlog=draw(st.booleans()),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_problems())
def test_plan_is_feasible_and_optimal_against_brute_force(problem: PlanningProblem) -> None:
    best = best_profit(problem)
    if best is None:
        with pytest.raises(Infeasible):
            solve(problem, OPTS)
        return
    plan = solve(problem, OPTS)
    assert plan.status == "optimal"
    profit = check_plan(problem, plan)
    assert plan.objective is not None
    assert close(profit, plan.objective, 1e-6), (profit, plan.objective)
    assert close(plan.costs.profit, plan.objective, 1e-6)
    assert close(plan.objective, best, 1e-6), (plan.objective, best)
