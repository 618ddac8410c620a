"""The reference policies on a world whose demand jumps right after the history, and the stock
on hand entering the planning problem."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.datagen.generate import build_dataset
from services.datagen.presets import get_preset
from services.datagen.world import World
from services.simulate.accounting import account_week, true_costs
from services.simulate.demand import DemandBook
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
    book = DemandBook(world, costs, world.n_weeks, WEEKS, history=frames["orders"])
    stock = {n: np.zeros(len(costs.variant_ids)) for n in refs.names}
    profit = dict.fromkeys(refs.names, 0.0)
    for t in range(world.n_weeks, world.n_weeks + WEEKS):
        made = {
            n: refs.plan(n, t, stock[n], horizon=2, time_limit_s=10, mip_rel_gap=0.01)[0]
            for n in refs.names
        }
        orders = world.realise_week(t, 5).orders
        book.add_week(t - world.n_weeks, orders)
        demand = book.demand(t - world.n_weeks)
        for n in refs.names:
            week, stock[n] = account_week(costs, stock[n], made[n], demand)
            profit[n] += week.profit
        refs.observe(t, orders)
    # the naive policy makes linen nobody orders any more
    assert profit["oracle"] > profit["naive"]


def test_the_oracle_plans_over_draws_of_what_the_book_will_ask_beyond_the_firm_orders(
    shifted,
) -> None:
    from services.simulate.policies import oracle_scenarios

    world, _ = shifted
    t = world.n_weeks + 5
    draws = oracle_scenarios(world, t, 4, 4000, seed=1)
    assert draws.shape == (world.catalog.n_variants, 4000, 4)
    mu = world.expected_demand(np.arange(t, t + 4))
    cat = world.catalog
    share = np.array([f.custom_share for f in cat.families])[cat.family]
    stock = mu * (1.0 - share[:, None])
    mean = draws.mean(axis=1).sum(axis=0)
    # weeks 0 and 1: the stock orders' units alone (a custom order placed now is due in 2-6 weeks)
    assert mean[:2] == pytest.approx(stock[:, :2].sum(axis=0), rel=0.02)
    # week 2: plus the custom units placed in week 0 with a 2-week lead (1 in 5); week 3: plus
    # those of week 0 with a 3-week lead and of week 1 with a 2-week lead
    custom = mu * share[:, None]
    assert mean[2] == pytest.approx(stock[:, 2].sum() + custom[:, 0].sum() / 5, rel=0.02)
    assert mean[3] == pytest.approx(
        stock[:, 3].sum() + (custom[:, 0].sum() + custom[:, 1].sum()) / 5, rel=0.02
    )


def test_the_oracle_and_naive_problems_keep_their_stock_forecast_beside_the_firm_orders(
    shifted,
) -> None:
    # their forecasts are of the stock orders' units: the builder must not net the firm orders
    # out of them as it does out of the served model's forecast of every unit ordered
    from services.common.quantiles import QUANTILE_COLUMNS

    world, frames = shifted
    refs = ReferencePolicies(world, frames, true_costs(world, frames["lines"]))
    t = world.n_weeks
    for name in refs.names:
        problem, _ = refs.problem(name, t, 4)
        assert any(o.due_period == 0 for o in problem.orders)  # firm units to (wrongly) net
        fc = refs.forecast(name, t, 4).set_index("variant_id")
        for v in problem.variants:
            want = [tuple(float(x) for x in row) for row in fc.loc[[v.id], QUANTILE_COLUMNS].values]
            assert list(v.demand) == want, (name, v.id)


def test_a_custom_order_is_demand_once_in_its_due_week() -> None:
    world = World(get_preset("tiny"), seed=5)
    costs = true_costs(world, build_dataset(world).tables["lines"])
    first = world.n_weeks
    day = pd.Timestamp(world.week_date(np.array([first]))[0])
    v0, v1 = costs.variant_ids[0], costs.variant_ids[1]

    def order(variant: str, qty: int, placed: pd.Timestamp, due: pd.Timestamp, kind: str):
        return {"variant_id": variant, "quantity": qty, "order_date": placed, "due_date": due,
                "kind": kind}  # fmt: skip

    week = pd.Timedelta(days=7)
    history = pd.DataFrame(
        [
            order(v0, 5, day - 2 * week, day + week, "custom"),  # due in simulated week 1
            order(v0, 9, day - 3 * week, day - week, "custom"),  # was due before the span
            order(v1, 2, day - week, day - week, "stock"),  # a past stock order
        ]
    )
    book = DemandBook(world, costs, first, 4, history=history)
    book.add_week(
        0,
        pd.DataFrame(
            [
                order(v1, 3, day, day + pd.Timedelta(days=4), "stock"),
                order(v1, 6, day + pd.Timedelta(days=1), day + 3 * week, "custom"),  # week 3
                order(v0, 7, day, day + 6 * week, "custom"),  # due after the span
            ]
        ),
    )
    i0, i1 = costs.variant_index([v0, v1])
    assert book.demand(0)[[i0, i1]].tolist() == [0.0, 3.0]
    assert book.path[i0].tolist() == [0.0, 5.0, 0.0, 0.0]
    assert book.path[i1].tolist() == [3.0, 0.0, 0.0, 6.0]
    # the forecast error's target: every unit ordered in the week
    assert book.ordered[[i0, i1], 0].tolist() == [7.0, 9.0]


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


def test_the_solver_pool_returns_the_plan_the_calling_thread_would(shifted) -> None:
    from services.simulate.hindsight import hindsight_problem
    from services.simulate.policies import Solver

    world, frames = shifted
    costs = true_costs(world, frames["lines"])
    demand = np.zeros((len(costs.variant_ids), 2))
    demand[:3] = [[4.0, 2.0], [0.0, 6.0], [5.0, 5.0]]
    problem = hindsight_problem(costs, demand)  # a pickled PlanningProblem crosses to a worker
    here = Solver(0).submit(problem, 10, 0.0).result()
    with Solver(1) as pool:
        there = pool.submit(problem, 10, 0.0).result()
    assert there.rows == here.rows and there.status == here.status == "optimal"
    # week 0 makes at least its own demand (9 units), at most the span's (22: lots saving setups)
    assert 9.0 <= sum(q for _, _, q in there.rows) <= 22.0
    assert there.cpu_seconds > 0 and there.seconds >= there.cpu_seconds * 0.5


class _Gated:
    """Stands in for the solver pool's processes (the real pool is the test above's): each
    "solve" is a thread that runs until the test releases it by name."""

    def __init__(self, names: list[str]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.threads = ThreadPoolExecutor(max_workers=len(names))
        self.started: list[str] = []
        self.release = {name: threading.Event() for name in names}

    def submit(self, problem: str, time_limit_s: float, mip_rel_gap: float) -> Future[bool]:
        self.started.append(problem)
        return self.threads.submit(self.release[problem].wait, 10.0)


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10.0
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_reference_plans_take_the_cores_tailorlines_plan_leaves_two_at_most(
    monkeypatch,
) -> None:
    from services.simulate.policies import Solver

    names = ["oracle", "quantile_0.5", "quantile_0.7", "naive"]
    gated = _Gated(names)
    pool = Solver(0)
    pool.workers = 2  # as a two-process pool, whose solves are the gated threads
    monkeypatch.setattr(pool, "submit", gated.submit)
    tailorline: Future[None] = Future()
    handed: dict[str, Future[bool]] = {}
    runner = threading.Thread(
        target=lambda: handed.update(
            pool.solve_beside(tailorline, [(n, n) for n in names], 10, 0.02)
        ),
        daemon=True,
    )
    runner.start()
    try:
        # while tailorline's plan is made, one reference plan beside it, the oracle first
        _until(lambda: gated.started == names[:1])
        time.sleep(0.3)
        assert gated.started == names[:1]
        tailorline.set_result(None)
        # its core is free: two at a time, in order, each waiting for one to end
        _until(lambda: gated.started == names[:2])
        time.sleep(0.3)
        assert gated.started == names[:2]
        gated.release["quantile_0.5"].set()
        _until(lambda: gated.started == names[:3])
        time.sleep(0.3)
        assert gated.started == names[:3]
        gated.release["oracle"].set()
        runner.join(10.0)
        assert not runner.is_alive() and gated.started == names
        assert list(handed) == names
    finally:
        for event in gated.release.values():
            event.set()
    assert all(f.result(10.0) for f in handed.values())


def test_a_failed_tailorline_plan_frees_its_core_and_an_in_thread_solver_solves_one_at_a_time(
    monkeypatch,
) -> None:
    from services.simulate.policies import Solver

    names = ["oracle", "quantile_0.5", "naive"]
    gated = _Gated(names)
    pool = Solver(0)
    pool.workers = 2
    monkeypatch.setattr(pool, "submit", gated.submit)
    failed: Future[None] = Future()
    failed.set_exception(RuntimeError("CreatePlan failed"))
    handed: dict[str, Future[bool]] = {}
    runner = threading.Thread(
        target=lambda: handed.update(pool.solve_beside(failed, [(n, n) for n in names], 10, 0.02)),
        daemon=True,
    )
    runner.start()
    try:
        _until(lambda: gated.started == names[:2])  # two at once: nothing holds a core
        gated.release["oracle"].set()
        runner.join(10.0)
        assert not runner.is_alive() and list(handed) == names
    finally:
        for event in gated.release.values():
            event.set()
    # no pool: each solve runs in the calling thread, after tailorline's plan
    calls: list[str] = []
    here = Solver(0)
    monkeypatch.setattr(
        "services.simulate.policies.solve_first_week", lambda p, *_: calls.append(p) or p
    )
    done: Future[None] = Future()
    done.set_result(None)
    out = here.solve_beside(done, [(n, n) for n in names], 10, 0.02)
    assert calls == names and {n: f.result() for n, f in out.items()} == {n: n for n in names}
