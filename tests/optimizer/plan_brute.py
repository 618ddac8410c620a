"""Brute force for tiny problems: enumerate every setup pattern, solve each LP with scipy.

An independent formulation (dense matrices written here from the problem's fields, solved by
scipy's linprog), so the optimizer's Pyomo model is checked against something it shares no code
with. Only for problems with at most ~8 (route, period) setup choices.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
from plan_checks import demand_at_service_level
from scipy.optimize import linprog

from optimizer import PlanningProblem


def best_profit(p: PlanningProblem) -> float | None:
    """max revenue - costs over all setup patterns; None when every pattern is infeasible."""
    n = len(p.periods)
    R = [(r.variant, r.line) for r in p.routes]
    if len(R) * n > 10:
        raise ValueError("too big for brute force")
    V = [v.id for v in p.variants]
    L = [ln.id for ln in p.lines]
    cols: dict[tuple, int] = {}

    def col(*key: object) -> int:
        return cols.setdefault(key, len(cols))

    for r in R:
        for t in range(n):
            col("x", r, t)
    for i in V:
        for t in range(n):
            for name in ("s", "q", "u", "f", "b"):
                col(name, i, t)
    for ln in L:
        for t in range(n):
            col("o", ln, t)
    nv = len(cols)
    routes = {(r.variant, r.line): r for r in p.routes}
    lines = {ln.id: ln for ln in p.lines}
    variants = {v.id: v for v in p.variants}
    firm = defaultdict(float)
    rev, qty = defaultdict(float), defaultdict(float)
    for o in p.orders:
        firm[o.variant, o.due_period] += o.quantity
        price = o.price if o.price is not None else variants[o.variant].price[o.due_period]
        rev[o.variant] += price * o.quantity
        qty[o.variant] += o.quantity
    c = np.zeros(nv)  # linprog minimises: cost - revenue
    for (i, ln), r in routes.items():
        unit = r.unit_cost + sum(
            u.quantity * next(m.unit_cost for m in p.materials if m.id == u.material)
            for u in variants[i].bom
        )
        for t in range(n):
            c[cols["x", (i, ln), t]] = unit
    for i in V:
        v = variants[i]
        pf = rev[i] / qty[i] if qty[i] else 0.0
        for t in range(n):
            c[cols["s", i, t]] = v.holding_cost
            c[cols["q", i, t]] = -v.price[t]
            c[cols["u", i, t]] = v.lost_sale_cost
            c[cols["f", i, t]] = -pf
            c[cols["b", i, t]] = v.backlog_cost
    for ln in L:
        for t in range(n):
            c[cols["o", ln, t]] = lines[ln].overtime_cost
    best: float | None = None
    for pattern in itertools.product((0, 1), repeat=len(R) * n):
        y = {(R[j // n], j % n): pattern[j] for j in range(len(R) * n)}
        a_eq, b_eq, a_ub, b_ub = [], [], [], []
        bounds = [(0, None)] * nv
        fixed = 0.0
        for (r, t), on in y.items():
            rt = routes[r]
            ln = lines[r[1]]
            sc = rt.setup_cost if rt.setup_cost is not None else ln.setup_cost
            fixed += sc * on
            bounds[cols["x", r, t]] = (rt.min_lot * on, None if on else 0.0)
        for k, i in enumerate(V):
            v = variants[i]
            for t in range(n):
                row = np.zeros(nv)  # s[t-1] + sum x - q - f - s[t] = 0
                rhs = -v.initial_inventory if t == 0 else 0.0
                if t > 0:
                    row[cols["s", i, t - 1]] = 1
                for r in R:
                    if r[0] == i:
                        row[cols["x", r, t]] = 1
                row[cols["q", i, t]] -= 1
                row[cols["f", i, t]] -= 1
                row[cols["s", i, t]] -= 1
                a_eq.append(row)
                b_eq.append(rhs)
                d = demand_at_service_level(p, k, t) if p.mode == "planning" else 0.0
                row = np.zeros(nv)
                row[cols["q", i, t]] = 1
                row[cols["u", i, t]] = 1
                a_eq.append(row)
                b_eq.append(d)
                row = np.zeros(nv)  # b[t] - b[t-1] + f[t] = F[t]
                row[cols["b", i, t]] = 1
                if t > 0:
                    row[cols["b", i, t - 1]] = -1
                row[cols["f", i, t]] = 1
                a_eq.append(row)
                b_eq.append(firm[i, t])
                if not p.allow_backlog:
                    bounds[cols["b", i, t]] = (0.0, 0.0)
        for ln in L:
            for t in range(n):
                row = np.zeros(nv)
                setup_hours = 0.0
                for r in R:
                    if r[1] == ln:
                        rt = routes[r]
                        row[cols["x", r, t]] = rt.hours_per_unit
                        st = rt.setup_hours if rt.setup_hours is not None else lines[ln].setup_hours
                        setup_hours += st * y[r, t]
                row[cols["o", ln, t]] = -1
                a_ub.append(row)
                b_ub.append(lines[ln].capacity_hours[t] - setup_hours)
                bounds[cols["o", ln, t]] = (0.0, lines[ln].overtime_max_hours)
        for m in p.materials:
            for t in range(n):  # cumulative use <= stock + cumulative arrivals
                row = np.zeros(nv)
                for i, ln in R:
                    use = sum(u.quantity for u in variants[i].bom if u.material == m.id)
                    for k in range(t + 1):
                        row[cols["x", (i, ln), k]] += use
                a_ub.append(row)
                b_ub.append(m.stock + sum(m.arrivals[: t + 1]) if m.arrivals else m.stock)
        res = linprog(
            c,
            A_ub=np.array(a_ub) if a_ub else None,
            b_ub=np.array(b_ub) if b_ub else None,
            A_eq=np.array(a_eq),
            b_eq=np.array(b_eq),
            bounds=bounds,
            method="highs",
        )
        if res.status == 0:
            profit = -(res.fun + fixed)
            if best is None or profit > best:
                best = profit
    return best
