"""A setup pattern to start from, computed without any LP: one line per variant and, per variant,
the lot periods of the single-item uncapacitated problem with lost sales (a Wagner-Whitin
dynamic programme on profit).

Each variant gets the eligible line with the best unit margin whose hours (production at the
planned demand plus a setup every ~3 periods) still fit within 90% of the line's regular hours,
the most valuable variants first; then, on that line, ``V(j)`` = the best profit of periods
j..n-1 with nothing in stock at j is

    V(n) = 0
    V(j) = max( -LC D_j + V(j+1),                                   lose period j's demand
                max_{k>j} [ -SC + sum_{τ=j}^{k-1} max(g_τ - H (τ-j), -LC) D_τ ] + V(k) )

(a setup in j serves j..k-1, each period's demand carried τ-j periods or lost, whichever pays;
g = price - unit cost - material cost). Initial stock first covers the earliest demand. The
pattern ignores capacity, materials and minimum lots: the LP over it (setups fixed) repairs
what does not fit by losing sales, which keeps it feasible. It is the warm start of the
monolithic solve and the start of fix-and-optimize when the LP relaxation is too big.

With family changeovers the variants of a family on its line are planned together first: the
same recursion on the family's summed demand (gain, holding and lost-sale cost weighted by
demand) with the changeover plus every member's own setup as the setup cost gives the family's
changeover periods; then each member's own recursion may set up only in those periods. The
bounds (``item_bound`` and the Lagrangian's) charge each variant setup an equal share of its
family's changeover instead (docs/formulation.md, "Family setups").
"""

from __future__ import annotations

from optimizer.core.data import ModelData, material_unit_cost

Key3 = tuple[str, str, int]

#: Longest carry considered (periods); holding cost makes longer ones rare and the DP is O(n K).
MAX_CARRY = 12


def _line_choice(d: ModelData) -> dict[str, str]:
    n = len(d.T)
    mat = material_unit_cost(d)
    need = {i: sum(d.demand[i, t] + d.firm[i, t] for t in d.T) for i in d.I}
    routes: dict[str, list[str]] = {}
    for i, ln in d.R:
        if any(d.big_m[i, ln, t] > 0 for t in d.T):
            routes.setdefault(i, []).append(ln)
    free = {ln: 0.9 * sum(d.cap[ln, t] for t in d.T) for ln in d.L}
    value = {i: sum(d.price[i, t] * d.demand[i, t] for t in d.T) for i in d.I}
    choice: dict[str, str] = {}
    for i in sorted(routes, key=lambda i: -value[i]):
        ranked = sorted(routes[i], key=lambda ln: d.unit_cost[i, ln] + mat[i])
        hours = {
            ln: d.a[i, ln] * need[i] + (d.st[i, ln] + d.route_share(i, ln)[1]) * n / 3
            for ln in ranked
        }
        fits = [ln for ln in ranked if hours[ln] <= free[ln]]
        ln = fits[0] if fits else max(ranked, key=lambda ln: free[ln] - hours[ln])
        free[ln] -= hours[ln]
        choice[i] = ln
    return choice


def _item_dp(
    dem: list[float],
    gain: dict[str, list[float]],
    setup_cost: dict[str, float],
    hold: float,
    lost: float,
    can_setup: dict[str, list[bool]],
    max_carry: int,
) -> tuple[float, list[tuple[int, str]]]:
    """Best profit of one variant over its forecast demand ``dem`` (the recursion above, each lot
    on the best of ``gain``'s lines) and its lots as (period, line)."""
    n = len(dem)
    value = [0.0] * (n + 1)
    nxt: list[tuple[int, str] | None] = [None] * (n + 1)
    for j in range(n - 1, -1, -1):
        best, arg = -lost * dem[j] + value[j + 1], None
        for ln, g in gain.items():
            if not can_setup[ln][j]:
                continue
            lot = -setup_cost[ln]
            for k in range(j + 1, min(n, j + max_carry) + 1):
                tau = k - 1
                lot += max(g[tau] - hold * (tau - j), -lost) * dem[tau]
                if lot + value[k] > best:
                    best, arg = lot + value[k], (k, ln)
        value[j], nxt[j] = best, arg
    lots: list[tuple[int, str]] = []
    j = 0
    while j < n:
        step = nxt[j]
        if step is None:
            j += 1
            continue
        lots.append((j, step[1]))
        j = step[0]
    return value[0], lots


def net_demand(d: ModelData, i: str, firm: bool) -> tuple[list[float], list[float], float]:
    """Demand per period left after the initial stock covers the earliest periods, the sale
    price per period and the revenue of what the stock covers. ``firm`` counts firm orders in."""
    stock = d.s0[i]
    dem: list[float] = []
    price: list[float] = []
    revenue = 0.0
    for t in d.T:
        fq = d.firm[i, t] if firm else 0.0
        want = d.demand[i, t] + fq
        p = (
            d.price[i, t]
            if want <= 0
            else ((d.price[i, t] * d.demand[i, t] + d.firm_price[i] * fq) / want)
        )
        use = min(stock, want)
        stock -= use
        revenue += use * p
        dem.append(want - use)
        price.append(p)
    return dem, price, revenue


def bound_demand(d: ModelData, i: str) -> tuple[list[float], list[float], float]:
    """What the per-variant bounds (``item_bound``, optimizer.core.lagrange) give variant i's DP:
    forecast demand per period, price per period, and the revenue counted outside the DP
    (initial stock, and every firm order as if delivered at no cost). With a constant price
    the stock serves the earliest demand (net demand); otherwise the stock is valued at its
    best price plus the lost-sale penalty, on top of the full demand. In expected-profit mode
    stock the demand leaves over counts at its end value (``ModelData.end_value``)."""
    prices = [d.price[i, t] for t in d.T]
    if max(prices) - min(prices) <= 1e-12:
        dem, _, stock_revenue = net_demand(d, i, firm=False)
        # what the stock leaves at the end is worth its end value (expected-profit mode): making
        # a unit only to keep it never pays, so the DP needs no end value of its own
        left = d.s0[i] - sum(d.demand[i, t] for t in d.T)
        if d.end_value and left > 0:
            stock_revenue += d.end_value.get(i, 0.0) * left
    else:  # (the best price plus the lost-sale cost is at least the end value)
        dem = [d.demand[i, t] for t in d.T]
        stock_revenue = d.s0[i] * (max(prices) + d.lost_cost[i])
    return dem, prices, stock_revenue + d.firm_price[i] * sum(d.firm[i, t] for t in d.T)


def item_bound(d: ModelData) -> float | None:
    """A valid upper bound on the profit (planning mode; None in CLSP mode): the sum over the
    variants of the exact single-variant optimum without capacity, overtime, materials'
    availability (their cost is kept), minimum lots, setup bounds and the previous plan, plus
    every firm order's revenue as if delivered at no cost. Each dropped constraint only enlarges
    the feasible set and each dropped cost is >= 0, so no plan can earn more. Initial stock
    serves the earliest forecast demand (the same revenue as any other order when the price is
    constant; otherwise the stock is valued at its best price on top of the full demand)."""
    if d.clsp:
        return None
    n = len(d.T)
    mat = material_unit_cost(d)
    lines_of: dict[str, list[str]] = {}
    for i, ln in d.R:
        lines_of.setdefault(i, []).append(ln)
    total = 0.0
    for i in d.I:
        dem, prices, outside = bound_demand(d, i)
        lines = lines_of.get(i, [])
        gain = {ln: [prices[t] - d.unit_cost[i, ln] - mat[i] for t in d.T] for ln in lines}
        value, _ = _item_dp(
            dem,
            gain,
            {ln: d.sc[i, ln] + d.route_share(i, ln)[0] for ln in lines},
            d.hold[i],
            d.lost_cost[i],
            {ln: [True] * n for ln in lines},
            n,
        )
        total += value + outside
    return total


def _family_periods(
    d: ModelData,
    choice: dict[str, str],
    net: dict[str, tuple[list[float], list[float], float]],
    mat: dict[str, float],
) -> dict[tuple[str, str], set[int]]:
    """The changeover periods of each family on the line its members were given, from the
    recursion on the family's summed demand: {(variant, line): periods its setups may use}."""
    if not d.family_of or d.members is None or d.fsc is None:
        return {}
    groups: dict[tuple[str, str], list[str]] = {}
    for i, ln in choice.items():
        g = d.family_of.get((i, ln))
        if g is not None:
            groups.setdefault((g, ln), []).append(i)
    out: dict[tuple[str, str], set[int]] = {}
    n = len(d.T)
    for (g, ln), members in groups.items():
        dem = [sum(net[i][0][t] for i in members) for t in d.T]
        total = sum(dem) or 1.0
        weight = {i: sum(net[i][0]) / total for i in members}
        gain = [
            sum((net[i][1][t] - d.unit_cost[i, ln] - mat[i]) * net[i][0][t] for i in members)
            / dem[t]
            if dem[t] > 0
            else 0.0
            for t in d.T
        ]
        hold = sum(weight[i] * d.hold[i] for i in members)
        lost = sum(weight[i] * d.lost_cost[i] for i in members)
        setup = d.fsc[g, ln] + sum(d.sc[i, ln] for i in members)
        ok = [any(d.big_m[i, ln, t] > 0 for i in members) for t in range(n)]
        _, lots = _item_dp(dem, {ln: gain}, {ln: setup}, hold, lost, {ln: ok}, MAX_CARRY)
        periods = {t for t, _ in lots}
        for i in members:
            out[i, ln] = periods
    return out


def dp_pattern(d: ModelData) -> dict[Key3, float]:
    """Setup values (0/1) for every (i, l, t) whose setup is not fixed at 0 by the data."""
    mat = material_unit_cost(d)
    choice = _line_choice(d)
    out: dict[Key3, float] = {
        (i, ln, t): 0.0 for i, ln in d.R for t in d.T if d.big_m[i, ln, t] > 0
    }
    net = {i: net_demand(d, i, firm=True) for i in choice}
    family_periods = _family_periods(d, choice, net, mat)
    for i, ln in choice.items():
        dem, price, _ = net[i]
        gain = {ln: [p - d.unit_cost[i, ln] - mat[i] for p in price]}
        allowed = family_periods.get((i, ln))
        ok = {ln: [d.big_m[i, ln, t] > 0 and (allowed is None or t in allowed) for t in d.T]}
        _, lots = _item_dp(dem, gain, {ln: d.sc[i, ln]}, d.hold[i], d.lost_cost[i], ok, MAX_CARRY)
        for t, line in lots:
            out[i, line, t] = 1.0
    for (i, ln, t), qty in d.prev.items():  # the frozen plan's lots need their setups
        if t < d.frozen and qty > 0 and (i, ln, t) in out:
            out[i, ln, t] = 1.0
    return out
