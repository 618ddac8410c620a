"""Brute force for tiny problems with family changeovers: every pattern of variant setups, the
family changeovers they need (one per family, line and period with a setup on), and the LP over
the rest solved by scipy's linprog on dense matrices written here from the problem's fields.

Shares no code with the optimizer's model. Covers what the family tests use: lines with capacity,
overtime and setup figures, routes, family setups, holding and lost-sale costs, initial stock,
and demand either as one quantile level (quantile mode) or as given scenarios (expected-profit
mode, all equally likely, the stock left at the end worth its end value). No materials, firm
orders, minimum lots or previous plan.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import linprog

from optimizer import PlanningProblem

MAX_SETUPS = 10


def _scenarios(p: PlanningProblem) -> list[list[list[float]]]:
    """demand[k][i][t] per scenario k (one scenario in quantile mode)."""
    if p.demand_mode == "expected_profit":
        assert all(v.demand_scenarios for v in p.variants), "give the scenarios"
        return [[list(v.demand_scenarios[k]) for v in p.variants] for k in range(p.scenario_count)]
    assert p.quantiles == (0.5,) and all(v.service_level == 0.5 for v in p.variants)
    return [[[row[0] for row in v.demand] for v in p.variants]]


def pattern_profit(p: PlanningProblem, on: dict[tuple[str, str, int], int]) -> float | None:
    """Best (expected) profit with the variant setups ``on``; None when infeasible."""
    assert not p.materials and not p.orders and not p.previous_plan
    n = len(p.periods)
    demand = _scenarios(p)
    K = len(demand)
    w = 1.0 / K
    lines = {ln.id: ln for ln in p.lines}
    family = {v.id: v.family for v in p.variants}
    changeover = {(fs.family, fs.line): fs for fs in p.family_setups}
    cols: dict[tuple, int] = {}
    for r in p.routes:
        for t in range(n):
            cols["x", r.variant, r.line, t] = len(cols)
    for ln in p.lines:
        for t in range(n):
            cols["o", ln.id, t] = len(cols)
    for k in range(K):
        for v in p.variants:
            for t in range(n):
                cols["q", k, v.id, t] = len(cols)
                cols["s", k, v.id, t] = len(cols)
    c = np.zeros(len(cols))  # linprog minimises: costs - revenue
    bounds: list[tuple[float, float | None]] = [(0.0, None)] * len(cols)
    const = 0.0  # fixed part of the profit
    used_changeovers: set[tuple[str, str, int]] = set()
    setup_hours = {(ln.id, t): 0.0 for ln in p.lines for t in range(n)}
    for r in p.routes:
        ln = lines[r.line]
        sc = r.setup_cost if r.setup_cost is not None else ln.setup_cost
        st = r.setup_hours if r.setup_hours is not None else ln.setup_hours
        for t in range(n):
            c[cols["x", r.variant, r.line, t]] = r.unit_cost
            if on[r.variant, r.line, t]:
                const -= sc
                setup_hours[r.line, t] += st
                if (family[r.variant], r.line) in changeover:
                    used_changeovers.add((family[r.variant], r.line, t))
            else:
                bounds[cols["x", r.variant, r.line, t]] = (0.0, 0.0)
    for g, ln, t in used_changeovers:
        const -= changeover[g, ln].cost
        setup_hours[ln, t] += changeover[g, ln].hours
    for ln in p.lines:
        for t in range(n):
            c[cols["o", ln.id, t]] = ln.overtime_cost
            bounds[cols["o", ln.id, t]] = (0.0, ln.overtime_max_hours)
    for k in range(K):
        for j, v in enumerate(p.variants):
            for t in range(n):
                d = demand[k][j][t]
                c[cols["q", k, v.id, t]] = -w * (v.price[t] + v.lost_sale_cost)
                c[cols["s", k, v.id, t]] = w * v.holding_cost
                const -= w * v.lost_sale_cost * d
                bounds[cols["q", k, v.id, t]] = (0.0, d)
            if p.demand_mode == "expected_profit":  # stock left is worth its cost (capped)
                cheapest = min(r.unit_cost for r in p.routes if r.variant == v.id)
                worth = min(p.end_stock_value * cheapest, min(v.price) + v.lost_sale_cost)
                c[cols["s", k, v.id, n - 1]] -= w * worth
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    for k in range(K):
        for v in p.variants:
            for t in range(n):  # s[t-1] + sum_l x = q + s[t]
                row = np.zeros(len(cols))
                for r in p.routes:
                    if r.variant == v.id:
                        row[cols["x", v.id, r.line, t]] = 1.0
                row[cols["q", k, v.id, t]] = -1.0
                row[cols["s", k, v.id, t]] = -1.0
                if t > 0:
                    row[cols["s", k, v.id, t - 1]] = 1.0
                a_eq.append(row)
                b_eq.append(-v.initial_inventory if t == 0 else 0.0)
    for ln in p.lines:
        for t in range(n):  # production hours - overtime <= capacity - setup hours
            row = np.zeros(len(cols))
            for r in p.routes:
                if r.line == ln.id:
                    row[cols["x", r.variant, ln.id, t]] = r.hours_per_unit
            row[cols["o", ln.id, t]] = -1.0
            a_ub.append(row)
            b_ub.append(ln.capacity_hours[t] - setup_hours[ln.id, t])
    res = linprog(
        c,
        A_ub=np.array(a_ub),
        b_ub=np.array(b_ub),
        A_eq=np.array(a_eq),
        b_eq=np.array(b_eq),
        bounds=bounds,
        method="highs",
    )
    if res.status != 0:
        return None
    return float(-res.fun + const)


def best_profit(p: PlanningProblem) -> float | None:
    """The optimum over every pattern of variant setups; None when none is feasible."""
    keys = [(r.variant, r.line, t) for r in p.routes for t in range(len(p.periods))]
    if len(keys) > MAX_SETUPS:
        raise ValueError("too big for brute force")
    best: float | None = None
    for bits in itertools.product((0, 1), repeat=len(keys)):
        value = pattern_profit(p, dict(zip(keys, bits, strict=True)))
        if value is not None and (best is None or value > best):
            best = value
    return best
