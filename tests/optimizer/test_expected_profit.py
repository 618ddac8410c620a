"""Expected-profit planning (demand_mode="expected_profit"): the scenario sampler reproduces the
forecast quantiles, the model's optimum equals a brute force over setup patterns that shares no
code with it (scipy's linprog on a dense formulation written here), and its plan is never worse in
expected profit than a plan made for any single quantile, on the same scenarios."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import replace

import numpy as np
import pyomo.environ as pyo
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from optimizer import (
    Line,
    PlanningProblem,
    PreviousPlanLine,
    ProblemInvalid,
    Route,
    SolveOptions,
    Variant,
    solve,
)
from optimizer.core import heuristics, moves, pipeline
from optimizer.core.data import ModelData, certain_demand_data, mean_demand_data, prepare
from optimizer.core.heuristics import bound_groups, grouped_scenarios, scenario_bound
from optimizer.core.model import build_model
from optimizer.core.scenarios import sample_paths
from optimizer.core.setups import Setups
from optimizer.core.solver import Session
from optimizer.core.start import item_bound
from optimizer.core.synthetic import synthetic_problem

OPTS = SolveOptions(time_limit_s=20, mip_rel_gap=0.0, explain=False, whole_units=False)


# --------------------------------------------------------------------------- the sampler


def test_sampled_paths_reproduce_the_quantiles_and_tie_every_pair_of_weeks_alike() -> None:
    paths = sample_paths("V1", (0.1, 0.5, 0.9), [(10.0, 20.0, 35.0)] * 3, 4000, seed=3, rho=0.6)
    assert paths.shape == (4000, 3)
    for t in range(3):
        p10, p50, p90 = np.percentile(paths[:, t], [10, 50, 90])
        assert p10 == pytest.approx(10.0, abs=0.8)
        assert p50 == pytest.approx(20.0, abs=0.8)
        assert p90 == pytest.approx(35.0, abs=0.8)
    assert (paths >= 0).all()
    # one level shared by the path: weeks 1 and 3 as tied as weeks 1 and 2 (no AR(1) decay)
    near, far = (
        np.corrcoef(paths[:, 0], paths[:, 1])[0, 1],
        np.corrcoef(paths[:, 0], paths[:, 2])[0, 1],
    )
    assert near > 0.5 and far > 0.5 and abs(near - far) < 0.05


def test_a_variant_gets_the_same_scenarios_whatever_is_planned_beside_it() -> None:
    a = sample_paths("V1", (0.1, 0.5, 0.9), [(1.0, 2.0, 4.0)] * 4, 16, seed=7)
    b = sample_paths("V1", (0.1, 0.5, 0.9), [(1.0, 2.0, 4.0)] * 4, 16, seed=7)
    c = sample_paths("V2", (0.1, 0.5, 0.9), [(1.0, 2.0, 4.0)] * 4, 16, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bad_scenario_settings_name_the_field() -> None:
    p = _problem([[3.0, 4.0]], capacity=5.0)
    with pytest.raises(ProblemInvalid) as err:
        replace(p, demand_mode="expected_profit", scenario_count=0).validate()
    assert err.value.field == "scenario_count"
    with pytest.raises(ProblemInvalid) as err:  # one shared level per path: no negative form
        replace(p, demand_mode="expected_profit", week_correlation=-0.1).validate()
    assert err.value.field == "week_correlation"
    bad = replace(p.variants[0], demand_scenarios=((1.0, 2.0),))
    with pytest.raises(ProblemInvalid) as err:
        replace(p, demand_mode="expected_profit", scenario_count=2, variants=(bad,)).validate()
    assert err.value.field == "variants[0].demand_scenarios"


# --------------------------------------------------------------------------- brute force


def _problem(
    scenarios: list[list[float]],
    *,
    capacity: float,
    price: float = 10.0,
    unit_cost: float = 4.0,
    setup_cost: float = 5.0,
    holding: float = 0.5,
    lost: float = 1.0,
    s0: float = 0.0,
    n_variants: int = 1,
    shift: float = 1.0,
    end_stock_value: float = 1.0,
) -> PlanningProblem:
    n = len(scenarios[0])
    variants = []
    for v in range(n_variants):
        rows = tuple(tuple(max(0.0, d * (1 + v * (shift - 1))) for d in row) for row in scenarios)
        mean = [float(np.mean([r[t] for r in rows])) for t in range(n)]
        variants.append(
            Variant(
                id=f"V{v}",
                price=tuple(price + v for _ in range(n)),
                demand=tuple((m,) for m in mean),
                service_level=0.5,
                holding_cost=holding,
                lost_sale_cost=lost,
                initial_inventory=s0,
                demand_scenarios=rows,
            )
        )
    return PlanningProblem(
        periods=tuple(f"2027-01-{4 + 7 * t:02d}" for t in range(n)),
        variants=tuple(variants),
        lines=(Line(id="L1", capacity_hours=(capacity,) * n, setup_cost=setup_cost),),
        routes=tuple(
            Route(variant=v.id, line="L1", unit_cost=unit_cost, hours_per_unit=1.0)
            for v in variants
        ),
        quantiles=(0.5,),
        demand_mode="expected_profit",
        scenario_count=len(scenarios),
        end_stock_value=end_stock_value,
    )


def _saa_lp(p: PlanningProblem, pattern: dict, fixed_x: dict | None = None) -> float | None:
    """max expected profit for one setup pattern (and, if given, fixed production): a dense LP
    over x[i,t], qk[i,t,k], sk[i,t,k] written from the problem's fields. None: infeasible."""
    d = prepare(p)
    assert d.scenario_demand is not None
    n, K = len(p.periods), d.K
    line = p.lines[0]
    cols: dict[tuple, int] = {}
    for v in p.variants:
        for t in range(n):
            cols["x", v.id, t] = len(cols)
            for k in K:
                cols["q", v.id, t, k] = len(cols)
                cols["s", v.id, t, k] = len(cols)
    c = np.zeros(len(cols))
    bounds = [(0.0, None)] * len(cols)
    const = 0.0
    w = 1.0 / len(K)
    for v in p.variants:
        route = next(r for r in p.routes if r.variant == v.id)
        # a unit left after the last period is worth the share of its unit cost, at most its
        # lowest price plus the lost-sale cost
        worth = min(p.end_stock_value * route.unit_cost, min(v.price) + v.lost_sale_cost)
        for k in K:
            c[cols["s", v.id, n - 1, k]] -= w * worth
        for t in range(n):
            c[cols["x", v.id, t]] = route.unit_cost
            if pattern[v.id, t]:
                const -= line.setup_cost
            else:
                bounds[cols["x", v.id, t]] = (0.0, 0.0)
            if fixed_x is not None:
                bounds[cols["x", v.id, t]] = (fixed_x[v.id, t], fixed_x[v.id, t])
            for k in K:
                dem = d.scenario_demand[v.id, t, k]
                c[cols["q", v.id, t, k]] = -w * (v.price[t] + v.lost_sale_cost)
                c[cols["s", v.id, t, k]] += w * v.holding_cost
                const -= w * v.lost_sale_cost * dem
                bounds[cols["q", v.id, t, k]] = (0.0, dem)
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for v in p.variants:
        for t in range(n):
            for k in K:
                row = np.zeros(len(cols))  # s[t-1] + x = q + s
                row[cols["x", v.id, t]] = 1.0
                row[cols["q", v.id, t, k]] = -1.0
                row[cols["s", v.id, t, k]] = -1.0
                if t > 0:
                    row[cols["s", v.id, t - 1, k]] = 1.0
                a_eq.append(row)
                b_eq.append(-v.initial_inventory if t == 0 else 0.0)
    for t in range(n):
        row = np.zeros(len(cols))
        for v in p.variants:
            row[cols["x", v.id, t]] = 1.0
        a_ub.append(row)
        b_ub.append(line.capacity_hours[t])
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        return None
    return float(-res.fun + const)


def brute_expected_profit(p: PlanningProblem) -> float:
    keys = [(v.id, t) for v in p.variants for t in range(len(p.periods))]
    best = -np.inf
    for bits in itertools.product((0, 1), repeat=len(keys)):
        value = _saa_lp(p, dict(zip(keys, bits, strict=True)))
        if value is not None:
            best = max(best, value)
    return float(best)


def test_expected_profit_optimum_of_a_hand_made_instance() -> None:
    # demand 2,5 / 4,1 / 0,3: producing for the mean (2,3) beats producing for any one scenario
    p = _problem([[2.0, 5.0], [4.0, 1.0], [0.0, 3.0]], capacity=6.0)
    plan = solve(p, OPTS)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(brute_expected_profit(p), abs=1e-5)
    assert plan.kpis.scenarios == 3
    assert plan.kpis.profit_p10 is not None and plan.kpis.profit_p90 is not None
    assert plan.kpis.profit_p10 <= plan.objective <= plan.kpis.profit_p90


def test_stock_left_at_the_end_is_worth_its_cost_so_the_plan_hedges_higher() -> None:
    """One week, demand 2 or 8, price 6, unit cost 4, holding 0.5. Valued at nothing, a unit
    past the 2th sells half the time for 6 and costs 4.25: the plan makes 2 (profit 4). Valued
    at its cost, an unsold unit is still worth 4: it makes 8, leaves 3 on average and earns
    30 - 32 - 1.5 + 12 = 8.5."""
    for share, made, profit, kept in ((0.0, 2.0, 4.0, 0.0), (1.0, 8.0, 8.5, 12.0)):
        p = _problem(
            [[2.0], [8.0]], capacity=20.0, price=6.0, setup_cost=0.0, lost=0.0,
            end_stock_value=share,
        )  # fmt: skip
        plan = solve(p, OPTS)
        assert plan.status == "optimal"
        assert plan.kpis.total_production == pytest.approx(made)
        assert plan.objective == pytest.approx(profit) == pytest.approx(brute_expected_profit(p))
        assert plan.costs.end_stock_value == pytest.approx(kept)
        assert plan.costs.profit == pytest.approx(profit)
    with pytest.raises(ProblemInvalid, match="end_stock_value"):
        replace(p, end_stock_value=1.5).validate()


def test_a_previous_plan_above_every_scenario_is_kept_when_changing_it_costs_more() -> None:
    """Demand 2 for sure, the plan in force makes 10, each unit changed costs 3. Left stock is
    worth its cost (4) and holding 0.5: making q earns 20 - 4q - 0.5 (q - 2) + 4 (q - 2)
    - 3 (10 - q) = 2.5 q - 17, so the optimum keeps the 10 (profit 8). The setup bound may
    not stop production at the scenarios' demand here."""
    p = replace(
        _problem([[2.0], [2.0]], capacity=20.0, setup_cost=0.0, lost=0.0),
        previous_plan=(PreviousPlanLine(variant="V0", line="L1", period=0, quantity=10.0),),
        change_penalty=3.0,
    )
    plan = solve(p, OPTS)
    assert plan.status == "optimal"
    assert plan.kpis.total_production == pytest.approx(10.0)
    assert plan.objective == pytest.approx(8.0)


@st.composite
def tiny_saa(draw: st.DrawFn) -> PlanningProblem:
    n = draw(st.integers(2, 3))
    k = draw(st.integers(1, 4))
    rows = [[float(draw(st.integers(0, 8))) for _ in range(n)] for _ in range(k)]
    return _problem(
        rows,
        capacity=float(draw(st.integers(2, 12))),
        price=float(draw(st.integers(5, 20))),
        unit_cost=float(draw(st.integers(1, 6))),
        setup_cost=float(draw(st.integers(0, 20))),
        holding=draw(st.sampled_from([0.1, 0.5, 2.0])),
        lost=draw(st.sampled_from([0.0, 1.0, 3.0])),
        s0=float(draw(st.integers(0, 3))),
        n_variants=draw(st.integers(1, 2)) if n == 2 else 1,
        shift=draw(st.sampled_from([0.5, 1.0, 1.5])),
        end_stock_value=draw(st.sampled_from([0.0, 0.5, 1.0])),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_saa())
def test_model_optimum_equals_brute_force_over_scenarios(p: PlanningProblem) -> None:
    plan = solve(p, OPTS)
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(brute_expected_profit(p), rel=1e-6, abs=1e-5)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_saa(), st.sampled_from([0.5, 0.7, 0.9]))
def test_expected_profit_plan_is_never_worse_than_a_quantile_plan(
    p: PlanningProblem, level: float
) -> None:
    """The quantile plan (demand planned at ``level`` of the same scenarios, as if certain) is
    evaluated on the scenarios with its production fixed: it cannot earn more in expectation."""
    d = prepare(p)
    assert d.scenario_demand is not None
    as_quantile = []
    for v in p.variants:
        rows = [
            (float(np.quantile([d.scenario_demand[v.id, t, k] for k in d.K], level)),)
            for t in range(len(p.periods))
        ]
        as_quantile.append(replace(v, demand=tuple(rows), demand_scenarios=()))
    quantile_problem = replace(p, variants=tuple(as_quantile), demand_mode="quantile")
    quantile_plan = solve(quantile_problem, OPTS)
    saa_plan = solve(p, OPTS)
    made = {(v.id, t): 0.0 for v in p.variants for t in range(len(p.periods))}
    for pl in quantile_plan.lines:
        made[pl.variant, pl.period] += pl.quantity
    pattern = {key: q > 1e-9 for key, q in made.items()}
    value = _saa_lp(p, pattern, fixed_x=made)
    assert value is not None
    assert saa_plan.objective is not None
    assert saa_plan.objective >= value - 1e-6


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_saa(), st.integers(0, 12))
def test_per_variant_bound_counts_the_stock_left_at_its_end_value(
    p: PlanningProblem, s0: int
) -> None:
    """The per-variant bound (the Lagrangian's at zero multipliers) stays above the brute-force
    optimum when the initial stock outlasts the demand and what is left is worth its cost."""
    p = replace(p, variants=tuple(replace(v, initial_inventory=float(s0)) for v in p.variants))
    best = brute_expected_profit(p)
    bound = item_bound(prepare(p))
    assert bound is not None and bound >= best - 1e-6 * max(1.0, abs(best))


# ------------------------------------------------------------ the bound from scenario groups


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_saa())
def test_merged_scenario_groups_bound_the_expected_profit(p: PlanningProblem) -> None:
    """Each variant's scenarios merged into equal groups of their mean path (any group count
    that divides the scenarios, one included): the grouped model's optimum, and the cut-loop
    bound ``scenario_bound`` takes from it, are at least the brute-force expected profit."""
    assume(p.scenario_count is not None and p.scenario_count >= 2)
    best = brute_expected_profit(p)
    d = prepare(p)
    for groups in (g for g in range(1, len(d.K)) if len(d.K) % g == 0):
        dg = grouped_scenarios(d, groups)
        assert len(dg.K) == groups
        res = Session(build_model(dg)).run(20, 0.0)
        assert res.status == "optimal" and res.objective is not None
        assert res.objective >= best - 1e-6 * max(1.0, abs(best))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(heuristics, "BOUND_GROUPS", groups)
            bound, _ = scenario_bound(d, OPTS, time.perf_counter() + 20)
        if groups >= 2:
            assert bound is not None and bound >= best - 1e-6 * max(1.0, abs(best))


def test_eight_scenario_groups_keep_nearly_all_of_the_scenarios_tightness() -> None:
    """Why the bound merges scenarios: on a synthetic plan with families and 16 scenarios the LP
    of the mean demand alone (Jensen) is 13.7% above the scenario model's, that of 8 groups of 2
    0.14% (490,582 / 431,957 / 431,371, measured): 8 groups keep > 95% of the difference. The
    stock left at the end is worth nothing here: valued at its cost it narrows Jensen's gap
    itself, to 1.8% (490,779 / 482,192 / 483,319)."""

    def lp(data: ModelData) -> float:
        m = build_model(data)
        for v in [*m.y.values(), *m.z.values()]:
            v.domain = pyo.UnitInterval
        res = Session(m).run(60, 0.0, lp="ipm")
        assert res.status == "optimal" and res.objective is not None
        return res.objective

    p = synthetic_problem(30, 6, 2, seed=1, families=3)
    d = prepare(replace(p, demand_mode="expected_profit", scenario_count=16, end_stock_value=0.0))
    full = lp(d)
    mean = lp(replace(d, K=(), scenario_demand=None))
    eight = lp(grouped_scenarios(d, bound_groups(len(d.K))))
    assert full - 1e-6 * full <= eight <= full + 0.05 * (mean - full)
    assert mean > full * 1.05


def test_auto_never_sends_expected_profit_to_relax_and_fix() -> None:
    """A short limit on a big plan: quantile mode goes to relax-and-fix, expected-profit mode
    stays monolithic, whose mean-demand start is a plan within seconds (relax-and-fix's first
    window over every scenario returned no plan in a 20 s ReplanBatch budget: measured by
    bench/bench_replan_gateway.py, docs/benchmarks.md)."""
    p = synthetic_problem(200, 8, 3, seed=1)  # 2,744 free setups
    short = SolveOptions(time_limit_s=5.0)
    assert pipeline.choose_method(prepare(p), short) == "relax_and_fix"
    ep = replace(p, demand_mode="expected_profit", scenario_count=32)
    assert pipeline.choose_method(prepare(ep), short) == "monolithic"


def test_dp_start_after_another_pattern_was_priced() -> None:
    """Expected-profit mode prices the mean-demand plan's setups, then falls back to the DP
    start when that found no plan: the DP start must set the setups the pricing fixed (it
    raised KeyError there, and the solve returned nothing)."""
    p = replace(
        synthetic_problem(12, 4, 2, seed=3), demand_mode="expected_profit", scenario_count=8
    )
    d = prepare(p)
    m = build_model(d)
    session = Session(m, 1)
    session.translate()
    setups = Setups(m)
    none_on = {k: 0.0 for k in m.y}
    idle = heuristics.price_pattern(session, setups, none_on, time.perf_counter() + 30)
    assert idle.has_solution
    start = heuristics.pattern_start(session, setups, d, time.perf_counter() + 30)
    assert start.has_solution and start.objective is not None
    assert start.objective > idle.objective  # producing beats producing nothing
    assert any((m.y[k].value or 0.0) > 0.5 for k in m.y)


def test_mean_demand_model_bounds_setups_by_its_own_path_and_keeps_its_optimum() -> None:
    """The expected-profit start's mean-demand model: its setup big-M comes from the mean path,
    not from the highest scenario (which left its LP as weak as the scenario model's and its
    short solve 3x below the P50 plan's on the small preset's 4-week plan), and tightening it
    cuts off no plan: the optimum is the same as with the scenarios' big-M."""
    p = replace(synthetic_problem(8, 4, 2, seed=5), demand_mode="expected_profit", scenario_count=8)
    d = prepare(p)
    loose = replace(d, K=(), scenario_demand=None)
    tight = mean_demand_data(d)
    assert all(tight.big_m[k] <= loose.big_m[k] + 1e-9 for k in d.big_m)
    assert any(tight.big_m[k] < loose.big_m[k] - 1e-6 for k in d.big_m)
    exact = SolveOptions(time_limit_s=60.0, mip_rel_gap=1e-9, explain=False, whole_units=False)
    got = [pipeline._monolithic(x, exact)[2] for x in (loose, tight)]
    assert all(r.status == "optimal" for r in got)
    assert got[0].objective == pytest.approx(got[1].objective, rel=1e-6)


def test_median_demand_model_plans_each_cells_scenario_median() -> None:
    """The expected-profit start's median path: each cell's demand is the median of its
    scenarios (below their mean when demand is skewed, as intermittent demand is), and its big-M
    comes from that path."""
    p = replace(synthetic_problem(8, 4, 2, seed=5), demand_mode="expected_profit", scenario_count=8)
    d = prepare(p)
    assert d.scenario_demand is not None
    med = certain_demand_data(d, "median")
    for i in d.I:
        for t in d.T:
            column = sorted(d.scenario_demand[i, t, k] for k in d.K)
            assert med.demand[i, t] == pytest.approx((column[3] + column[4]) / 2)
    assert med.K == () and med.scenario_demand is None
    assert med.big_m != mean_demand_data(d).big_m
    with pytest.raises(ValueError, match="path"):
        certain_demand_data(d, "p90")


# --------------------------------------------------------------------------- setup moves


def _moves_from(
    p: PlanningProblem, pattern_of: str
) -> tuple[float, float, dict, pyo.ConcreteModel]:
    """Expected-profit model of ``p``, a start priced (``"none"``: no setup at all; ``"median"``:
    the median-demand plan's setups, as the solve's start), then the setup moves: (start's
    expected profit, the moves', their pattern keyed (variant, period), the model)."""
    d = prepare(p)
    m = build_model(d)
    session = Session(m, 1)
    session.translate()
    setups = Setups(m)
    if pattern_of == "none":
        pattern = {k: 0.0 for k in m.y}
    else:
        m_c, _, res_c, _ = pipeline._monolithic(certain_demand_data(d, "median"), OPTS)
        assert res_c.has_solution
        pattern = {k: float(round(v.value or 0.0)) for k, v in m_c.y.items()}
    start = heuristics.price_pattern(session, setups, pattern, time.perf_counter() + 30)
    assert start.has_solution and start.objective is not None
    best, note = moves.setup_moves(session, setups, d, time.perf_counter() + 30, start)
    assert best.objective is not None
    assert note.startswith("; setup moves: ")
    # the model holds the plan it reports, its setups fixed binaries again (HiGHS's MIP after
    # the search must see integer columns)
    assert pyo.value(m.objective) == pytest.approx(best.objective, rel=1e-7, abs=1e-6)
    assert all(v.is_binary() for v in (*m.y.values(), *getattr(m, "z", {}).values()))
    assert all(v.fixed for k, v in m.y.items() if id(v) in setups.ids)
    found = {(i, t): (v.value or 0.0) > 0.5 for (i, _ln, t), v in m.y.items()}
    return start.objective, best.objective, found, m


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_saa())
def test_setup_moves_never_end_below_their_start_and_report_their_patterns_worth(
    p: PlanningProblem,
) -> None:
    """From no setup at all: the search keeps a pattern only when its LP earns more, and what it
    reports is that pattern's worth by the dense LP written here (no code shared), never above
    the brute-force optimum."""
    start, found, pattern, _ = _moves_from(p, "none")
    assert found >= start - 1e-6
    assert found == pytest.approx(_saa_lp(p, pattern), rel=1e-6, abs=1e-5)
    assert found <= brute_expected_profit(p) + 1e-5


def test_setup_moves_find_the_optimum_the_median_start_misses() -> None:
    """Two variants, three weeks, three scenarios: each orders in one week only, so every
    cell's median is 0 and the median-demand plan sets nothing up (it only pays the lost
    sales), while making stock pays in expectation (price 10, unit cost 4, setup 5, stock left
    worth its cost). The moves reach the brute-force optimum over the 64 patterns."""
    p = _problem(
        [[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 4.0]],
        capacity=12.0, n_variants=2, shift=1.5,
    )  # fmt: skip
    start, found, _, _ = _moves_from(p, "median")
    assert start == pytest.approx(-10.0)  # nothing made: 4 + 6 units lost at a penalty of 1
    best = brute_expected_profit(p)
    assert best > 10.0
    assert found == pytest.approx(best, rel=1e-6)


def test_expected_profit_solve_runs_the_setup_moves_after_its_start() -> None:
    """The committed solve: its message states the moves' start and result, the result is at
    least the start, and the plan returned is at least the result."""
    p = replace(
        synthetic_problem(24, 4, 2, seed=3, families=3),
        demand_mode="expected_profit",
        scenario_count=8,
    )
    plan = solve(p, SolveOptions(time_limit_s=10, mip_rel_gap=1e-4, explain=False))
    assert plan.objective is not None
    found = re.search(r"setup moves: (-?[\d,.]+) -> (-?[\d,.]+)", plan.message)
    assert found, plan.message
    before, after = (float(g.replace(",", "")) for g in found.groups())
    assert after >= before
    assert plan.objective >= after - 1.0  # whole units may cost a little
