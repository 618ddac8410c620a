"""Hindsight bounds every policy, and every policy meets the same demand (common random numbers),
on a tiny world over a few weeks, without the stack."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.datagen.generate import build_dataset
from services.datagen.presets import get_preset
from services.datagen.world import World
from services.simulate import policies
from services.simulate.accounting import account_week, regular_share, true_costs
from services.simulate.demand import DemandBook
from services.simulate.hindsight import hindsight_problem, solve_hindsight
from services.simulate.loop import realised_demand

SEED = 5
WEEKS = 3


@pytest.fixture(scope="module")
def tiny() -> tuple[World, dict[str, pd.DataFrame]]:
    world = World(get_preset("tiny"), seed=SEED)
    return world, build_dataset(world).tables


def test_the_demand_draw_depends_on_the_seed_and_week_only(tiny) -> None:
    world, frames = tiny
    costs = true_costs(world, frames["lines"])
    t = world.n_weeks
    later_first = realised_demand(world, costs, t + 1, SEED)[1]
    now = realised_demand(world, costs, t, SEED)[1]
    assert realised_demand(world, costs, t + 1, SEED)[1].tolist() == later_first.tolist()
    assert realised_demand(World(get_preset("tiny"), SEED), costs, t, SEED)[1].tolist() == (
        now.tolist()
    )
    assert now.sum() > 0
    assert realised_demand(world, costs, t, SEED + 1)[1].tolist() != now.tolist()


def test_hindsight_bounds_every_policy_that_met_the_same_demand(tiny) -> None:
    world, frames = tiny
    costs = true_costs(world, frames["lines"])
    refs = policies.ReferencePolicies(world, frames, costs, seed=SEED, scenario_count=8)
    names = ("oracle", "naive", "quantile_0.5", "quantile_0.9")
    stock = {n: np.zeros(len(costs.variant_ids)) for n in names}
    profit = dict.fromkeys(names, 0.0)
    demand_seen: dict[str, list[float]] = {n: [] for n in names}
    book = DemandBook(world, costs, world.n_weeks, WEEKS, history=frames["orders"])
    regular = np.ones(len(costs.line_ids))
    for k in range(WEEKS):
        t = world.n_weeks + k
        made = {
            n: refs.plan(n, t, stock[n], horizon=2, time_limit_s=10, mip_rel_gap=0.0)[0]
            for n in ("oracle", "naive")
        }
        # the quantile policies here plan the oracle's problem (the stack's forecasts are absent)
        problem, _ = refs.problem("oracle", t, 2)
        made.update(
            policies.quantile_plans(
                costs, problem, stock, (0.5, 0.9), time_limit_s=10, mip_rel_gap=0.0
            )
        )
        outcome = world.realise_week(t, SEED)
        book.add_week(k, outcome.orders)
        week_demand = book.demand(k)
        for n in names:
            regular = np.minimum(regular, regular_share(costs, made[n]))
            week, stock[n] = account_week(costs, stock[n], made[n], week_demand)
            profit[n] += week.profit
            demand_seen[n].append(week.demand_units)
        refs.observe(t, outcome.orders)
    # common random numbers: every policy was booked against the same units
    assert len({tuple(v) for v in demand_seen.values()}) == 1
    best = solve_hindsight(
        costs, book.path, time_limit_s=30, mip_rel_gap=1e-6, changeover_share=regular
    )
    assert best.status == "optimal"
    for n in names:
        assert profit[n] <= best.bound + 1e-6, n
    # its own plan, booked like the policies, comes close to the bound: apart from rounding to
    # whole units, the bound counts the changeover hours at the policies' least regular share,
    # and the plan may work more overtime than any policy did (2.6% on this world)
    assert best.bound * 0.95 <= best.plan_profit <= best.bound + 1e-6
    assert best.plan_profit > max(profit.values())
    # counting none of the changeover hours (valid for any plan) bounds too, more loosely
    loose = solve_hindsight(costs, book.path, time_limit_s=30, mip_rel_gap=1e-6)
    assert loose.bound >= best.bound - 1e-6


def test_the_hindsight_problem_is_the_book_with_an_overtime_ceiling_never_reached(tiny) -> None:
    world, frames = tiny
    costs = true_costs(world, frames["lines"])
    demand = np.zeros((len(costs.variant_ids), 2))
    demand[0] = [3.0, 0.0]
    problem = hindsight_problem(costs, demand)
    assert [v.id for v in problem.variants] == [costs.variant_ids[0]]  # no demand, no variant
    assert not problem.materials and not problem.orders
    line = problem.lines[0]
    assert line.overtime_max_hours > 3.0 * np.nanmax(costs.hours) + costs.setup_hours.max()
    v = problem.variants[0]
    assert v.lost_sale_cost == pytest.approx(0.05 * costs.price[0])
    assert v.holding_cost == pytest.approx(costs.holding[0])
    assert v.initial_inventory == 0.0
