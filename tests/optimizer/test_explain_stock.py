"""Shadow prices when stock on hand already covers some variants (their setups are fixed at 0
when the model is built): the explanation's LP must stay an LP and report the capacity price."""

from __future__ import annotations

from optimizer import Line, PlanningProblem, Route, SolveOptions, Variant, solve


def test_capacity_price_is_reported_when_stock_covers_a_variant() -> None:
    problem = PlanningProblem(
        periods=("w1", "w2"),
        variants=(
            # B's stock covers its demand: no setup of B can pay, the build fixes them at 0.
            Variant("A", price=(10.0, 10.0), demand=((8.0,), (8.0,)), holding_cost=100.0),
            Variant(
                "B",
                price=(10.0, 10.0),
                demand=((3.0,), (3.0,)),
                holding_cost=0.1,
                initial_inventory=50.0,
            ),
        ),
        lines=(Line("L", capacity_hours=(5.0, 5.0)),),
        routes=(
            Route("A", "L", unit_cost=4.0, hours_per_unit=1.0),
            Route("B", "L", unit_cost=4.0, hours_per_unit=1.0),
        ),
    )
    plan = solve(problem, SolveOptions(time_limit_s=20, mip_rel_gap=0.0))
    assert plan.status == "optimal"
    # A makes 5 of its 8 per week on the full line: one more hour is one more unit of A,
    # worth its margin 10 - 4 = 6 (plus the lost-sale penalty, 0 here).
    prices = {(b.line, b.period): b.shadow_price for b in plan.explanation.bottlenecks}
    assert prices == {("L", 0): 6.0, ("L", 1): 6.0}
