"""The reference policies on a world whose demand jumps right after the history, and the stock
on hand entering the planning problem."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.datagen.generate import build_dataset
from services.datagen.presets import get_preset
from services.datagen.world import World
from services.simulate.accounting import account_week, true_costs
from services.simulate.policies import ReferencePolicies, naive_point

WEEKS = 3


@pytest.fixture(scope="module")
def shifted() -> tuple[World, dict[str, pd.DataFrame]]:
    # linen demand falls to a tenth from the first simulated week on: the past misleads
    preset = replace(get_preset("tiny"), shift_week=30, shift_multiplier=0.1, shift_ramp_weeks=1)
    world = World(preset, seed=5)
    return world, build_dataset(world).tables


def test_the_oracle_earns_more_than_the_naive_policy_when_demand_collapses(shifted) -> None:
    world, frames = shifted
    costs = true_costs(world, frames["lines"])
    refs = ReferencePolicies(world, frames, costs)
    stock = {n: np.zeros(len(costs.variant_ids)) for n in refs.names}
    profit = dict.fromkeys(refs.names, 0.0)
    for t in range(world.n_weeks, world.n_weeks + WEEKS):
        made = {
            n: refs.plan(n, t, stock[n], horizon=2, time_limit_s=10, mip_rel_gap=0.01)[0]
            for n in refs.names
        }
        orders = world.realise_week(t, 5).orders
        demand = np.zeros(len(costs.variant_ids))
        np.add.at(demand, costs.variant_index(orders["variant_id"]), orders["quantity"])
        for n in refs.names:
            book, stock[n] = account_week(costs, stock[n], made[n], demand)
            profit[n] += book.profit
        refs.observe(t, orders, demand)
    # the naive policy makes linen nobody orders any more
    assert profit["oracle"] > profit["naive"]


def test_the_oracle_plans_over_draws_of_the_worlds_own_generator(shifted) -> None:
    from services.simulate.policies import oracle_scenarios

    world, _ = shifted
    t = world.n_weeks + 5
    draws = oracle_scenarios(world, t, 2, 4000, seed=1)
    assert draws.shape == (world.catalog.n_variants, 4000, 2)
    # the mean of the draws is the world's expected demand (all orders, custom ones included)
    mu = world.expected_demand(np.arange(t, t + 2))
    assert draws.mean(axis=1).sum() == pytest.approx(mu.sum(), rel=0.02)


def test_seasonal_naive_takes_last_year_when_on_sale_then_else_the_last_four_weeks() -> None:
    units = np.zeros((2, 60))
    units[:, 56:60] = [[4.0], [8.0]]  # the last four known weeks
    units[:, 8] = [11.0, 13.0]  # week 60 - 52
    launch = np.array([0, 20])  # the second variant was not on sale in week 8
    out = naive_point(units, launch, known=60, weeks=np.array([60]))
    assert out[:, 0].tolist() == [11.0, 8.0]


def test_the_stock_on_hand_enters_the_problem_and_must_belong_to_a_planned_variant(
    shifted,
) -> None:
    from services.planning import PlanRequest, build_problem, default_variants
    from services.simulate.policies import oracle_forecast, true_cost_table

    world, frames = shifted
    costs = true_costs(world, frames["lines"])
    start = pd.Timestamp(world.week_date(np.array([world.n_weeks]))[0])
    ids = default_variants(frames, start)
    forecast = oracle_forecast(world, world.n_weeks, 2)
    table = true_cost_table(costs, world)
    request = PlanRequest(
        start_week=start, horizon=2, variant_ids=tuple(ids), initial_inventory=((ids[0], 7.0),)
    )
    problem = build_problem(frames, forecast, table, request)
    on_hand = {v.id: v.initial_inventory for v in problem.variants}
    assert on_hand[ids[0]] == 7.0 and sum(on_hand.values()) == 7.0
    with pytest.raises(InvalidArgument) as err:
        build_problem(
            frames,
            forecast,
            table,
            replace(request, variant_ids=tuple(ids[1:])),
        )
    assert err.value.field == "initial_inventory"


def test_the_gateway_planner_upper_cases_stock_ids_and_refuses_unplanned_ones() -> None:
    from services.planning.request import check_initial_inventory as _initial_inventory

    assert _initial_inventory([("shr-1", 2.0)], ["SHR-1", "SHR-2"]) == (("SHR-1", 2.0),)
    with pytest.raises(InvalidArgument) as err:
        _initial_inventory([("SHR-9", 1.0)], ["SHR-1"])
    assert err.value.field == "initial_inventory[SHR-9]"
    with pytest.raises(InvalidArgument):
        _initial_inventory([("SHR-1", -1.0)], ["SHR-1"])
