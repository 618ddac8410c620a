"""Explanations a planner reads: bottlenecks with shadow prices, shortages with their reason,
and a diagnosis instead of a bare "infeasible"."""

from __future__ import annotations

import pytest

from optimizer import (
    FirmOrder,
    Infeasible,
    Line,
    Material,
    MaterialUse,
    PlanningProblem,
    PreviousPlanLine,
    Route,
    SolveOptions,
    Variant,
    solve,
)

OPTS = SolveOptions(time_limit_s=20, mip_rel_gap=0.0)


def one_line(capacity: float, demand: float, **kw) -> PlanningProblem:
    return PlanningProblem(
        periods=("w1", "w2"),
        variants=(
            Variant(
                "A",
                price=(10.0, 10.0),
                demand=((demand,), (demand,)),
                holding_cost=100.0,  # no building ahead: each period stands alone
                bom=kw.pop("bom", ()),
            ),
        ),
        lines=(Line("L", capacity_hours=(capacity, capacity)),),
        routes=(Route("A", "L", unit_cost=4.0, hours_per_unit=1.0),),
        **kw,
    )


def test_capacity_bottleneck_has_the_margin_as_shadow_price() -> None:
    plan = solve(one_line(capacity=10.0, demand=20.0), OPTS)
    assert plan.objective == pytest.approx(2 * 10 * (10 - 4))
    assert [(b.line, b.period) for b in plan.explanation.bottlenecks] == [("L", 0), ("L", 1)]
    for b in plan.explanation.bottlenecks:
        assert b.utilisation == pytest.approx(1.0)
        assert b.shadow_price == pytest.approx(6.0)  # one more hour sells one more unit
    short = plan.explanation.shortages
    assert {(s.period, s.kind, s.reason) for s in short} == {
        (0, "lost", "capacity"),
        (1, "lost", "capacity"),
    }
    assert all(s.quantity == pytest.approx(10.0) for s in short)


def test_material_shortage_is_blamed_on_the_material() -> None:
    problem = one_line(
        capacity=100.0,
        demand=20.0,
        bom=(MaterialUse("cloth", 2.0),),
        materials=(Material("cloth", unit_cost=1.0, stock=30.0, arrivals=(0.0, 10.0)),),
    )
    plan = solve(problem, OPTS)
    made = sum(pl.quantity for pl in plan.lines)
    assert made == pytest.approx(20.0)  # (30 + 10) / 2
    reasons = {s.reason for s in plan.explanation.shortages}
    assert reasons == {"material"}


def test_firm_orders_beyond_capacity_without_backlog_get_a_diagnosis() -> None:
    problem = one_line(
        capacity=10.0,
        demand=0.0,
        orders=(FirmOrder("big", "A", 50.0, due_period=1),),
        allow_backlog=False,
    )
    with pytest.raises(Infeasible) as err:
        solve(problem, OPTS)
    diag = err.value.diagnosis
    names = {v.constraint for v in diag.violations}
    assert any(n.startswith("capacity[L,") for n in names)
    assert "due_date[A,1]" in names
    cap_short = sum(v.amount for v in diag.violations if v.constraint.startswith("capacity"))
    late = sum(v.amount for v in diag.violations if v.constraint.startswith("due_date"))
    assert cap_short == pytest.approx(30.0)
    assert late == pytest.approx(30.0)
    assert "line L short by 30 h" in diag.summary


def test_same_request_with_backlog_is_planned_late() -> None:
    problem = one_line(
        capacity=10.0,
        demand=0.0,
        orders=(FirmOrder("big", "A", 50.0, due_period=1),),
    )
    plan = solve(problem, OPTS)
    late = [s for s in plan.explanation.shortages if s.kind == "late"]
    assert late and late[0].reason == "capacity"
    # period 0's spare hours are not used: holding (100/unit) costs more than the unit earns
    assert plan.variants[-1].backlog == pytest.approx(40.0)
    assert plan.variants[-1].sales == pytest.approx(10.0)


def test_frozen_period_keeps_the_previous_plan() -> None:
    problem = one_line(
        capacity=30.0,
        demand=20.0,
        frozen_periods=1,
        previous_plan=(PreviousPlanLine("A", "L", 0, 7.0),),
        change_penalty=1.0,
    )
    plan = solve(problem, OPTS)
    by_t = {pl.period: pl.quantity for pl in plan.lines}
    assert by_t[0] == pytest.approx(7.0)
    assert by_t[1] == pytest.approx(20.0)
    assert plan.costs.change_penalty == pytest.approx(20.0)
    short = [s for s in plan.explanation.shortages if s.period == 0]
    assert short and short[0].reason == "due_date"
