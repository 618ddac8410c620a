"""The simulator's book of one week against a hand computation, and MRP netting."""

from __future__ import annotations

import numpy as np
import pytest

from services.simulate.accounting import TrueCosts, account_week, net_against_stock

NAN = float("nan")


def _costs() -> TrueCosts:
    # two variants, two lines; variant B cannot run on line L2
    return TrueCosts(
        variant_ids=("A", "B"),
        line_ids=("L1", "L2"),
        price=np.array([100.0, 50.0]),
        unit_cost=np.array([[30.0, 20.0], [10.0, NAN]]),
        hours=np.array([[1.0, 2.0], [0.5, NAN]]),
        setup_cost=np.array([40.0, 60.0]),
        setup_hours=np.array([2.0, 3.0]),
        capacity_hours=np.array([10.0, 100.0]),
        overtime_cost=np.array([25.0, 99.0]),
    )


def test_a_hand_made_week_books_what_a_hand_computation_gives() -> None:
    costs = _costs()
    stock = np.array([1.0, 4.0])
    made = np.array([[5.2, 3.0], [8.0, 0.0]])  # 5.2 rounds to 5 whole units
    demand = np.array([12.0, 6.0])
    book, end = account_week(costs, stock, made, demand)
    # A: 1 + 5 + 3 = 9 available, 12 ordered -> 9 sold, 3 lost; B: 4 + 8 = 12, 6 sold, 6 left
    assert end.tolist() == [0.0, 6.0]
    assert book.revenue == pytest.approx(9 * 100 + 6 * 50)
    assert book.production == pytest.approx(5 * 30 + 3 * 20 + 8 * 10)
    assert book.setup == pytest.approx(40 + 40 + 60)  # A and B on L1, A on L2
    # L1: 5 * 1 + 8 * 0.5 = 9 h + 2 setups * 2 h = 13 h > 10 h -> 3 h overtime at 25
    assert book.overtime == pytest.approx(3 * 25)
    assert book.holding == pytest.approx(0.01 * 10 * 6)  # 1% of B's cheapest unit cost per unit
    assert book.lost_sales == pytest.approx(0.05 * 100 * 3)
    assert book.profit == pytest.approx(1200 - 290 - 140 - 75 - 0.6 - 15)
    assert (book.demand_units, book.sales_units, book.made_units) == (18.0, 15.0, 16.0)


def test_production_on_an_ineligible_line_is_refused() -> None:
    with pytest.raises(ValueError, match="not eligible"):
        account_week(_costs(), np.zeros(2), np.array([[0.0, 0.0], [0.0, 2.0]]), np.zeros(2))


def test_netting_cuts_the_smallest_planned_lot_first() -> None:
    made = np.array([[5.0, 3.0], [2.0, 0.0]])
    out = net_against_stock(made, np.array([4.0, 7.0]))
    assert out.tolist() == [[4.0, 0.0], [0.0, 0.0]]


def test_a_week_with_the_worlds_setup_truth_books_runs_changeovers_and_the_premium() -> None:
    """Each run's own fixed cost and setup hours, one changeover per (family, line) made, and
    overtime on the share of the line's hours above capacity, changeover hours unpaid."""
    from dataclasses import replace

    costs = replace(
        _costs(),
        run_cost=np.array([[15.0, 25.0], [35.0, NAN]]),
        run_setup_hours=np.array([[1.0, 0.5], [2.0, NAN]]),
        family=np.array([0, 0]),  # A and B: one family
        family_ids=("SHR",),
        changeover_hours=np.array([[2.0, 4.0]]),
        changeover_cost=np.array([[200.0, 300.0]]),
    )
    made = np.array([[5.0, 3.0], [8.0, 0.0]])
    book, _ = account_week(costs, np.zeros(2), made, np.array([20.0, 20.0]))
    assert book.setup == pytest.approx(15 + 25 + 35)  # the runs' own fixed costs
    assert (book.changeover, book.changeovers) == (pytest.approx(200 + 300), 2)
    # L1: work 5 * 1 + 8 * 0.5 + 1 + 2 = 12 h, with the changeover 14 h against 10: a share of
    # 4/14 of the 12 h paid at 25; L2: 3 * 2 + 0.5 + 4 = 10.5 h against 100, no overtime
    assert book.overtime == pytest.approx(25 * 12 * 4 / 14)
    assert book.profit == pytest.approx(
        book.revenue - book.production - 75 - 500 - book.overtime - book.holding - book.lost_sales
    )


def test_the_book_charges_what_the_worlds_own_cost_function_says() -> None:
    """On a generated world, production + setups + changeovers + overtime of a week booked
    equals ``World.expected_week_cost`` (the truth docs/synthetic-data.md states) plus the
    materials."""
    import pandas as pd

    from services.datagen.presets import get_preset
    from services.datagen.world import World
    from services.simulate.accounting import true_costs

    world = World(get_preset("tiny"), seed=5)
    cat = world.catalog
    lines = pd.DataFrame(
        {
            "line_id": [ln.line_id for ln in cat.lines],
            "setup_cost": [ln.setup_cost for ln in cat.lines],
            "setup_hours": [ln.setup_hours for ln in cat.lines],
            "capacity_hours": world.capacity_hours,
            "overtime_cost_per_hour": world.setups.overtime_cost,
        }
    )
    costs = true_costs(world, lines)
    rng = np.random.default_rng(0)
    # every eligible pair makes 0-12 units; then a heavy week on the first line (overtime)
    made = np.where(np.isnan(cat.hours), 0.0, rng.integers(0, 13, cat.hours.shape))
    heavy = made.copy()
    heavy[:, 0] = np.where(np.isnan(cat.hours[:, 0]), 0.0, 60.0)
    for week in (made, heavy):
        book, _ = account_week(
            costs, np.zeros(len(cat.variant_id)), week, np.zeros(len(cat.variant_id))
        )
        truth = world.expected_week_cost(week)
        material = float((costs.unit_cost - cat.unit_cost)[week > 0] @ week[week > 0])
        assert book.production == pytest.approx(truth["variable"] + material)
        assert book.setup == pytest.approx(truth["run_fixed"])
        assert book.changeover == pytest.approx(truth["changeover"])
        assert book.changeovers == truth["changeovers"]
        assert book.overtime == pytest.approx(truth["overtime_premium"])
    assert world.expected_week_cost(heavy)["overtime_premium"] > 0
