"""Independent checks of a Plan against its PlanningProblem, from the problem's own fields.

Nothing here uses the optimizer's model or data preparation: the tests recompute every balance
and every cost from the dataclasses, so a bug in the model cannot hide in the checker.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from optimizer import Plan, PlanningProblem

TOL = 1e-5


def demand_at_service_level(p: PlanningProblem, variant_index: int, t: int) -> float:
    v = p.variants[variant_index]
    levels, values, q = p.quantiles, v.demand[t], v.service_level
    if q <= levels[0]:
        return values[0]
    if q >= levels[-1]:
        return values[-1]
    k = bisect.bisect_right(levels, q)
    w = (q - levels[k - 1]) / (levels[k] - levels[k - 1])
    return values[k - 1] + w * (values[k] - values[k - 1])


def close(a: float, b: float, tol: float = TOL) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def check_plan(p: PlanningProblem, plan: Plan) -> float:
    """Assert every hard constraint holds; return the recomputed profit (revenue - costs)."""
    n = len(p.periods)
    routes = {(r.variant, r.line): r for r in p.routes}
    lines = {ln.id: ln for ln in p.lines}
    made: dict[tuple[str, int], float] = defaultdict(float)
    hours: dict[tuple[str, int], float] = defaultdict(float)
    production_cost = setup_cost = material_cost = 0.0
    mat_use: dict[tuple[str, int], float] = defaultdict(float)
    bom = {v.id: v.bom for v in p.variants}
    mat_cost = {m.id: m.unit_cost for m in p.materials}
    for pl in plan.lines:
        assert (pl.variant, pl.line) in routes, f"{pl} runs on a line it is not eligible for"
        r = routes[pl.variant, pl.line]
        ln = lines[pl.line]
        assert pl.quantity >= -TOL
        assert pl.quantity <= TOL or pl.setup, f"{pl} produces without a setup"
        if pl.setup and r.min_lot > 0:
            assert pl.quantity >= r.min_lot - 1e-4, f"{pl} below the minimum lot {r.min_lot}"
        st = r.setup_hours if r.setup_hours is not None else ln.setup_hours
        sc = r.setup_cost if r.setup_cost is not None else ln.setup_cost
        made[pl.variant, pl.period] += pl.quantity
        hours[pl.line, pl.period] += r.hours_per_unit * pl.quantity + (st if pl.setup else 0.0)
        production_cost += r.unit_cost * pl.quantity
        setup_cost += sc if pl.setup else 0.0
        for use in bom[pl.variant]:
            mat_use[use.material, pl.period] += use.quantity * pl.quantity
            material_cost += use.quantity * mat_cost[use.material] * pl.quantity
    overtime_cost = 0.0
    for lp in plan.line_periods:
        ln = lines[lp.line]
        assert lp.overtime_hours <= ln.overtime_max_hours + TOL
        cap = ln.capacity_hours[lp.period] + lp.overtime_hours
        used = hours[lp.line, lp.period]
        assert used <= cap + 1e-4 * max(1.0, cap), (
            f"capacity of {lp.line}@{lp.period}: {used}>{cap}"
        )
        overtime_cost += ln.overtime_cost * lp.overtime_hours
    for m in p.materials:
        avail = m.stock
        for t in range(n):
            avail += (m.arrivals[t] if m.arrivals else 0.0) - mat_use[m.id, t]
            assert avail >= -1e-4 * max(1.0, m.stock), f"material {m.id} overdrawn in {t}"
    vp = {(x.variant, x.period): x for x in plan.variants}
    firm_due: dict[tuple[str, int], float] = defaultdict(float)
    firm_rev: dict[str, float] = defaultdict(float)
    firm_qty: dict[str, float] = defaultdict(float)
    for o in p.orders:
        firm_due[o.variant, o.due_period] += o.quantity
        price = (
            o.price
            if o.price is not None
            else next(v.price[o.due_period] for v in p.variants if v.id == o.variant)
        )
        firm_rev[o.variant] += price * o.quantity
        firm_qty[o.variant] += o.quantity
    revenue = holding = backlog_cost = lost_cost = 0.0
    for k, v in enumerate(p.variants):
        stock = v.initial_inventory
        late = 0.0
        pf = firm_rev[v.id] / firm_qty[v.id] if firm_qty[v.id] else 0.0
        for t in range(n):
            row = vp[v.id, t]
            demand = demand_at_service_level(p, k, t) if p.mode == "planning" else 0.0
            assert close(row.demand, demand)
            served = demand - row.lost_sales
            assert -TOL <= served <= demand + TOL, "forecast sales beyond demand"
            delivered = row.sales - served
            assert delivered >= -1e-4
            new_stock = stock + made[v.id, t] - row.sales
            assert close(new_stock, row.inventory, 1e-4), f"inventory balance {v.id}@{t}"
            assert row.inventory >= -TOL
            late = late + firm_due[v.id, t] - delivered
            assert close(late, row.backlog, 1e-4), f"firm backlog {v.id}@{t}: {late}"
            if not p.allow_backlog:
                assert row.backlog <= 1e-4, f"firm order of {v.id} late in {t}"
            stock = row.inventory
            revenue += v.price[t] * served + pf * delivered
            holding += v.holding_cost * row.inventory
            backlog_cost += v.backlog_cost * row.backlog
            lost_cost += v.lost_sale_cost * row.lost_sales
    change = 0.0
    if p.change_penalty > 0 and (p.previous_plan or p.frozen_periods):
        prev: dict[tuple[str, str, int], float] = defaultdict(float)
        for x in p.previous_plan:
            prev[x.variant, x.line, x.period] += x.quantity
        now = {(pl.variant, pl.line, pl.period): pl.quantity for pl in plan.lines}
        for r in p.routes:
            for t in range(p.frozen_periods, n):
                key = (r.variant, r.line, t)
                change += p.change_penalty * abs(now.get(key, 0.0) - prev[key])
    for pl in plan.lines:
        if pl.period < p.frozen_periods:
            assert close(pl.quantity, 0.0, 1e-4) or p.previous_plan, "frozen period changed"
    costs = (
        change
        + production_cost
        + setup_cost
        + material_cost
        + overtime_cost
        + holding
        + backlog_cost
        + lost_cost
    )
    return revenue - costs
