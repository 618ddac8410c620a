"""Family changeovers (joint setups): the model's optimum against a brute force that shares no
code with it (family_brute.py), in both demand modes; the bounds stay bounds; heuristics, starts
and the explanation handle the changeovers; bad family data names the field."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import replace

import numpy as np
import pytest
from family_brute import best_profit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import (
    Line,
    Plan,
    PlanningProblem,
    ProblemInvalid,
    Route,
    SolveOptions,
    Variant,
    solve,
)
from optimizer.core import heuristics, pipeline
from optimizer.core.data import prepare
from optimizer.core.lagrange import Relaxation
from optimizer.core.problem import FamilySetup
from optimizer.core.start import item_bound
from optimizer.core.synthetic import synthetic_problem


def _opts(**kw: object) -> SolveOptions:
    """Exact solves, fractional quantities (the brute force's LP is continuous)."""
    base: dict[str, object] = {"time_limit_s": 30, "mip_rel_gap": 0.0, "explain": False}
    if "whole_units" in {f.name for f in dataclasses.fields(SolveOptions)}:
        base["whole_units"] = False
    base.update(kw)
    return SolveOptions(**base)  # type: ignore[arg-type]


def tiny(
    demand: list[list[float]],
    families: list[str],
    *,
    capacity: float = 20.0,
    changeover_cost: float = 50.0,
    changeover_hours: float = 2.0,
    setup_cost: float = 5.0,
    setup_hours: float = 0.5,
    price: float = 12.0,
    unit_cost: float = 4.0,
    holding: float = 1.0,
    lost: float = 1.0,
    overtime: float = 0.0,
    scenarios: list[list[list[float]]] | None = None,
    second_line: bool = False,
) -> PlanningProblem:
    """One line (a second one, eligible for the first variant only, when asked); variant j has
    demand[j] per period and family families[j]; every family has a changeover on every line."""
    n = len(demand[0])
    variants = []
    for j, (row, g) in enumerate(zip(demand, families, strict=True)):
        paths = tuple(tuple(s[j]) for s in scenarios) if scenarios else ()
        variants.append(
            Variant(
                id=f"V{j}",
                price=(price + j,) * n,
                demand=tuple((d,) for d in row),
                holding_cost=holding,
                lost_sale_cost=lost,
                family=g,
                demand_scenarios=paths,
            )
        )
    lines = [
        Line(
            "L1",
            (capacity,) * n,
            overtime_max_hours=3.0 if overtime else 0.0,
            overtime_cost=overtime,
            setup_hours=setup_hours,
            setup_cost=setup_cost,
        )
    ]
    routes = [Route(v.id, "L1", unit_cost=unit_cost + 0.5 * j) for j, v in enumerate(variants)]
    if second_line:
        lines.append(Line("L2", (capacity / 2,) * n, setup_hours=setup_hours, setup_cost=1.0))
        routes.append(Route("V0", "L2", unit_cost=unit_cost + 1.0, hours_per_unit=1.5))
    return PlanningProblem(
        periods=tuple(f"W{t}" for t in range(n)),
        variants=tuple(variants),
        lines=tuple(lines),
        routes=tuple(routes),
        family_setups=tuple(
            FamilySetup(ln.id, g, changeover_hours, changeover_cost)
            for ln in lines
            for g in sorted(set(families))
        ),
        demand_mode="expected_profit" if scenarios else "quantile",
        scenario_count=len(scenarios) if scenarios else 32,
    )


# --------------------------------------------------------------------------- brute force


def test_two_variants_share_one_changeover_where_separate_setups_would_not_pay() -> None:
    # a changeover of 60 for one variant's 8 units (margin ~8 each) barely pays; shared, it does
    p = tiny([[4.0, 4.0], [3.0, 5.0]], ["A", "A"], changeover_cost=60.0)
    plan = solve(p, _opts())
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(best_profit(p), abs=1e-5)
    grouped = [c for c in plan.changeovers if len(c.variants) == 2]
    assert grouped, "the optimum rides both variants on one changeover"
    # the changeover is paid once per (family, line, period), its setups once per variant
    setups = sum(pl.setup for pl in plan.lines)
    assert plan.costs.setup == pytest.approx(5.0 * setups + 60.0 * len(plan.changeovers))
    assert plan.costs.family_setup == pytest.approx(60.0 * len(plan.changeovers))
    assert plan.kpis.family_setups == len(plan.changeovers)


@pytest.mark.parametrize(
    ("demand", "families", "kw"),
    [
        ([[4.0, 4.0], [3.0, 5.0]], ["A", "B"], {"changeover_cost": 60.0}),
        ([[6.0, 2.0], [1.0, 7.0], [3.0, 3.0]], ["A", "A", "B"], {"capacity": 9.0}),
        ([[5.0, 5.0], [5.0, 5.0]], ["A", "A"], {"capacity": 8.0, "changeover_hours": 3.0}),
        ([[5.0, 9.0], [4.0, 2.0]], ["A", "A"], {"capacity": 9.0, "overtime": 2.0}),
        ([[2.0, 3.0, 4.0], [3.0, 0.0, 5.0]], ["A", "A"], {"capacity": 12.0}),
        ([[3.0, 6.0], [4.0, 4.0]], ["A", "A"], {"second_line": True, "capacity": 10.0}),
    ],
)
def test_optimum_equals_the_brute_force(demand: list, families: list, kw: dict) -> None:
    p = tiny(demand, families, **kw)
    plan = solve(p, _opts())
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(best_profit(p), abs=1e-5)


def test_expected_profit_mode_optimum_equals_the_brute_force() -> None:
    scenarios = [
        [[2.0, 6.0], [5.0, 1.0]],
        [[4.0, 2.0], [1.0, 5.0]],
        [[3.0, 4.0], [3.0, 3.0]],
    ]
    mean = [[float(np.mean([s[j][t] for s in scenarios])) for t in range(2)] for j in range(2)]
    p = tiny(mean, ["A", "A"], capacity=10.0, scenarios=scenarios)
    plan = solve(p, _opts())
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(best_profit(p), abs=1e-5)
    assert plan.kpis.scenarios == 3


@st.composite
def tiny_families(draw: st.DrawFn) -> PlanningProblem:
    n = draw(st.integers(2, 3))
    k = 3 if n == 2 else 2  # at most 9 setup decisions
    demand = [[float(draw(st.integers(0, 8))) for _ in range(n)] for _ in range(k)]
    families = draw(st.sampled_from([["A", "A", "B"], ["A", "A", "A"], ["A", "B", "B"]]))[:k]
    scen = None
    if draw(st.booleans()) and n == 2:
        scen = [
            [[float(draw(st.integers(0, 8))) for _ in range(n)] for _ in range(k)]
            for _ in range(draw(st.integers(1, 3)))
        ]
        demand = [[float(np.mean([s[j][t] for s in scen])) for t in range(n)] for j in range(k)]
    return tiny(
        demand,
        families,
        capacity=float(draw(st.integers(4, 20))),
        changeover_cost=float(draw(st.integers(0, 80))),
        changeover_hours=float(draw(st.integers(0, 4))),
        setup_cost=float(draw(st.integers(0, 15))),
        setup_hours=draw(st.sampled_from([0.0, 0.5, 1.0])),
        holding=draw(st.sampled_from([0.2, 1.0, 3.0])),
        lost=draw(st.sampled_from([0.0, 2.0])),
        overtime=draw(st.sampled_from([0.0, 6.0])),
        scenarios=scen,
    )


@pytest.mark.parametrize("sweep", [False, True])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_families())
def test_random_tiny_family_problems_reach_the_brute_force_optimum(
    sweep: bool, p: PlanningProblem
) -> None:
    """``sweep``: the sweep of one-period sub-MIPs (big plans only) forced; it must leave a
    sound plan that HiGHS still takes to the optimum (in expected-profit mode it sweeps the
    certain model that starts the solve)."""
    with pytest.MonkeyPatch.context() as mp:
        if sweep:
            mp.setattr(pipeline, "SWEEP_MIN_FREE", 0)
        plan = solve(p, _opts())
    best = best_profit(p)
    assert best is not None
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(best, abs=1e-4)
    _check_family_plan(p, plan)


def test_the_period_sweep_runs_and_never_loses_its_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "SWEEP_MIN_FREE", 0)
    p = family_problem()
    plan = solve(p, _opts(time_limit_s=20, mip_rel_gap=0.0))
    sweep = re.search(r"period sweep: ([\d,.-]+) -> ([\d,.-]+)", plan.message)
    assert sweep, plan.message
    before, after = (float(g.replace(",", "")) for g in sweep.groups())
    assert after >= before
    assert plan.objective is not None and plan.objective >= after - 1.0  # HiGHS starts from it
    _check_family_plan(p, plan)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_families(), st.integers(0, 2**31 - 1))
def test_the_bounds_with_changeover_shares_stay_above_the_optimum(
    p: PlanningProblem, seed: int
) -> None:
    best = best_profit(p)
    assert best is not None
    d = prepare(p)
    bound = item_bound(d)
    assert bound is not None and bound >= best - 1e-6
    rel = Relaxation(d)
    rng = np.random.default_rng(seed)
    lam = rng.uniform(0, 10, size=rel.cap.shape) * (rng.random(rel.cap.shape) < 0.7)
    mu = np.zeros_like(rel.avail)
    assert rel.evaluate(lam, mu).value >= best - 1e-6


# --------------------------------------------------------------------------- plans of a size


def family_problem(variants: int = 24, periods: int = 6, lines: int = 2, seed: int = 5):
    return synthetic_problem(variants, periods, lines, seed=seed, families=4)


def _check_family_plan(p: PlanningProblem, plan: Plan) -> None:
    """Independent check: production only with a setup, a setup only with its family's
    changeover, hours within capacity + overtime, setup cost = own setups + changeovers."""
    tol = 1e-6
    lines = {ln.id: ln for ln in p.lines}
    routes = {(r.variant, r.line): r for r in p.routes}
    family = {v.id: v.family for v in p.variants}
    changeover = {(fs.family, fs.line): fs for fs in p.family_setups}
    made = {(c.family, c.line, c.period) for c in plan.changeovers}
    hours: dict[tuple[str, int], float] = {}
    setup_cost = 0.0
    for pl in plan.lines:
        r, ln = routes[pl.variant, pl.line], lines[pl.line]
        assert pl.quantity <= tol or pl.setup, f"{pl} produces without a setup"
        st_ = r.setup_hours if r.setup_hours is not None else ln.setup_hours
        sc = r.setup_cost if r.setup_cost is not None else ln.setup_cost
        hours[pl.line, pl.period] = (
            hours.get((pl.line, pl.period), 0.0)
            + r.hours_per_unit * pl.quantity
            + (st_ if pl.setup else 0.0)
        )
        setup_cost += sc if pl.setup else 0.0
        g = family[pl.variant]
        if pl.setup and (g, pl.line) in changeover:
            assert (g, pl.line, pl.period) in made, f"{pl} set up without its changeover"
    for c in plan.changeovers:
        fs = changeover[c.family, c.line]
        hours[c.line, c.period] = hours.get((c.line, c.period), 0.0) + fs.hours
        setup_cost += fs.cost
    for (ln, t), h in hours.items():
        assert h <= lines[ln].capacity_hours[t] + lines[ln].overtime_max_hours + 1e-4
    assert plan.costs.setup == pytest.approx(setup_cost, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("method", ["monolithic", "relax_and_fix", "fix_and_optimize"])
def test_every_method_makes_a_sound_plan_with_changeovers(method: str) -> None:
    p = family_problem()
    plan = solve(p, _opts(time_limit_s=20, mip_rel_gap=0.01, method=method))
    assert plan.objective is not None and plan.best_bound is not None
    assert plan.best_bound >= plan.objective - 1e-6 * abs(plan.objective)
    assert plan.changeovers
    _check_family_plan(p, plan)


def test_the_lagrangian_start_handles_changeovers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heuristics, "LAGRANGE_MIN_SETUPS", 0)
    p = family_problem()
    plan = solve(p, _opts(time_limit_s=20, mip_rel_gap=0.01))
    assert "Lagrangian" in plan.message
    assert plan.best_bound is not None and plan.objective is not None
    assert plan.best_bound >= plan.objective - 1e-6 * abs(plan.objective)
    _check_family_plan(p, plan)


def test_expected_profit_mode_with_changeovers_on_a_synthetic_plan() -> None:
    p = replace(family_problem(16, 4, 2), demand_mode="expected_profit", scenario_count=8)
    plan = solve(p, _opts(time_limit_s=20, mip_rel_gap=0.01))
    assert plan.objective is not None and plan.changeovers
    _check_family_plan(p, plan)


def test_modelling_changeovers_beats_charging_each_setup_the_whole_changeover() -> None:
    p = family_problem()
    joint = solve(p, _opts(time_limit_s=20, mip_rel_gap=0.005))
    separate = solve(separate_changeovers(p), _opts(time_limit_s=20, mip_rel_gap=0.005))
    assert joint.objective is not None and separate.objective is not None
    # the separate plan, paid under the true costs, earns at most what the joint plan earns
    assert true_profit(p, separate) <= joint.objective * (1 + 0.005)
    assert true_profit(p, joint) == pytest.approx(joint.objective, rel=1e-6)


def separate_changeovers(p: PlanningProblem) -> PlanningProblem:
    """The same problem with each variant setup charged its family's whole changeover."""
    lines = {ln.id: ln for ln in p.lines}
    family = {v.id: v.family for v in p.variants}
    fs = {(f.family, f.line): f for f in p.family_setups}
    routes = []
    for r in p.routes:
        ln = lines[r.line]
        extra = fs.get((family[r.variant], r.line))
        st_ = r.setup_hours if r.setup_hours is not None else ln.setup_hours
        sc = r.setup_cost if r.setup_cost is not None else ln.setup_cost
        if extra is not None:
            st_, sc = st_ + extra.hours, sc + extra.cost
        routes.append(replace(r, setup_hours=st_, setup_cost=sc))
    return replace(p, routes=tuple(routes), family_setups=())


def true_profit(p: PlanningProblem, plan: Plan) -> float:
    """The plan's profit with its setups paid under the true costs: own setups, and one
    changeover per (family, line, period) with a variant set up."""
    assert plan.objective is not None
    lines = {ln.id: ln for ln in p.lines}
    routes = {(r.variant, r.line): r for r in p.routes}
    family = {v.id: v.family for v in p.variants}
    fs = {(f.family, f.line): f for f in p.family_setups}
    own = 0.0
    used = set()
    for pl in plan.lines:
        if not pl.setup:
            continue
        r = routes[pl.variant, pl.line]
        own += r.setup_cost if r.setup_cost is not None else lines[pl.line].setup_cost
        if (family[pl.variant], pl.line) in fs:
            used.add((family[pl.variant], pl.line, pl.period))
    true_setup = own + sum(fs[g, ln].cost for g, ln, _ in used)
    return plan.objective + plan.costs.setup - true_setup


# --------------------------------------------------------------------------- explanation


def test_the_explanation_names_the_grouped_changeovers_and_their_saving() -> None:
    p = tiny([[4.0, 4.0], [3.0, 5.0], [5.0, 2.0]], ["A", "A", "A"], changeover_cost=60.0)
    plan = solve(p, _opts(explain=True))
    groups = plan.explanation.groupings
    assert groups, plan.explanation.notes
    top = groups[0]
    assert top.family == "A" and top.line == "L1"
    assert len(top.variants) >= 2
    assert top.saving == pytest.approx(60.0 * (len(top.variants) - 1))
    assert top.hours_saved == pytest.approx(2.0 * (len(top.variants) - 1))
    note = next(n for n in plan.explanation.notes if "family changeover" in n)
    assert f"{sum(g.saving for g in groups):,.0f}" in note


def test_no_family_setups_is_the_model_without_them() -> None:
    p = tiny([[4.0, 4.0], [3.0, 5.0]], ["A", "A"])
    none = replace(p, family_setups=())
    free = replace(p, family_setups=tuple(replace(f, hours=0.0, cost=0.0) for f in p.family_setups))
    a, b = solve(none, _opts()), solve(free, _opts())
    assert a.objective == pytest.approx(b.objective, abs=1e-6)
    assert a.changeovers == () and a.costs.family_setup == 0.0


def test_problem_with_families_survives_the_dict_round_trip() -> None:
    p = tiny([[4.0, 4.0], [3.0, 5.0]], ["A", "B"])
    assert PlanningProblem.from_dict(p.to_dict()) == p
    plan = solve(p, _opts(explain=True))
    assert Plan.from_dict(plan.to_dict()) == plan


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"line": "L9"}, "family_setups[0].line"),
        ({"family": ""}, "family_setups[0].family"),
        ({"cost": -1.0}, "family_setups[0].cost"),
        ({"hours": float("nan")}, "family_setups[0].hours"),
    ],
)
def test_bad_family_setups_name_the_field(change: dict, field: str) -> None:
    p = tiny([[4.0, 4.0], [3.0, 5.0]], ["A", "B"])
    bad = (replace(p.family_setups[0], **change), *p.family_setups[1:])
    with pytest.raises(ProblemInvalid) as err:
        replace(p, family_setups=bad).validate()
    assert err.value.field == field


def test_a_family_setup_given_twice_is_an_error() -> None:
    p = tiny([[4.0, 4.0], [3.0, 5.0]], ["A", "B"])
    with pytest.raises(ProblemInvalid) as err:
        replace(p, family_setups=(*p.family_setups, p.family_setups[0])).validate()
    assert err.value.field == "family_setups[2]"
    assert "duplicate" in err.value.reason


def test_a_changeover_longer_than_the_line_makes_the_family_idle() -> None:
    p = tiny([[4.0, 4.0], [3.0, 5.0]], ["A", "B"], capacity=6.0)
    long = tuple(replace(f, hours=7.0) if f.family == "A" else f for f in p.family_setups)
    plan = solve(replace(p, family_setups=long), _opts())
    assert all(pl.variant != "V0" or pl.quantity == 0 for pl in plan.lines)
    assert plan.objective == pytest.approx(best_profit(replace(p, family_setups=long)), abs=1e-5)
