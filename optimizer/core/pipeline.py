"""solve(problem, options) -> Plan: validate, build, solve, read, explain -- separate steps.

An infeasible request is diagnosed (elastic relaxation, :mod:`optimizer.core.explain`) and raised as
:class:`Infeasible`; a time limit returns the best plan found with its gap.
"""

from __future__ import annotations

import gc
import time
from dataclasses import replace
from typing import Any

import pyomo.environ as pyo

from optimizer.core.cuts import KINDS, cut_rounds
from optimizer.core.data import ModelData, certain_demand_data, prepare
from optimizer.core.errors import Infeasible
from optimizer.core.explain import diagnose, explain
from optimizer.core.heuristics import (
    BOUND_SHARE,
    CERTAINTY_SHARE,
    LAGRANGE_SHARE,
    SWEEP_MIN_FREE,
    SWEEP_SHARE,
    best_bound,
    lagrangian_improve,
    pattern_start,
    period_sweep,
    price_pattern,
    run_heuristic,
    scenario_bound,
)
from optimizer.core.model import build_model
from optimizer.core.moves import BOUND_FIRST_S, MOVE_SHARE, setup_moves
from optimizer.core.problem import (
    AUTO_RELAX_AND_FIX_SETUPS,
    AUTO_SECONDS_PER_1K_SETUPS,
    CostBreakdown,
    Explanation,
    FamilyChangeover,
    Kpis,
    LinePeriod,
    Method,
    Plan,
    PlanLine,
    PlanningProblem,
    SolveOptions,
    VariantPeriod,
)
from optimizer.core.rounding import Rounding, round_to_units
from optimizer.core.setups import Setups
from optimizer.core.solver import RunResult, Session, relative_gap
from optimizer.core.start import item_bound

EPS = 1e-6
#: Share of the time limit the root cut loop may take (quantile mode with family changeovers).
CUT_SHARE = 0.2
#: Rounds of separation at most (each one LP, warm-started from the last).
CUT_ROUNDS = 3


def solve(problem: PlanningProblem, options: SolveOptions) -> Plan:
    t_start = time.perf_counter()
    problem.validate()
    options.validate()
    d = prepare(problem)
    options = replace(options, method=choose_method(d, options))
    if options.method == "monolithic":
        m, session, result, build_s = _monolithic(d, options)
    else:
        m, session, result, build_s = run_heuristic(d, options)
    if result.status == "infeasible":
        raise Infeasible(diagnose(d, options))
    if not result.has_solution:
        return Plan(
            status=result.status,
            objective=None,
            best_bound=result.bound,
            gap=None,
            method=options.method,
            mode=problem.mode,
            sense="min" if d.clsp else "max",
            build_time_s=build_s,
            translate_time_s=result.translate_s,
            solve_time_s=result.solve_s,
            total_time_s=time.perf_counter() - t_start,
            message=f"no plan found ({result.message})",
        )
    plan = read_plan(m, d, problem, result, options, build_s)
    if options.explain:
        remaining = max(1.0, options.time_limit_s * 0.25)
        explanation, shadow = explain(m, d, session, plan, remaining)
        plan = _with_explanation(plan, explanation, shadow)
    if options.whole_units and not d.clsp:
        plan = _whole_units(m, d, problem, session, plan, result, options, build_s)
    total = time.perf_counter() - t_start
    return _replace(plan, total_time_s=total)


def choose_method(d: ModelData, options: SolveOptions) -> Method:
    """``auto``: the monolithic MIP (with its DP, Lagrangian and certainty starts), which gave
    the best plan of the three methods in every side-by-side run on a quiet machine
    (docs/benchmarks.md); relax-and-fix when the problem has more than
    ``AUTO_RELAX_AND_FIX_SETUPS`` free setup decisions and the time limit leaves less than
    ``AUTO_SECONDS_PER_1K_SETUPS`` seconds per thousand of them, where the monolithic MIP
    returned a poor incumbent and relax-and-fix degraded gracefully. Expected-profit mode is
    always monolithic: its start (the mean-demand plan, :func:`_expected_profit_start`) is a
    plan within seconds, while relax-and-fix's first window over every scenario found none in
    7.2 s on the ``small`` preset's own plan (150 x 8 x 3, 32 scenarios: the time limit a 20 s
    ``ReplanBatch`` budget leaves a replica's first solve; the monolithic solve returned a plan
    there). Other methods as asked."""
    if options.method != "auto":
        return options.method
    if d.clsp or d.K:
        return "monolithic"
    free = sum(1 for key in d.big_m if d.big_m[key] > 0)
    budget = AUTO_SECONDS_PER_1K_SETUPS * free / 1000.0
    if free > AUTO_RELAX_AND_FIX_SETUPS and options.time_limit_s < budget:
        return "relax_and_fix"
    return "monolithic"


def _whole_units(
    m: pyo.ConcreteModel,
    d: ModelData,
    problem: PlanningProblem,
    session: Session,
    plan: Plan,
    result: RunResult,
    options: SolveOptions,
    build_s: float,
) -> Plan:
    """The plan in whole units (:mod:`optimizer.core.rounding`), its explanation kept."""
    limit = max(1.0, options.time_limit_s * 0.1)
    rounding: Rounding = round_to_units(m, session, limit, frozen=d.frozen)
    if not rounding.rounded and rounding.how != "kept":
        return plan
    if rounding.objective is not None:
        gap = relative_gap(rounding.objective, result.bound)
        result = replace(result, objective=rounding.objective, gap=gap)
    result = replace(result, message=result.message + rounding.note)
    rounded = read_plan(m, d, problem, result, options, build_s)
    kpis = replace(
        rounded.kpis, rounding_cost=max(0.0, rounding.cost), rounded_quantities=rounding.rounded
    )
    return replace(
        rounded,
        kpis=kpis,
        explanation=plan.explanation,
        line_periods=tuple(
            replace(new, shadow_price=old.shadow_price)
            for new, old in zip(rounded.line_periods, plan.line_periods, strict=True)
        ),
    )


def _monolithic(
    d: ModelData, options: SolveOptions
) -> tuple[pyo.ConcreteModel, Session, RunResult, float]:
    """HiGHS on the whole model. In planning mode it starts from a plan, passed as MIP start, so a
    time limit always returns at least that plan. Quantile mode: the setups of
    :func:`optimizer.core.start.dp_pattern` with the LP over them (at most 40% of the time
    limit), improved on big plans by the Lagrangian start (:mod:`optimizer.core.lagrange`, at
    most 30%), after a root cut loop when there are family changeovers; the bound is the
    tightest of HiGHS's, the root LP's, the Lagrangian's and
    :func:`optimizer.core.start.item_bound`. On plans with family changeovers and more than
    ``SWEEP_MIN_FREE`` free setups the start is then improved one period at a time
    (:func:`optimizer.core.heuristics.period_sweep`, ``SWEEP_SHARE`` of the time left) before
    HiGHS gets the whole model. Expected-profit mode: :func:`_expected_profit_start` (its
    certain model is solved by this function, sweep included). A start already within the gap
    asked for is returned as it is."""
    t0 = time.perf_counter()
    m = build_model(d)
    build_s = time.perf_counter() - t0
    session = Session(m, options.threads)
    if d.clsp:
        return m, session, session.run(options.time_limit_s, options.mip_rel_gap), build_s
    session.translate()
    deadline = time.perf_counter() + options.time_limit_s
    setups = Setups(m)
    if d.K:
        warm, bound, note = _expected_profit_start(session, setups, d, options, deadline)
    else:
        warm, bound, note = _quantile_start(session, setups, d, options)
    free = [v for vs in setups.by_t.values() for v in vs]
    proven = relative_gap(warm.objective, bound)
    if (
        not d.K
        and d.FL
        and warm.has_solution
        and len(free) > SWEEP_MIN_FREE
        and (proven is None or proven > options.mip_rel_gap)
    ):
        t_sweep = time.perf_counter()
        sweep_deadline = t_sweep + SWEEP_SHARE * max(0.0, deadline - t_sweep)
        before = warm.objective
        warm = period_sweep(session, setups, len(d.T), options, sweep_deadline, warm, True, bound)
        note += (
            f"; period sweep: {before:,.0f} -> {warm.objective:,.0f}, "
            f"{time.perf_counter() - t_sweep:.1f} s"
        )
    for v in free:
        v.unfix()
        v.domain = pyo.Binary
    proven = relative_gap(warm.objective, bound)
    if warm.has_solution and proven is not None and proven <= options.mip_rel_gap:
        # the start is already within the gap asked for: HiGHS would only re-prove it
        session.update_variables(free)
        final = replace(warm, status="optimal", bound=bound, gap=proven, message="start" + note)
        final = replace(final, translate_s=session.translate_total, solve_s=session.solve_total)
        return m, session, final, build_s
    left = max(0.05, deadline - time.perf_counter())
    # Session.run reports the worth of the values it loads (HiGHS 1.16.0 can misread a MIP
    # start and return the start as its better plan: see Session._retry_without_start)
    res = session.run(left, options.mip_rel_gap, start=True, changed=free)
    bound = best_bound(True, res.bound, bound)
    if res.has_solution or not warm.has_solution:
        final = replace(
            res, bound=bound, gap=relative_gap(res.objective, bound), message=res.message + note
        )
    else:  # HiGHS found nothing in time: the start plan (its values are still loaded)
        final = replace(warm, status="feasible", bound=bound, message=f"start plan ({res.message})")
        final = replace(final, gap=relative_gap(final.objective, bound))
    final = replace(final, translate_s=session.translate_total, solve_s=session.solve_total)
    return m, session, final, build_s


def _quantile_start(
    session: Session, setups: Setups, d: ModelData, options: SolveOptions
) -> tuple[RunResult, float | None, str]:
    """Quantile mode: the root cut loop when there are family changeovers (a bound, and the cuts
    stay for HiGHS), the DP start, the Lagrangian on big plans: (start, bound, note)."""
    root_bound, note = None, ""
    if d.FL:  # the LP relaxation with (l,S) cuts
        rounds = cut_rounds(
            session, d, CUT_SHARE * options.time_limit_s, rounds=CUT_ROUNDS, kinds=KINDS
        )
        root_bound = rounds.bound
        if rounds.bounds:
            note = (
                f"; root: LP {rounds.bounds[0]:,.0f} -> {rounds.bounds[-1]:,.0f} with "
                f"{rounds.cuts} (l,S) cuts, {rounds.seconds:.1f} s"
            )
    warm, bound, more = _dp_lagrangian_start(session, setups, d, options)
    return warm, best_bound(True, bound, root_bound), note + more


def _dp_lagrangian_start(
    session: Session, setups: Setups, d: ModelData, options: SolveOptions
) -> tuple[RunResult, float | None, str]:
    """The DP start (at most 40% of the time limit), then the Lagrangian's capacity- and
    material-priced patterns and its bound (optimizer/core/lagrange.py): (start, bound, note)."""
    warm = pattern_start(session, setups, d, time.perf_counter() + 0.4 * options.time_limit_s)
    lag_deadline = time.perf_counter() + LAGRANGE_SHARE * options.time_limit_s
    return lagrangian_improve(session, setups, d, lag_deadline, warm, options)


def _expected_profit_start(
    session: Session, setups: Setups, d: ModelData, options: SolveOptions, deadline: float
) -> tuple[RunResult, float | None, str]:
    """Expected-profit mode (docs/formulation.md, "Solve strategy in expected-profit mode"):
    (start, bound, note).

    1. The plan of the scenarios' per-cell median demand as if certain: the quantile-mode solve
       of that model (its root cuts with families, DP and Lagrangian starts, HiGHS) with
       ``CERTAINTY_SHARE`` of the time limit. Its setups fixed in the scenario model, the LP
       over them is the start. HiGHS's search
       on the scenario model barely moves any start in a minute, and the certain model is 1/|K|
       of its size. The median, not the mean: with intermittent demand the mean plans setups
       most scenarios do not pay for (the ``small`` preset's 4-week plan at 10 s: 21,681
       from the median against 16,197 from the mean). If it finds no plan: the DP start and
       the Lagrangian's, as in quantile mode.
    2. Setup moves (:func:`optimizer.core.moves.setup_moves`): a local search over the start's
       setups guided by the duals of the LP over them, each move priced by that LP and kept
       only when better, within ``MOVE_SHARE`` of the time limit. With intermittent demand the
       median's plan leaves out setups the scenarios pay for (the ``small`` preset's 4-week plan
       at 10 s: 28,871 -> 32,813 in 3 s).
    3. The bound: :func:`optimizer.core.heuristics.scenario_bound` (the LP with (l,S) cuts of
       the model with each variant's scenarios merged into groups) by ``BOUND_SHARE`` of the
       time limit, never past it; with families the scenario model's own LP did not finish in
       the root cut loop's 12 s of a 60 s limit.
    HiGHS gets the rest; nothing past ``deadline``. Measured with the mean's start on
    ``synthetic_problem(150, 8, 3, seed=1, families=6)``, 32
    scenarios, 60 s, load 3-5: 2,091,423 with bound 2,789,368 (gap 33%) before, 2,323,403 with
    bound 2,418,098 (4.1%) so; without families the same plan (2,337,531 against 2,337,165)
    and a bound as tight or tighter (HiGHS's own, 2,383,616-2,403,468 over runs of both)."""
    t0 = time.perf_counter()
    limit = options.time_limit_s
    bound = item_bound(d)
    warm: RunResult | None = None
    note = ""
    certain = certain_demand_data(d, "median")
    m_c, _, res_c, _ = _monolithic(certain, replace(options, time_limit_s=CERTAINTY_SHARE * limit))
    if res_c.has_solution:
        pattern = {k: float(round(v.value or 0.0)) for k, v in m_c.y.items()}
        warm = price_pattern(session, setups, pattern, deadline)
        worth = f"{warm.objective:,.0f}" if warm.has_solution else "no plan in time"
        note = (
            f"; start: median demand as if certain ({res_c.objective:,.0f}, gap "
            f"{100 * (res_c.gap or 0.0):.1f}%) priced {worth}, {time.perf_counter() - t0:.1f} s"
        )
    # a Pyomo model holds reference cycles: without a collection the certain model (and below
    # the grouped one) stayed alive under HiGHS's search on the scenario model, whose peak
    # memory rose from 632 to 759 MiB on 150 x 8 x 3 with 32 scenarios (639 MiB before)
    del m_c
    gc.collect()
    if warm is None or not warm.has_solution:
        note += "; start: DP pattern"
        warm, lag_bound, more = _dp_lagrangian_start(session, setups, d, options)
        bound = best_bound(True, bound, lag_bound)
        note += more
    proven = relative_gap(warm.objective, bound)
    if warm.has_solution and proven is not None and proven <= options.mip_rel_gap:
        return warm, bound, note
    bound_first = deadline - time.perf_counter() >= BOUND_FIRST_S
    grouped = None
    for phase in ("bound", "moves") if bound_first else ("moves", "bound"):
        if phase == "moves":
            warm, more = setup_moves(
                session, setups, d, min(deadline, time.perf_counter() + MOVE_SHARE * limit), warm
            )
        else:
            grouped, more = scenario_bound(
                d, options, min(deadline, time.perf_counter() + BOUND_SHARE * limit)
            )
            gc.collect()
        note += more
    return warm, best_bound(True, bound, grouped), note


def _replace(obj: Any, **changes: Any) -> Any:
    return replace(obj, **changes)


def _with_explanation(
    plan: Plan, explanation: Explanation, shadow: dict[tuple[str, int], float]
) -> Plan:
    lps = tuple(
        _replace(lp, shadow_price=shadow.get((lp.line, lp.period), 0.0)) for lp in plan.line_periods
    )
    return _replace(plan, explanation=explanation, line_periods=lps)


def _v(var: pyo.Var) -> float:
    """A variable's value to a millionth: HiGHS's tolerances left a frozen 25 units at
    24.999999999999996 in a whole-unit plan."""
    val = var.value
    return 0.0 if val is None or abs(val) < EPS else round(float(val), 6)


def read_plan(
    m: pyo.ConcreteModel,
    d: ModelData,
    problem: PlanningProblem,
    result: RunResult,
    options: SolveOptions,
    build_s: float,
) -> Plan:
    """Plain-data Plan from the solved model (values rounded to 1e-6)."""
    lines = []
    setups = 0
    for i, ln, t in m.RT:
        qty = _v(m.x[i, ln, t])
        setup = (m.y[i, ln, t].value or 0.0) > 0.5
        setups += setup
        if qty > EPS or setup:
            lines.append(PlanLine(variant=i, line=ln, period=t, quantity=qty, setup=setup))
    variants = []
    for i in d.I:
        for t in d.T:
            variants.append(
                VariantPeriod(
                    variant=i,
                    period=t,
                    demand=d.demand[i, t],
                    firm_due=d.firm[i, t],
                    sales=_v(m.q[i, t]) + _v(m.f[i, t]),
                    inventory=_v(m.s[i, t]),
                    backlog=_v(m.b[i, t]),
                    lost_sales=_v(m.u[i, t]),
                )
            )
    changeovers = []
    changeover_hours: dict[tuple[str, int], float] = {}
    for g, ln in d.FL:
        for t in d.T:
            if (m.z[g, ln, t].value or 0.0) <= 0.5:
                continue
            riders = tuple(
                i
                for i in d.members[g, ln]  # type: ignore[index]
                if (m.y[i, ln, t].value or 0.0) > 0.5
            )
            hours, cost = d.fst[g, ln], d.fsc[g, ln]  # type: ignore[index]
            changeovers.append(FamilyChangeover(g, ln, t, riders, hours, cost))
            changeover_hours[ln, t] = changeover_hours.get((ln, t), 0.0) + hours
    line_periods = []
    utils = []
    for ln in d.L:
        for t in d.T:
            used = sum(
                d.a[i, ln] * _v(m.x[i, ln, t]) + d.st[i, ln] * round(m.y[i, ln, t].value or 0.0)
                for i in m.ON_LINE[ln]
            )
            used += changeover_hours.get((ln, t), 0.0)
            avail = d.cap[ln, t] + d.ot_max[ln]
            util = used / avail if avail > 0 else 0.0
            utils.append(util)
            line_periods.append(
                LinePeriod(
                    line=ln,
                    period=t,
                    hours_used=used,
                    capacity_hours=d.cap[ln, t],
                    overtime_hours=_v(m.o[ln, t]),
                    utilisation=util,
                    shadow_price=0.0,
                )
            )
    costs = CostBreakdown(
        revenue=float(pyo.value(m.revenue)),
        production=float(pyo.value(m.production_cost)),
        setup=float(pyo.value(m.setup_cost)),
        holding=float(pyo.value(m.holding_cost)),
        backlog=float(pyo.value(m.backlog_cost)),
        lost_sales=float(pyo.value(m.lost_sale_cost)),
        overtime=float(pyo.value(m.overtime_cost)),
        material=float(pyo.value(m.material_cost)),
        change_penalty=float(pyo.value(m.change_cost)),
        family_setup=float(pyo.value(m.family_setup_cost)),
        end_stock_value=float(pyo.value(m.end_stock_value)),
    )
    demand_total = sum(d.demand.values())
    firm_total = sum(d.firm.values())
    lost = sum(vp.lost_sales for vp in variants)
    late_units = 0.0  # units that turn late: growth of each variant's backlog
    for i in d.I:
        before = 0.0
        for t in d.T:
            now = _v(m.b[i, t])
            late_units += max(0.0, now - before)
            before = now
    p10, p90 = _profit_spread(m, d) if d.K else (None, None)
    kpis = Kpis(
        fill_rate=min(1.0, max(0.0, 1.0 - lost / demand_total)) if demand_total > 0 else 1.0,
        on_time_firm_rate=(1.0 - late_units / max(firm_total, EPS) if firm_total > 0 else 1.0),
        total_production=sum(pl.quantity for pl in lines),
        setups=int(setups),
        mean_utilisation=sum(utils) / len(utils) if utils else 0.0,
        max_utilisation=max(utils) if utils else 0.0,
        scenarios=len(d.K),
        profit_p10=p10,
        profit_p90=p90,
        family_setups=len(changeovers),
        expected_leftover=sum(_v(m.s[i, d.T[-1]]) for i in d.I),
    )
    objective = result.objective
    return Plan(
        status=result.status,
        objective=objective,
        best_bound=result.bound,
        gap=result.gap,
        method=options.method,
        mode=problem.mode,
        sense="min" if d.clsp else "max",
        build_time_s=build_s,
        translate_time_s=result.translate_s,
        solve_time_s=result.solve_s,
        lines=tuple(lines),
        variants=tuple(variants),
        line_periods=tuple(line_periods),
        costs=costs,
        kpis=kpis,
        message=result.message,
        changeovers=tuple(changeovers),
    )


def scenario_profits(m: pyo.ConcreteModel, d: ModelData) -> list[float]:
    """The plan's profit in each demand scenario at the model's values: what is decided once
    (production, setups, overtime, materials, firm deliveries) plus the scenario's sales, stock
    and lost sales, and the stock it leaves at cost. Their mean is the expected-profit
    objective."""
    decided = float(
        pyo.value(
            sum(m.PF[i] * m.f[i, t] for i, t in m.VARIANTS * m.PERIODS)
            - m.production_cost
            - m.setup_cost
            - m.backlog_cost
            - m.overtime_cost
            - m.material_cost
            - m.change_cost
        )
    )
    worth = d.end_value or {}
    last = d.T[-1]
    profits = []
    for k in d.K:
        followed = 0.0
        for i in d.I:
            for t in d.T:
                sold = m.qk[i, t, k].value or 0.0
                stock = m.sk[i, t, k].value or 0.0
                lost = d.scenario_demand[i, t, k] - sold  # type: ignore[index]
                followed += d.price[i, t] * sold - d.hold[i] * stock - d.lost_cost[i] * lost
            followed += worth.get(i, 0.0) * (m.sk[i, last, k].value or 0.0)
        profits.append(decided + followed)
    return profits


def _profit_spread(m: pyo.ConcreteModel, d: ModelData) -> tuple[float, float]:
    """10th and 90th percentile of the plan's profit over the demand scenarios."""
    ordered = sorted(scenario_profits(m, d))
    return _percentile(ordered, 0.1), _percentile(ordered, 0.9)


def _percentile(ordered: list[float], q: float) -> float:
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo]))
