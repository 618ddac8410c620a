"""Relax-and-fix and fix-and-optimize: the standard lot-sizing heuristics for big plans.

Both work on the one model that :func:`optimizer.core.model.build_model` builds, through one
persistent HiGHS session; between sub-problems only the setups ``y`` change (domain, fixing), so
HiGHS gets bound and integrality changes, never a new model.

- relax_and_fix: periods are taken in windows of ``W`` with ``overlap``; the window's setups are
  binary, the later ones relaxed to [0, 1], the earlier ones fixed. After each window the setups
  of its first ``W - overlap`` periods are fixed. The first window's dual bound is a valid bound
  of the whole problem (only integrality was dropped), so the plan carries an honest gap.
- pattern_start: the setups of :func:`optimizer.core.start.dp_pattern` (single-variant dynamic
  programme on one line per variant) fixed and the LP solved: the start of fix-and-optimize in
  planning mode, where lost sales keep any pattern feasible; its bound is
  :func:`optimizer.core.start.item_bound`.
- lp_round (CLSP mode, or when the pattern's LP fails): the LP relaxation, its setups rounded
  up at thresholds 0.05, 0.2, 0, 0.5, each pattern's LP solved with the setups fixed; the
  best is the start (and the LP value the bound).
- fix_and_optimize: starting from pattern_start's (planning) or lp_round's (CLSP) plan,
  neighbourhoods (period windows, or variant groups when a window frees too many setups) are
  re-optimised with the other setups fixed and the incumbent as MIP start; a result is kept
  only when better, so the plan only improves.
- price_pattern, grouped_scenarios, scenario_bound: expected-profit mode's start (another
  model's setups priced over the scenarios) and bound (the LP of each variant's scenarios merged
  into groups, with (l,S) cuts), used by the monolithic solve (:mod:`optimizer.core.pipeline`).
The time limit is shared out over the sub-problems; each gets the time left over the windows left.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pyomo.environ as pyo

from optimizer.core.cuts import KINDS, cut_rounds
from optimizer.core.data import ModelData
from optimizer.core.lagrange import lagrangian_start, pattern_plan
from optimizer.core.model import build_model
from optimizer.core.problem import SolveOptions
from optimizer.core.setups import Setups
from optimizer.core.solver import RunResult, Session, relative_gap
from optimizer.core.start import dp_pattern, item_bound

EPS = 1e-6
#: Share of the time limit the Lagrangian start may use (planning mode, after the DP pattern).
LAGRANGE_SHARE = 0.3
#: Fewest free setups for which the Lagrangian start runs; below, HiGHS alone does better.
LAGRANGE_MIN_SETUPS = 2000


def _windows(n: int, options: SolveOptions) -> tuple[int, int]:
    w = options.window or max(2, min(n, math.ceil(n / 6)))
    ov = options.overlap if options.overlap else max(0, w // 4)
    return w, min(ov, w - 1)


def _better(a: float | None, b: float | None, maximise: bool) -> bool:
    if a is None:
        return False
    if b is None:
        return True
    return a > b + EPS if maximise else a < b - EPS


def relax_and_fix(
    session: Session, setups: Setups, n: int, options: SolveOptions, deadline: float
) -> tuple[RunResult, float | None]:
    """Returns (final LP result with every setup fixed, a valid bound of the whole problem)."""
    w, ov = _windows(n, options)
    step = max(1, w - ov)
    starts = list(range(0, n, step))
    while len(starts) > 1 and starts[-2] + w >= n:  # the last window already covers the end
        starts.pop()
    setups.relax(range(w, n))
    bound: float | None = None
    reserve = 0.05 * max(0.0, deadline - time.perf_counter())  # for the final LP
    gap = max(options.mip_rel_gap, 1e-3)
    for k, a in enumerate(starts):
        last = k == len(starts) - 1
        end = n if last else min(n, a + w)
        setups.binary(range(a, end))
        left = max(0.5, deadline - time.perf_counter() - reserve)
        budget = left / (len(starts) - k)
        res = session.run(budget, gap, changed=setups.take())
        if k == 0 and res.bound is not None:
            bound = res.bound
        if not res.has_solution:
            # no integer point in time: relax the window, take the LP and round setups up
            setups.relax(range(a, end))
            lp = session.run(
                max(1.0, deadline - time.perf_counter()), gap, changed=setups.take(), lp="ipm_raw"
            )
            if not lp.has_solution:
                return lp, bound
            for t in range(a, end):
                for v in setups.by_t.get(t, []):
                    v.set_value(1.0 if (v.value or 0.0) > EPS else 0.0)
        setups.fix(range(a, end if last else min(end, a + step)))
    final = session.run(
        max(1.0, deadline - time.perf_counter()), 0.0, changed=setups.take(), lp="ipm"
    )
    return final, bound


def cyclic_pattern(m: pyo.ConcreteModel, cycle: int = 3) -> dict[int, float]:
    """A setup every ``cycle`` periods on each variant's first eligible line, staggered over
    the variants so the lines' setup hours spread evenly: the start when the LP is too big."""
    first: dict[str, str] = {}
    for i, ln in m.ROUTES:
        first.setdefault(i, ln)
    order = {i: k for k, i in enumerate(m.VARIANTS)}
    return {
        id(v): 1.0 if ln == first[i] and (t - order[i]) % cycle == 0 else 0.0
        for (i, ln, t), v in m.y.items()
        if not v.fixed
    }


def pattern_start(session: Session, setups: Setups, d: ModelData, deadline: float) -> RunResult:
    """The plan of :func:`optimizer.core.start.dp_pattern`: its setups fixed, the LP solved (lost
    sales absorb what does not fit, so it is feasible); the model's values end as that plan.
    Every free setup is set, also one an earlier start left fixed (expected-profit mode falls
    back here after pricing another pattern)."""
    m = session.model
    pattern = dp_pattern(d)
    values = {id(v): pattern.get(k, 0.0) for k, v in m.y.items() if id(v) in setups.ids}
    setups.fix(range(len(d.T)), values)
    left = max(1.0, deadline - time.perf_counter())
    return session.run(left, 0.0, changed=setups.take(), lp="ipm")


def lagrangian_improve(
    session: Session,
    setups: Setups,
    d: ModelData,
    deadline: float,
    start: RunResult,
    options: SolveOptions,
) -> tuple[RunResult, float | None, str]:
    """The Lagrangian start (:func:`optimizer.core.lagrange.lagrangian_start`) from ``start``, an
    all-setups-fixed plan whose values the model holds, on plans with at least
    LAGRANGE_MIN_SETUPS free setups: (best plan, its bound, a note for the plan's message).
    Smaller plans, or a start without a plan, come back as they are with ``item_bound`` (the
    Lagrangian's bound at zero multipliers) and no note."""
    if not start.has_solution or len(setups.ids) < LAGRANGE_MIN_SETUPS:
        return start, item_bound(d), ""
    lag = lagrangian_start(session, setups, d, deadline, start, gap=options.mip_rel_gap)
    note = (
        f"; start: Lagrangian, {lag.iterations} iterations, {lag.patterns} pattern LPs, "
        f"{lag.seconds:.1f} s"
    )
    # no iteration before the deadline: no L, but L(0, 0) = item_bound holds all the same
    bound = lag.bound if lag.bound is not None else item_bound(d)
    return lag.result, bound, note


#: Expected-profit mode: the time limit of the median-demand model's own solve, as a share of the
#: solve's (its model's build and translation come on top, ~2 s on 150 x 8 x 3). Half: on the
#: ``small`` preset's 4-week plan (intermittent demand, the mean above the median) at 10 s the
#: expected profit was 16,197 from the mean's plan (35%), 12,073 from the median's (20%) and then
#: the mean's (15%), the better kept, 20,268 from the median's at 35% and 21,681 at 50%, where the
#: P50 quantile plan's setups priced earn 22,323: the certain solve needs the time more than a
#: second candidate does. On its 8-week plan at 60 s: 41,705 (mean 41,225); on
#: ``synthetic_problem(150, 8, 3)`` 2,337,547 at a 1.87% gap (mean 2,337,531, 2.12%). 80% of
#: 10 s (8 s) raised the preset's own 4-week plan from 31,315 to 31,900-32,292 in sample, but in
#: the simulator (run 12, docs/benchmarks.md) tailorline's realised profit stayed where it was
#: (334,235 against 333,823) and the oracle's, the same planner on the true distribution, fell
#: from 292,666 to 212,656: half stays.
CERTAINTY_SHARE = 0.5
#: Expected-profit mode: the demand scenarios of each variant are merged into at most this many
#: groups for the bound (the largest divisor of the scenario count up to it: equal groups).
BOUND_GROUPS = 8
#: Share of the time limit the grouped model's LP and (l,S) cut rounds may take.
BOUND_SHARE = 0.45
#: Rounds of (l,S) cuts on the grouped model at most (each a dual simplex LP from the last basis).
BOUND_ROUNDS = 3


def price_pattern(
    session: Session, setups: Setups, pattern: dict[tuple[str, str, int], float], deadline: float
) -> RunResult:
    """The scenario model's LP over a setup pattern (keyed like ``y``, e.g. another model's
    plan), the setups it leaves idle dropped (:func:`optimizer.core.lagrange.pattern_plan`);
    the model's values end as that plan."""
    m = session.model
    values = {id(v): pattern.get(k, 0.0) for k, v in m.y.items() if id(v) in setups.ids}
    return pattern_plan(session, setups, values, deadline)[0]


def grouped_scenarios(d: ModelData, groups: int) -> ModelData:
    """The expected-profit data with each variant's scenarios sorted by their total demand and
    merged, in that order, into ``groups`` equal groups, each replaced by its mean path.

    A relaxation (Jensen): fix any plan of the full model; averaging each variant's sales and
    stock over a group's scenarios gives sales and stock that meet the group's mean demand path
    with the same expected sales, stock and profit, and nothing else in the model (``BIGM``
    included, taken from the full scenario set) changes. So the grouped model's LP and its cut
    LPs bound the expected profit. The second stage decomposes per variant once production is
    fixed, so each variant is grouped on its own. ``groups`` must divide the scenario count."""
    assert d.scenario_demand is not None and len(d.K) % groups == 0
    grouped: dict[tuple[str, int, int], float] = {}
    for i in d.I:
        paths = np.array([[d.scenario_demand[i, t, k] for t in d.T] for k in d.K])
        order = np.argsort(paths.sum(axis=1), kind="stable")
        for g, members in enumerate(np.array_split(order, groups)):
            mean = paths[members].mean(axis=0)
            for t in d.T:
                grouped[i, t, g] = float(mean[t])
    return replace(d, K=tuple(range(groups)), scenario_demand=grouped)


def bound_groups(scenarios: int) -> int:
    """The largest divisor of ``scenarios`` up to ``BOUND_GROUPS``."""
    return max(g for g in range(1, min(BOUND_GROUPS, scenarios) + 1) if scenarios % g == 0)


def scenario_bound(
    d: ModelData, options: SolveOptions, deadline: float
) -> tuple[float | None, str]:
    """Expected-profit mode: a bound from the LP of :func:`grouped_scenarios`'s model (a model
    of its own) with rounds of (l,S) cuts of every kind (:func:`optimizer.core.cuts.cut_rounds`)
    by ``deadline``, and a note for the plan's message. Measured on the 150 x 8 x 3 synthetic
    plan with 6 families and 32 scenarios (single thread, load ~3): the scenario LP took 50-60 s
    (25 s at load 1), 8 groups' LP 6.5 s and 0.3% looser (2,424,962 against 2,417,388); after
    one round of cuts 2,418,098 (12 s more)."""
    assert d.scenario_demand is not None
    groups = bound_groups(len(d.K))
    if groups < 2:  # the mean demand alone: the mean-demand model's own bound is that
        return None, ""
    t0 = time.perf_counter()
    dg = grouped_scenarios(d, groups) if groups < len(d.K) else d
    session = Session(build_model(dg), options.threads)
    session.translate()
    rounds = cut_rounds(
        session, dg, deadline - time.perf_counter(), rounds=BOUND_ROUNDS, kinds=KINDS
    )
    if not rounds.bounds:
        return None, ""
    note = (
        f"; bound: {groups} scenario groups' LP {rounds.bounds[0]:,.0f} -> "
        f"{rounds.bounds[-1]:,.0f} with {rounds.cuts} (l,S) cuts, "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return rounds.bound, note


def best_bound(maximise: bool, *bounds: float | None) -> float | None:
    """The tightest of several valid bounds (None where there is none)."""
    known = [b for b in bounds if b is not None]
    if not known:
        return None
    return min(known) if maximise else max(known)


def lp_round(
    session: Session, setups: Setups, n: int, deadline: float, maximise: bool
) -> tuple[RunResult, float | None]:
    """The LP relaxation, then its setups rounded up at a few thresholds, each pattern fixed and
    the LP re-solved (lost sales and backlog keep it feasible); returns the best all-fixed plan
    (its values loaded) and the LP bound. When the LP relaxation does not finish within half the
    time, the start is the cyclic pattern's plan instead (and there is no bound)."""
    every = range(n)
    setups.relax(every)
    half = max(1.0, (deadline - time.perf_counter()) / 2)
    lp = session.run(half, 0.0, changed=setups.take(), lp="ipm_raw")
    if not lp.has_solution:
        setups.fix(every, cyclic_pattern(session.model))
        left = max(1.0, deadline - time.perf_counter())
        return session.run(left, 0.0, changed=setups.take(), lp="ipm"), None
    y_lp = setups.snapshot()
    best: RunResult | None = None
    best_pattern: dict[int, float] = {}
    last: dict[int, float] = {}
    for theta in (0.05, 0.2, EPS, 0.5):
        if best is not None and time.perf_counter() > deadline:
            break
        pattern = {k: 1.0 if v > theta else 0.0 for k, v in y_lp.items()}
        if pattern == last:
            continue
        setups.fix(every, pattern)
        last = pattern
        left = max(1.0, deadline - time.perf_counter())
        res = session.run(left, 0.0, changed=setups.take(), lp="ipm")
        if res.has_solution and _better(res.objective, best.objective if best else None, maximise):
            best, best_pattern = res, pattern
    if best is None:
        return replace(lp, status="no_solution", objective=None), lp.objective
    if best_pattern != last:  # load the best pattern's values back
        setups.fix(every, best_pattern)
        left = max(1.0, deadline - time.perf_counter())
        best = session.run(left, 0.0, changed=setups.take(), lp="ipm")
    return best, lp.objective


#: Most setups one fix-and-optimize sub-MIP frees; bigger period windows are split by variant.
MAX_FREE = 1500
#: Least time given to one fix-and-optimize sub-MIP (seconds), time left permitting.
MIN_SUB_S = 8.0
#: Free setups above which the monolithic solve of a plan with family changeovers sweeps the
#: periods one sub-MIP at a time (:func:`period_sweep`) before HiGHS gets the whole model.
#: Without changeovers HiGHS did as well alone: on ``synthetic_problem(150, 8, 3)`` the swept
#: certain model ended at a 1.0% gap where HiGHS had proved 0.0%. The ``small`` preset's certain
#: 8-week model (2,464 free setups): HiGHS on the whole model left its start at 73,994 in 20 s
#: and on a 3-period window (924 free) in 10 s; one period's sub-MIP (308 free) came within 1%
#: of its own bound in 3 s, and a pass of 8 reached 84,436 (docs/benchmarks.md, "session 29").
#: The 4-week model (1,232 free) is left to HiGHS, which took its DP start from 5,513 to
#: 38,198 in 5 s.
SWEEP_MIN_FREE = MAX_FREE
#: Least seconds one period's sub-MIP of the sweep gets, time left permitting.
SWEEP_MIN_S = 1.0
#: Share of the time left after the start that the sweep may take; HiGHS then gets the whole
#: model from the swept plan (its search may still move it, and its bound counts).
SWEEP_SHARE = 0.8


def _neighbourhoods(setups: Setups, n: int, options: SolveOptions) -> list[list[pyo.Var]]:
    """Period windows of 1.5 W periods (half overlapping) when one holds at most MAX_FREE free
    setups; else groups of variants over the whole horizon (product decomposition), the
    variants with the most lost revenue first, each group at most MAX_FREE setups."""
    w, _ = _windows(n, options)
    w = max(2, min(n, w + w // 2))
    step = max(1, w // 2)
    starts = list(range(0, max(1, n - w + 1), step))
    if starts[-1] + w < n:
        starts.append(n - w)
    windows = [[v for t in range(a, a + w) for v in setups.by_t.get(t, [])] for a in starts]
    if max(len(vs) for vs in windows) <= MAX_FREE:
        return windows
    m = setups.model
    of: dict[str, list[pyo.Var]] = {}
    for (i, _ln, _t), v in m.y.items():
        if id(v) in setups.ids:
            of.setdefault(i, []).append(v)
    lost = {i: sum((m.u[i, t].value or 0.0) * m.P[i, t] for t in m.PERIODS) for i in of}
    groups: list[list[pyo.Var]] = [[]]
    for i in sorted(of, key=lambda i: -lost[i]):
        if groups[-1] and len(groups[-1]) + len(of[i]) > MAX_FREE:
            groups.append([])
        groups[-1].extend(of[i])
    # a group's setups come free with the family changeovers they need
    changeover_of = {id(y): z_id for z_id, ys in setups.members.items() for y in ys}
    z_by_id = {id(v): v for vs in setups.by_t.values() for v in vs if id(v) in setups.members}
    for group in groups:
        needed = {changeover_of[id(y)] for y in group if id(y) in changeover_of}
        group.extend(z_by_id[k] for k in sorted(needed))
    return groups


def period_sweep(
    session: Session,
    setups: Setups,
    n: int,
    options: SolveOptions,
    deadline: float,
    incumbent: RunResult,
    maximise: bool,
    bound: float | None = None,
) -> RunResult:
    """One pass of :func:`fix_and_optimize` over one-period neighbourhoods (a period's setups
    and family changeovers), first period to last, each with an equal share of the time left
    (at least ``SWEEP_MIN_S``), stopped once the plan is within the gap asked for of ``bound``:
    small sub-MIPs HiGHS closes in seconds where the whole model's search does not move its
    start. HiGHS on the whole model follows (it may move the plan further, and proves). The
    model's values end as the best plan's."""
    hoods = [vs for t in range(n) if (vs := setups.by_t.get(t, []))]
    if not hoods:
        return incumbent
    return fix_and_optimize(
        session,
        setups,
        n,
        options,
        deadline,
        incumbent,
        maximise,
        hoods=hoods,
        min_sub_s=SWEEP_MIN_S,
        passes=1,
        bound=bound,
    )


def fix_and_optimize(
    session: Session,
    setups: Setups,
    n: int,
    options: SolveOptions,
    deadline: float,
    incumbent: RunResult,
    maximise: bool,
    hoods: list[list[pyo.Var]] | None = None,
    min_sub_s: float = MIN_SUB_S,
    passes: int | None = None,
    bound: float | None = None,
) -> RunResult:
    """Improve an all-setups-fixed incumbent neighbourhood by neighbourhood (its setups binary,
    the others fixed, the incumbent as MIP start) until a whole pass improves nothing, ``passes``
    passes are done, the plan is within the gap asked for of ``bound``, or the time is up.
    ``hoods``: the neighbourhoods (default: :func:`_neighbourhoods`), each sub-MIP at least
    ``min_sub_s`` seconds. The model's values end as the best plan's."""
    hoods = hoods if hoods is not None else _neighbourhoods(setups, n, options)
    # the gap of a sub-MIP is relative to the whole plan's profit, which a neighbourhood moves
    # by far less than 1%: with the plan's gap a sub-MIP stops at once with its start
    sub_gap = min(options.mip_rel_gap, 1e-5)
    best = incumbent

    def proven() -> bool:
        gap = relative_gap(best.objective, bound)
        return gap is not None and gap <= options.mip_rel_gap

    improved = True
    done = 0
    while improved and time.perf_counter() < deadline - 0.5 and done != passes:
        improved = False
        done += 1
        for idx, vs in enumerate(hoods):
            left = deadline - time.perf_counter()
            if left < 0.5 or proven():
                break
            saved = setups.snapshot()
            setups.binary_vars(vs)
            # at least MIN_SUB_S each: a sub-MIP cut short finds nothing, a few finished ones pay
            budget = min(left, max(min_sub_s, left / max(2, len(hoods) - idx)))
            res = session.run(budget, sub_gap, start=True, changed=setups.take())
            if res.has_solution and _better(res.objective, best.objective, maximise):
                best = res
                improved = True
                setups.fix_vars(vs)
                continue
            setups.fix_vars(vs, saved)
            if not res.has_solution or not _better(best.objective, res.objective, maximise):
                continue  # nothing loaded (the incumbent's values stand) or as good a plan
            # a worse plan was loaded: restore the incumbent's values with the LP over its setups
            lp = session.run(
                max(0.5, deadline - time.perf_counter()), 0.0, changed=setups.take(), lp="ipm"
            )
            if lp.has_solution and not _better(best.objective, lp.objective, maximise):
                best = lp
    # the plan's continuous values: the LP over the best setups (never worse than the MIP's)
    lp = session.run(max(1.0, deadline - time.perf_counter()), 0.0, changed=setups.take(), lp="ipm")
    if lp.has_solution and not _better(best.objective, lp.objective, maximise):
        best = lp
    return best


def run_heuristic(
    d: ModelData, options: SolveOptions
) -> tuple[pyo.ConcreteModel, Session, RunResult, float]:
    t0 = time.perf_counter()
    m = build_model(d)
    build_s = time.perf_counter() - t0
    session = Session(m, options.threads)
    session.translate()
    start = time.perf_counter()
    deadline = start + options.time_limit_s
    n = len(d.T)
    setups = Setups(m)
    maximise = not d.clsp
    note = ""
    if options.method == "fix_and_optimize":
        first = start + 0.6 * options.time_limit_s  # big LPs are slow: give the start room
        if d.clsp:  # demand must be met: start from the LP relaxation rounded
            result, bound = lp_round(session, setups, n, first, maximise)
        else:  # lost sales allowed: the dynamic-programming pattern, then the Lagrangian's
            lag_deadline = start + LAGRANGE_SHARE * options.time_limit_s
            result, bound, note = lagrangian_improve(
                session, setups, d, lag_deadline, pattern_start(session, setups, d, first), options
            )
            if not result.has_solution:  # e.g. minimum lots beyond the materials: LP rounding
                result, lp_bound = lp_round(session, setups, n, first, maximise)
                bound = best_bound(maximise, bound, lp_bound)
        if result.has_solution:
            result = fix_and_optimize(session, setups, n, options, deadline, result, maximise)
    else:
        result, bound = relax_and_fix(session, setups, n, options, deadline)
        bound = best_bound(maximise, bound, item_bound(d))
    # leave every setup free and binary again, holding the plan's values (explanation fixes them)
    every = [v for vs in setups.by_t.values() for v in vs]
    for v in every:
        v.unfix()
        v.domain = pyo.Binary
    session.update_variables(every)
    final = replace(
        result,
        status="feasible" if result.has_solution else result.status,
        bound=bound,
        gap=relative_gap(result.objective, bound),
        translate_s=session.translate_total,
        solve_s=session.solve_total,
        message=result.message + note,
    )
    return m, session, final, build_s
