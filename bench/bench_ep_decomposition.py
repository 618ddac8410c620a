"""The per-variant decomposition of expected-profit planning: a Lagrangian bound over capacity
with each variant's scenario problem solved exactly, and the plans it suggests.

    .venv/bin/python bench/bench_ep_decomposition.py [--problem FILE] [--variants 150] \\
        [--periods 8] [--lines 3] [--scenarios 32] [--seed 1] [--groups 32] [--lp-budget 40]

On ``replace(synthetic_problem(...), demand_mode="expected_profit", scenario_count)`` or a plan
dumped by ``bench/dump_plan_problem.py`` (``--problem``), it prints:

1. the LP of the model with each variant's scenarios merged into 8 groups, with rounds of (l,S)
   cuts (:func:`optimizer.core.heuristics.scenario_bound`'s calls), and its capacity and material
   duals;
2. ``L(0)`` and ``L(lam)`` at those duals: dualising the capacity rows (``lam >= 0``, overtime
   priced as ``OTMAX max(0, lam - OC)``) and the material rows in their cumulative form
   (``mu >= 0``, from the balance rows' duals) leaves one problem per variant: its setups,
   production, firm deliveries and, per scenario (``--groups`` of them, merged as for the bound),
   sales and stock. Each is solved as a MIP by HiGHS; its dual bound enters ``L``, so ``L`` is an
   upper bound of the expected profit whatever the multipliers. A family changeover's cost and
   hours are split equally over its members' setups (the rows ``y <= z`` dualised, as in
   :mod:`optimizer.core.lagrange`); the change penalty and the changeovers' hour bounds are left
   out (a relaxation: still a bound, a looser one); the frozen plan is kept;
3. the setups of the subproblems' solutions at ``lam``, priced over the scenarios (the LP with
   them fixed): the plan the relaxation suggests.

The load average is printed before and after. Not part of the solver: a measurement of how much
this bound and this plan are worth and what they cost (docs/benchmarks.md, 2026-12-06).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class VariantProblem:
    """Variant i's expected-profit problem with capacity and materials priced, for highspy.

    Columns: x[r,t], y[r,t] per route r of i, f[t], b[t], then sk[t,k], qk[t,k] per scenario.
    Maximise  sum_t,k w (P[t] + LC) qk - LC D[t] + PF f - BC b - w H sk (+ w V sk[T-1])
              - sum unit[r,t] x - sum setup[r,t] y,   w = 1/|K|
    subject to the scenario stock balances, the firm backlog, x <= BIGM y, x >= LOT y and the
    frozen plan."""

    def __init__(self, d: Any, i: str) -> None:
        import highspy

        inf = highspy.kHighsInf
        self.i = i
        n, nk = len(d.T), len(d.K)
        self.n = n
        self.routes = [ln for v, ln in d.R if v == i]
        nr = len(self.routes)
        self.cx, self.cy = 0, nr * n
        cf = self.cf = 2 * nr * n
        cb, cs = cf + n, cf + 2 * n
        cq = cs + n * nk
        ncol = cq + n * nk
        lo, hi, cost = np.zeros(ncol), np.full(ncol, inf), np.zeros(ncol)
        integer = np.zeros(ncol, dtype=np.int32)
        rows_lo: list[float] = []
        rows_hi: list[float] = []
        starts: list[int] = []
        idx: list[int] = []
        val: list[float] = []

        def row(entries: list[tuple[int, float]], a: float, b: float) -> None:
            starts.append(len(idx))
            idx.extend(j for j, _ in entries)
            val.extend(v for _, v in entries)
            rows_lo.append(a)
            rows_hi.append(b)

        for r, ln in enumerate(self.routes):
            for t in range(n):
                jx, jy = self.cx + r * n + t, self.cy + r * n + t
                big_m = d.big_m[i, ln, t]
                hi[jx], hi[jy], integer[jy] = big_m, (1.0 if big_m > 0 else 0.0), 1
                row([(jx, 1.0), (jy, -big_m)], -inf, 0.0)
                if d.min_lot[i, ln] > 0:
                    row([(jx, 1.0), (jy, -d.min_lot[i, ln])], 0.0, inf)
                if d.has_previous and t < d.frozen:
                    lo[jx] = hi[jx] = d.prev.get((i, ln, t), 0.0)
        w = 1.0 / nk
        lost, hold = d.lost_cost[i], d.hold[i]
        end = (d.end_value or {}).get(i, 0.0)
        self.const = 0.0
        for t in range(n):
            jf, jb = cf + t, cb + t
            cost[jf], cost[jb] = d.firm_price[i], -d.backlog_cost[i]
            if not d.allow_backlog:
                hi[jb] = 0.0
            late = [(jb - 1, -1.0)] if t else []
            row([(jb, 1.0), (jf, 1.0), *late], d.firm[i, t], d.firm[i, t])
            self.const -= lost * d.demand[i, t]
            for k in range(nk):
                js, jq = cs + t * nk + k, cq + t * nk + k
                hi[jq] = d.scenario_demand[i, t, k]
                cost[jq] = w * (d.price[i, t] + lost)
                cost[js] = -w * hold + (w * end if t == n - 1 else 0.0)
                entries = [(self.cx + r * n + t, 1.0) for r in range(nr)]
                entries += [(jq, -1.0), (jf, -1.0), (js, -1.0)]
                if t:
                    entries.append((cs + (t - 1) * nk + k, 1.0))
                rhs = -d.s0[i] if t == 0 else 0.0
                row(entries, rhs, rhs)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = ncol, len(rows_lo)
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lo, hi
        lp.row_lower_, lp.row_upper_ = np.array(rows_lo), np.array(rows_hi)
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.array([*starts, len(idx)], dtype=np.int32)
        lp.a_matrix_.index_ = np.array(idx, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(val)
        lp.integrality_ = [highspy.HighsVarType(int(v)) for v in integer]
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("mip_rel_gap", 0.0)
        self.h.passModel(lp)

    def solve(self, unit: np.ndarray, setup: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Costs per [route, period] of a unit and a setup: (HiGHS's dual bound, x, y)."""
        import highspy

        cols = np.arange(self.cx, self.cf, dtype=np.int32)
        self.h.changeColsCost(len(cols), cols, -np.concatenate([unit.ravel(), setup.ravel()]))
        self.h.run()
        status = self.h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"variant {self.i}: {self.h.modelStatusToString(status)}")
        info = self.h.getInfo()
        # without a route there is no integer column and HiGHS solves an LP
        bound = (info.mip_dual_bound if self.routes else info.objective_function_value) + self.const
        sol = np.array(self.h.getSolution().col_value)
        nr = len(self.routes)
        x = sol[self.cx : self.cy].reshape(nr, self.n)
        y = sol[self.cy : 2 * self.cy].reshape(nr, self.n)
        return float(bound), x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", type=Path, help="a plan dumped by bench/dump_plan_problem.py")
    ap.add_argument("--variants", type=int, default=150)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--lines", type=int, default=3)
    ap.add_argument("--scenarios", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--groups", type=int, default=0, help="subproblem scenario groups (0: all)")
    ap.add_argument("--lp-budget", type=float, default=40.0, help="seconds for the grouped LP")
    args = ap.parse_args()

    import pyomo.environ as pyo

    from optimizer.core.cuts import KINDS, cut_rounds
    from optimizer.core.data import prepare
    from optimizer.core.heuristics import (
        BOUND_ROUNDS,
        bound_groups,
        grouped_scenarios,
        price_pattern,
    )
    from optimizer.core.lagrange import Relaxation
    from optimizer.core.model import build_model
    from optimizer.core.problem import PlanningProblem
    from optimizer.core.setups import Setups
    from optimizer.core.solver import Session
    from optimizer.core.synthetic import synthetic_problem

    print(f"load average before: {os.getloadavg()}")
    if args.problem:
        problem = PlanningProblem.from_dict(json.loads(args.problem.read_text()))
        given = any(v.demand_scenarios for v in problem.variants)
        problem = replace(
            problem,
            demand_mode="expected_profit",
            scenario_count=problem.scenario_count if given else args.scenarios,
        )
    else:
        problem = replace(
            synthetic_problem(args.variants, args.periods, args.lines, seed=args.seed),
            demand_mode="expected_profit",
            scenario_count=args.scenarios,
        )
    problem.validate()
    d = prepare(problem)
    n = len(d.T)
    print(
        f"{len(d.I)} variants x {n} periods x {len(d.L)} lines, {len(d.R)} routes, "
        f"{len(d.K)} scenarios, {len(d.FL)} family changeovers, {len(d.M)} materials"
    )

    # 1. the grouped LP with cuts, and its duals (one more dual simplex solve after the cuts)
    t0 = time.perf_counter()
    groups = bound_groups(len(d.K))
    dg = grouped_scenarios(d, groups)
    mg = build_model(dg)
    sg = Session(mg)
    sg.translate()
    rounds = cut_rounds(sg, dg, args.lp_budget, rounds=BOUND_ROUNDS, kinds=KINDS)
    free = [v for v in mg.y.values() if not v.fixed] + [v for v in mg.z.values() if not v.fixed]
    for v in free:
        v.domain = pyo.UnitInterval
    lp = sg.run(args.lp_budget, 0.0, changed=free)
    cap_duals = sg.duals([mg.capacity])
    lam = np.abs([[cap_duals[mg.capacity[ln, t]] for t in d.T] for ln in d.L]).reshape(len(d.L), n)
    tail = np.zeros((len(d.M), n))
    if d.M:
        mat_duals = sg.duals([mg.material_balance])
        tail = np.abs([[mat_duals[mg.material_balance[m, t]] for t in d.T] for m in d.M])
    # the cumulative rows' multipliers, mu >= 0; a unit made in j pays sum_{t >= j} mu[m, t]
    nxt = np.concatenate([tail[:, 1:], np.zeros((len(d.M), 1))], axis=1)
    mu = np.maximum(tail - nxt, 0.0)
    print(
        f"{groups} scenario groups' LP {rounds.bounds[0]:,.0f} -> {lp.objective:,.0f} with "
        f"{rounds.cuts} (l,S) cuts, {time.perf_counter() - t0:.1f} s"
    )
    del mg, sg
    gc.collect()

    # 2. L at 0 and at the LP's duals
    if args.groups and len(d.K) % args.groups:
        ap.error(f"--groups must divide the scenario count, {len(d.K)}")
    ds = grouped_scenarios(d, args.groups) if 0 < args.groups < len(d.K) else d
    t0 = time.perf_counter()
    subs = [VariantProblem(ds, i) for i in d.I]
    built = time.perf_counter() - t0
    # the priced unit and setup costs per route and period (family changeovers as equal shares
    # of their members' setups) and the dualised rows' data: the Lagrangian's own
    rel = Relaxation(d)
    route = {r: k for k, r in enumerate(rel.routes)}

    def lagrangian(lam: np.ndarray, mu: np.ndarray) -> tuple[float, dict, float]:
        t0 = time.perf_counter()
        unit_all, setup_all = rel.costs(lam, mu)
        overtime = rel.ot_max[:, None] * np.maximum(0.0, lam - rel.ot_cost[:, None])
        total = float(np.sum(lam * rel.cap) + np.sum(overtime) + np.sum(mu * rel.avail))
        pattern: dict[tuple[str, str, int], float] = {}
        for sub in subs:
            rows = [route[sub.i, ln] for ln in sub.routes]
            value, _, y = sub.solve(unit_all[rows], setup_all[rows])
            total += value
            for r, ln in enumerate(sub.routes):
                for t in d.T:
                    pattern[sub.i, ln, t] = float(round(y[r, t]))
        return total, pattern, time.perf_counter() - t0

    zero, _, s0 = lagrangian(np.zeros_like(lam), np.zeros_like(mu))
    at_lp, pattern, s1 = lagrangian(lam, mu)
    label = f"{args.groups} scenario groups" if ds is not d else f"{len(d.K)} scenarios"
    print(f"per-variant MIPs ({label}): built in {built:.2f} s")
    print(f"L(0) = {zero:,.0f} ({s0:.1f} s); L(LP duals) = {at_lp:,.0f} ({s1:.1f} s)")

    # 3. the setups of the subproblems at the LP's duals, priced over the scenarios
    m = build_model(d)
    session = Session(m)
    session.translate()
    t0 = time.perf_counter()
    priced = price_pattern(session, Setups(m), pattern, time.perf_counter() + 300)
    print(
        f"their setups ({sum(pattern.values()):.0f}) priced over the scenarios: "
        f"{priced.objective:,.0f} ({time.perf_counter() - t0:.1f} s)"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
