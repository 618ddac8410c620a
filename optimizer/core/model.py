"""The planning model as a Pyomo ConcreteModel (docs/formulation.md states it in full).

Sets: VARIANTS i, LINES l, PERIODS t, MATERIALS m, ROUTES (i, l) (line eligibility),
FAMILY_LINES (g, l) (a changeover of l to family g), FAMILY_ROUTES (i, l) (routes needing one).
Decisions: x[i,l,t] production, y[i,l,t] setup (binary), z[g,l,t] family changeover (binary),
s[i,t] inventory, q[i,t] forecast sales,
u[i,t] lost sales, f[i,t] firm deliveries, b[i,t] firm backlog, o[l,t] overtime hours,
w[m,t] material stock, dp/dm[i,l,t] change against the previous plan.

    max  sum P q + PF f - c x - SC y - FSC z - H s - BC b - LC u - OC o - MC (usage x)
         - CP (dp + dm) + sum_i V[i] s[i,last]           (V: expected-profit mode only)
    s.t. inventory_balance   s[i,t-1] + sum_l x[i,l,t] = q[i,t] + f[i,t] + s[i,t]   (s[i,-1] = S0)
         demand_split        q[i,t] + u[i,t] = D[i,t]
         firm_backlog        b[i,t] = b[i,t-1] + F[i,t] - f[i,t]                   (b[i,-1] = 0)
         due_date            b[i,t] <= 0          (only when backlog is forbidden)
         capacity            sum_i A x + ST y + sum_f FST z <= C[l,t] + o[l,t],  o <= OTMAX
         setup_forcing       x[i,l,t] <= BIGM[i,l,t] y[i,l,t]
         family_link         y[i,l,t] <= z[g(i),l,t]                         (FAMILY_ROUTES)
         family_forcing      sum_{i in g} (A x + ST y)[i,l,t] <= FH[g,l,t] z[g,l,t]
         min_lot             x[i,l,t] >= LOT y[i,l,t]
         material_balance    w[m,t-1] + ARR[m,t] - sum U x = w[m,t]               (w[m,-1] = STOCK)
         frozen_plan         x[i,l,t] = XP[i,l,t]                  (t < frozen periods)
         plan_change         x[i,l,t] - XP[i,l,t] = dp - dm        (t >= frozen, previous plan)
         lot_cover           x[i,l,t] <= DC[i,t,k] y[i,l,t] + s[i,k] + b[i,t-1]   (k = t..t+K)
In expected-profit mode (scenarios k in K, equally likely, demand DS[i,t,k]) production, setups,
overtime, materials and firm deliveries are decided once; sales and stock follow each scenario,
and q, s, u become their expected values, so the objective above is the expected profit:
         inventory_balance   sk[i,t-1,k] + sum_l x[i,l,t] = qk[i,t,k] + f[i,t] + sk[i,t,k]
         scenario_sales      qk[i,t,k] <= DS[i,t,k]
         expected_sales      q[i,t] = 1/|K| sum_k qk[i,t,k]
         expected_stock      s[i,t] = 1/|K| sum_k sk[i,t,k]
         demand_split        q[i,t] + u[i,t] = D[i,t]          (D = the scenarios' mean)
Every cut below stays valid: it holds in each scenario, and so for the averages.
CLSP mode minimises the same costs (no revenue). ``elastic`` families get a non-negative slack
``e_<family>`` and the objective becomes the total slack: the elastic relaxation that diagnoses
an infeasible request.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyomo.environ as pyo

from optimizer.core.data import ModelData

ELASTIC_FAMILIES = ("capacity", "due_date", "material_balance", "frozen_plan")


def _cover_horizon(d: ModelData) -> int:
    """How many periods beyond t the lot_cover cuts look: the whole of a small model (the
    Trigeiro sizes), else only k = t. Measured on a 60x26x2 synthetic plan: LP bound 2.525M
    without cuts, 2.464M with k = t (LP 1.9 s), 2.462M with k <= t+1 (6.1 s), 2.461M with
    k <= t+3 (13.3 s); with the whole horizon the LP did not finish in 60 s."""
    n = len(d.T)
    return n - 1 if len(d.R) * n * n <= 25_000 else 0


def build_model(
    d: ModelData,
    elastic: Iterable[str] = (),
    cover_horizon: int | None = None,
    strengthen: str = "auto",
) -> pyo.ConcreteModel:
    """Build the model from prepared data (see :func:`optimizer.core.data.prepare`).

    ``strengthen``: ``allocation`` (facility-location demand allocation, the tightest; needs
    backlog forbidden and a modest size), ``lot_cover`` ((l,S) cuts over ``cover_horizon``
    periods), ``none``, or ``auto`` (= lot_cover: on the Trigeiro F set HiGHS 1.16 proved
    optimality faster with it than with the allocation model, whose LP bound is tighter)."""
    elastic = frozenset(elastic)
    m = pyo.ConcreteModel(name="tailorline_plan")
    m.VARIANTS = pyo.Set(initialize=d.I, ordered=True, doc="variants i")
    m.LINES = pyo.Set(initialize=d.L, ordered=True, doc="production lines l")
    m.PERIODS = pyo.Set(initialize=d.T, ordered=True, doc="periods t (0-based)")
    m.MATERIALS = pyo.Set(initialize=d.M, ordered=True, doc="materials m")
    m.ROUTES = pyo.Set(initialize=d.R, dimen=2, ordered=True, doc="eligible (variant, line)")
    m.RT = pyo.Set(
        initialize=[(i, ln, t) for i, ln in d.R for t in d.T],
        dimen=3,
        ordered=True,
        doc="route x period",
    )
    routes_of_line: dict[str, list[str]] = {ln: [] for ln in d.L}
    lines_of_variant: dict[str, list[str]] = {i: [] for i in d.I}
    for i, ln in d.R:
        routes_of_line[ln].append(i)
        lines_of_variant[i].append(ln)
    m.ON_LINE = pyo.Set(m.LINES, initialize=routes_of_line, doc="variants eligible on line l")
    m.FAMILY_LINES = pyo.Set(
        initialize=d.FL, dimen=2, ordered=True, doc="(family f, line l) with a changeover"
    )
    m.FAMILY_ROUTES = pyo.Set(
        initialize=list((d.family_of or {}).keys()),
        dimen=2,
        ordered=True,
        doc="routes (i, l) whose setup needs the changeover of l to i's family",
    )
    m.LINES_OF = pyo.Set(m.VARIANTS, initialize=lines_of_variant, doc="lines eligible for i")
    users: dict[str, list[str]] = {mt: [] for mt in d.M}
    for (i, mt), _u in d.usage.items():
        users[mt].append(i)
    m.USERS = pyo.Set(m.MATERIALS, initialize=users, doc="variants whose BOM uses m")

    # ---- parameters
    IT = m.VARIANTS * m.PERIODS
    m.D = pyo.Param(
        IT, initialize=d.demand, doc="forecast demand: the service quantile, or the scenario mean"
    )
    m.F = pyo.Param(IT, initialize=d.firm, doc="firm order quantity due in t")
    m.P = pyo.Param(IT, initialize=d.price, doc="price of forecast sales")
    m.PF = pyo.Param(m.VARIANTS, initialize=d.firm_price, doc="mean price of firm orders")
    m.H = pyo.Param(m.VARIANTS, initialize=d.hold, doc="holding cost per unit and period")
    m.BC = pyo.Param(m.VARIANTS, initialize=d.backlog_cost, doc="backlog cost per unit, period")
    m.LC = pyo.Param(m.VARIANTS, initialize=d.lost_cost, doc="lost-sale penalty per unit")
    m.S0 = pyo.Param(m.VARIANTS, initialize=d.s0, doc="initial inventory")
    m.C = pyo.Param(m.LINES * m.PERIODS, initialize=d.cap, doc="regular capacity hours")
    m.OTMAX = pyo.Param(m.LINES, initialize=d.ot_max, doc="overtime hours per period, at most")
    m.OC = pyo.Param(m.LINES, initialize=d.ot_cost, doc="overtime cost per hour")
    m.c = pyo.Param(m.ROUTES, initialize=d.unit_cost, doc="variable production cost per unit")
    m.A = pyo.Param(m.ROUTES, initialize=d.a, doc="hours per unit")
    m.ST = pyo.Param(m.ROUTES, initialize=d.st, doc="setup hours")
    m.SC = pyo.Param(m.ROUTES, initialize=d.sc, doc="setup cost")
    m.LOT = pyo.Param(m.ROUTES, initialize=d.min_lot, doc="minimum lot size")
    m.FST = pyo.Param(m.FAMILY_LINES, initialize=d.fst or {}, doc="family changeover hours")
    m.FSC = pyo.Param(m.FAMILY_LINES, initialize=d.fsc or {}, doc="family changeover cost")
    m.FH = pyo.Param(
        m.FAMILY_LINES * m.PERIODS,
        initialize=(d.fam_hours_demand if "capacity" in elastic else d.fam_hours) or {},
        doc="hours a family's variants can use on l in t (production + minor setups), at most",
    )
    m.BIGM = pyo.Param(
        m.RT,
        initialize=d.big_m_demand if "capacity" in elastic else d.big_m,
        doc="tight setup forcing bound (without the capacity limit when capacity is elastic)",
    )
    m.U = pyo.Param(
        m.VARIANTS * m.MATERIALS, initialize=d.usage, default=0.0, doc="BOM usage per unit"
    )
    m.MC = pyo.Param(m.MATERIALS, initialize=d.mat_cost, doc="material unit cost")
    m.STOCK = pyo.Param(m.MATERIALS, initialize=d.stock, doc="material stock at the start")
    m.ARR = pyo.Param(m.MATERIALS * m.PERIODS, initialize=d.arrivals, doc="material arrivals")
    m.XP = pyo.Param(m.RT, initialize=d.prev, default=0.0, doc="previous plan's quantity")
    m.CP = pyo.Param(initialize=d.change_penalty, doc="penalty per unit changed")

    # ---- variables
    m.x = pyo.Var(m.RT, domain=pyo.NonNegativeReals, doc="production quantity")
    m.y = pyo.Var(m.RT, domain=pyo.Binary, doc="setup of i on l in t")
    m.z = pyo.Var(m.FAMILY_LINES * m.PERIODS, domain=pyo.Binary, doc="changeover of l to f in t")
    m._family_of = dict(d.family_of or {})  # route -> its family (Setups reads it)
    m.s = pyo.Var(IT, domain=pyo.NonNegativeReals, doc="inventory at the end of t")
    m.q = pyo.Var(IT, domain=pyo.NonNegativeReals, doc="forecast demand served")
    m.u = pyo.Var(IT, domain=pyo.NonNegativeReals, doc="forecast demand lost")
    m.f = pyo.Var(IT, domain=pyo.NonNegativeReals, doc="firm order units delivered")
    m.b = pyo.Var(IT, domain=pyo.NonNegativeReals, doc="firm order units late at end of t")
    m.o = pyo.Var(
        m.LINES * m.PERIODS, bounds=lambda m, ln, t: (0, m.OTMAX[ln]), doc="overtime hours"
    )
    m.w = pyo.Var(m.MATERIALS * m.PERIODS, domain=pyo.NonNegativeReals, doc="material stock")
    for ln, t in m.LINES * m.PERIODS:
        if m.OTMAX[ln] == 0:
            m.o[ln, t].fix(0)
    for i, ln, t in m.RT:
        if m.BIGM[i, ln, t] == 0:
            m.y[i, ln, t].fix(0)
    for f, ln in m.FAMILY_LINES:
        members = (d.members or {})[f, ln]
        for t in m.PERIODS:
            if m.FH[f, ln, t] <= 0 or all(m.y[i, ln, t].fixed for i in members):
                m.z[f, ln, t].fix(0)
                for i in members:
                    m.y[i, ln, t].fix(0)
    if d.clsp:
        for i, t in IT:
            m.q[i, t].fix(0)
            m.u[i, t].fix(0)

    def slack(name: str, index: object) -> pyo.Var | None:
        if name not in elastic:
            return None
        var = pyo.Var(index, domain=pyo.NonNegativeReals, doc=f"elastic slack of {name}")
        m.add_component(f"e_{name}", var)
        return var

    # ---- constraints
    if d.K:
        _add_scenarios(m, d)
    else:

        @m.Constraint(IT, doc="stock carried + production = sales + firm deliveries + stock")
        def inventory_balance(m, i, t):
            before = m.S0[i] if t == 0 else m.s[i, t - 1]
            made = sum(m.x[i, ln, t] for ln in m.LINES_OF[i])
            return before + made == m.q[i, t] + m.f[i, t] + m.s[i, t]

    @m.Constraint(IT, doc="forecast demand is served or lost")
    def demand_split(m, i, t):
        return m.q[i, t] + m.u[i, t] == m.D[i, t]

    @m.Constraint(IT, doc="firm units late = late before + due now - delivered now")
    def firm_backlog(m, i, t):
        before = 0 if t == 0 else m.b[i, t - 1]
        return m.b[i, t] == before + m.F[i, t] - m.f[i, t]

    if not d.allow_backlog:
        e_due = slack("due_date", IT)

        @m.Constraint(IT, doc="firm orders delivered by their due period")
        def due_date(m, i, t):
            return m.b[i, t] <= (e_due[i, t] if e_due is not None else 0)

    e_cap = slack("capacity", m.LINES * m.PERIODS)

    changeovers_of: dict[str, list[str]] = {ln: [] for ln in d.L}
    for f, ln in d.FL:
        changeovers_of[ln].append(f)

    @m.Constraint(m.LINES * m.PERIODS, doc="production and setup hours within capacity")
    def capacity(m, ln, t):
        used = sum(m.A[i, ln] * m.x[i, ln, t] + m.ST[i, ln] * m.y[i, ln, t] for i in m.ON_LINE[ln])
        used += sum(m.FST[f, ln] * m.z[f, ln, t] for f in changeovers_of[ln])
        extra = e_cap[ln, t] if e_cap is not None else 0
        return used <= m.C[ln, t] + m.o[ln, t] + extra

    if d.FL:
        _add_families(m, d)

    @m.Constraint(m.RT, doc="production only with a setup, at most the tight bound")
    def setup_forcing(m, i, ln, t):
        return m.x[i, ln, t] <= m.BIGM[i, ln, t] * m.y[i, ln, t]

    lots = [k for k in d.R if d.min_lot[k] > 0]
    if lots:

        @m.Constraint(
            [(i, ln, t) for i, ln in lots for t in d.T], doc="a setup makes at least the lot"
        )
        def min_lot(m, i, ln, t):
            return m.x[i, ln, t] >= m.LOT[i, ln] * m.y[i, ln, t]

    if d.M:
        e_mat = slack("material_balance", m.MATERIALS * m.PERIODS)

        @m.Constraint(m.MATERIALS * m.PERIODS, doc="material stock + arrivals - use = stock")
        def material_balance(m, mt, t):
            before = m.STOCK[mt] if t == 0 else m.w[mt, t - 1]
            use = sum(m.U[i, mt] * m.x[i, ln, t] for i in m.USERS[mt] for ln in m.LINES_OF[i])
            extra = e_mat[mt, t] if e_mat is not None else 0
            return before + m.ARR[mt, t] + extra - use == m.w[mt, t]

    if d.has_previous:
        frozen = [(i, ln, t) for i, ln, t in m.RT if t < d.frozen]
        free = [(i, ln, t) for i, ln, t in m.RT if t >= d.frozen]
        if frozen:
            m.FROZEN = pyo.Set(initialize=frozen, dimen=3, doc="route-periods in the frozen zone")
            e_up = slack("frozen_plan", m.FROZEN)
            e_down = None
            if e_up is not None:
                e_down = pyo.Var(m.FROZEN, domain=pyo.NonNegativeReals, doc="elastic slack")
                m.e_frozen_plan_down = e_down

            @m.Constraint(m.FROZEN, doc="the frozen periods keep the previous plan")
            def frozen_plan(m, i, ln, t):
                if e_up is None or e_down is None:
                    return m.x[i, ln, t] == m.XP[i, ln, t]
                return m.x[i, ln, t] + e_down[i, ln, t] - e_up[i, ln, t] == m.XP[i, ln, t]

        if d.change_penalty > 0 and free:
            m.CHANGEABLE = pyo.Set(initialize=free, dimen=3, doc="route-periods after the freeze")
            m.dp = pyo.Var(m.CHANGEABLE, domain=pyo.NonNegativeReals, doc="increase vs previous")
            m.dm = pyo.Var(m.CHANGEABLE, domain=pyo.NonNegativeReals, doc="decrease vs previous")

            @m.Constraint(m.CHANGEABLE, doc="change against the previous plan")
            def plan_change(m, i, ln, t):
                return m.x[i, ln, t] - m.XP[i, ln, t] == m.dp[i, ln, t] - m.dm[i, ln, t]

    if strengthen == "auto":  # measured: HiGHS does better with lot_cover than allocation
        strengthen = "lot_cover"
    if strengthen == "allocation":
        _add_allocation(m, d)
    elif strengthen == "lot_cover":
        k_ahead = _cover_horizon(d) if cover_horizon is None else cover_horizon
        if k_ahead >= 0:
            _add_lot_cover(m, d, k_ahead)

    # ---- objective
    m.revenue = pyo.Expression(
        expr=sum(m.P[i, t] * m.q[i, t] + m.PF[i] * m.f[i, t] for i, t in IT), doc="sales revenue"
    )
    m.production_cost = pyo.Expression(
        expr=sum(m.c[i, ln] * m.x[i, ln, t] for i, ln, t in m.RT), doc="variable production cost"
    )
    m.family_setup_cost = pyo.Expression(
        expr=sum(m.FSC[f, ln] * m.z[f, ln, t] for f, ln, t in m.FAMILY_LINES * m.PERIODS),
        doc="family changeover cost (part of setup_cost)",
    )
    m.setup_cost = pyo.Expression(
        expr=sum(m.SC[i, ln] * m.y[i, ln, t] for i, ln, t in m.RT) + m.family_setup_cost,
        doc="setup cost: the variants' own setups and the family changeovers",
    )
    m.holding_cost = pyo.Expression(expr=sum(m.H[i] * m.s[i, t] for i, t in IT), doc="holding")
    m.backlog_cost = pyo.Expression(expr=sum(m.BC[i] * m.b[i, t] for i, t in IT), doc="lateness")
    m.lost_sale_cost = pyo.Expression(expr=sum(m.LC[i] * m.u[i, t] for i, t in IT), doc="lost")
    m.overtime_cost = pyo.Expression(
        expr=sum(m.OC[ln] * m.o[ln, t] for ln, t in m.LINES * m.PERIODS), doc="overtime cost"
    )
    mat_unit = {
        (i, ln): sum(d.usage.get((i, mt), 0.0) * d.mat_cost[mt] for mt in d.M) for i, ln in d.R
    }
    m.material_cost = pyo.Expression(
        expr=sum(mat_unit[i, ln] * m.x[i, ln, t] for i, ln, t in m.RT if mat_unit[i, ln]),
        doc="material consumed at its unit cost",
    )
    m.change_cost = pyo.Expression(
        expr=(m.CP * sum(m.dp[k] + m.dm[k] for k in m.CHANGEABLE) if hasattr(m, "dp") else 0.0),
        doc="plan-stability penalty",
    )
    m.total_cost = pyo.Expression(
        expr=m.production_cost
        + m.setup_cost
        + m.holding_cost
        + m.backlog_cost
        + m.lost_sale_cost
        + m.overtime_cost
        + m.material_cost
        + m.change_cost,
        doc="all costs",
    )
    last = d.T[-1]
    m.end_stock_value = pyo.Expression(
        expr=sum(worth * m.s[i, last] for i, worth in (d.end_value or {}).items()),
        doc="expected stock at the horizon's end, valued at cost (expected-profit mode)",
    )
    m.profit = pyo.Expression(
        expr=m.revenue + m.end_stock_value - m.total_cost,
        doc="revenue and the stock left at cost, minus all costs",
    )
    if elastic:
        slacks = [
            v
            for name in [*sorted(elastic), "frozen_plan_down"]
            if (v := m.component(f"e_{name}")) is not None
        ]
        m.violation = pyo.Objective(
            expr=sum(sum(v.values()) for v in slacks), sense=pyo.minimize, doc="total slack"
        )
    elif d.clsp:
        m.objective = pyo.Objective(expr=m.total_cost, sense=pyo.minimize, doc="CLSP cost")
    else:
        m.objective = pyo.Objective(expr=m.profit, sense=pyo.maximize, doc="profit")
    return m


def _add_families(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Joint setups: a variant's setup needs its family's changeover (``family_link``, one row per
    route and period: the disaggregated form, whose LP relaxation is much tighter than the
    aggregated ``sum_i y <= |f| z``), and the family's hours on the line need it too
    (``family_forcing``, with the tight bound FH: the least of the line's hours left after the
    changeover and what the members' own setup bounds allow)."""
    assert d.family_of is not None and d.members is not None
    keys = [(i, ln, t) for (i, ln) in d.family_of for t in d.T if not m.y[i, ln, t].fixed]

    @m.Constraint(keys, doc="a variant's setup needs its family's changeover")
    def family_link(m, i, ln, t):
        return m.y[i, ln, t] <= m.z[d.family_of[i, ln], ln, t]  # type: ignore[index]

    fam_keys = [(f, ln, t) for f, ln in d.FL for t in d.T if not m.z[f, ln, t].fixed]

    @m.Constraint(fam_keys, doc="a family's hours on a line only with its changeover")
    def family_forcing(m, f, ln, t):
        used = sum(
            m.A[i, ln] * m.x[i, ln, t] + m.ST[i, ln] * m.y[i, ln, t]
            for i in d.members[f, ln]  # type: ignore[index]
        )
        return used <= m.FH[f, ln, t] * m.z[f, ln, t]


def _add_scenarios(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Expected-profit mode: per-scenario sales and stock, and q, s as their averages."""
    assert d.scenario_demand is not None
    m.SCENARIOS = pyo.Set(initialize=d.K, ordered=True, doc="demand scenarios k, equally likely")
    ITK = m.VARIANTS * m.PERIODS * m.SCENARIOS
    m.DS = pyo.Param(ITK, initialize=d.scenario_demand, doc="forecast demand of i in t under k")
    m.qk = pyo.Var(
        ITK, bounds=lambda m, i, t, k: (0, m.DS[i, t, k]), doc="demand served under scenario k"
    )
    m.sk = pyo.Var(ITK, domain=pyo.NonNegativeReals, doc="inventory at the end of t under k")
    weight = 1.0 / len(d.K)

    @m.Constraint(ITK, doc="stock carried + production = sales + firm deliveries + stock, per k")
    def inventory_balance(m, i, t, k):
        before = m.S0[i] if t == 0 else m.sk[i, t - 1, k]
        made = sum(m.x[i, ln, t] for ln in m.LINES_OF[i])
        return before + made == m.qk[i, t, k] + m.f[i, t] + m.sk[i, t, k]

    @m.Constraint(m.VARIANTS * m.PERIODS, doc="expected sales = mean over the scenarios")
    def expected_sales(m, i, t):
        return m.q[i, t] == weight * sum(m.qk[i, t, k] for k in m.SCENARIOS)

    @m.Constraint(m.VARIANTS * m.PERIODS, doc="expected stock = mean over the scenarios")
    def expected_stock(m, i, t):
        return m.s[i, t] == weight * sum(m.sk[i, t, k] for k in m.SCENARIOS)


def _add_lot_cover(m: pyo.ConcreteModel, d: ModelData, k_ahead: int) -> None:
    """x[i,l,t] <= DC[i,t,k] y[i,l,t] + s[i,k] (+ b[i,t-1]): what a setup in t makes is used by
    t..k or stays in stock at k -- the (l,S) inequality with S = {t}, valid for every k >= t."""
    n = len(d.T)
    need = {(i, t): d.demand[i, t] + d.firm[i, t] for i in d.I for t in d.T}
    keys = []
    dc: dict[tuple[str, int, int], float] = {}
    for i in d.I:
        for t in d.T:
            acc = 0.0
            for k in range(t, min(n, t + k_ahead + 1)):
                acc += need[i, k]
                dc[i, t, k] = acc
    for i, ln, t in m.RT:
        if m.y[i, ln, t].fixed:
            continue
        for k in range(t, min(n, t + k_ahead + 1)):
            if dc[i, t, k] < d.big_m[i, ln, t]:  # otherwise setup_forcing already implies it
                keys.append((i, ln, t, k))
    m.COVER = pyo.Set(initialize=keys, dimen=4, doc="(route, t, k) pairs of the lot_cover cuts")
    m.DC = pyo.Param(
        m.VARIANTS * m.PERIODS * m.PERIODS, initialize=dc, default=0.0, doc="demand of i in t..k"
    )

    @m.Constraint(m.COVER, doc="a lot is used by t..k or held at k ((l,S) cut)")
    def lot_cover(m, i, ln, t, k):
        late = m.b[i, t - 1] if t > 0 and d.allow_backlog else 0
        return m.x[i, ln, t] <= m.DC[i, t, k] * m.y[i, ln, t] + m.s[i, k] + late


def _add_allocation(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Facility-location (shortest-path) strengthening, valid when backlog is forbidden:
    alloc[i,l,t,k] = units made on l in t and delivered in k >= t; deliveries of k come from
    allocations or initial stock; an allocation needs the setup and is at most the demand of k.
    Together with the inventory balance this prices holding per unit carried, which makes the
    LP bound of lot sizing tight (Krarup & Bilde; Eppen & Martin)."""
    n = len(d.T)
    need = {(i, t): d.demand[i, t] + d.firm[i, t] for i in d.I for t in d.T}
    keys = [
        (i, ln, t, k)
        for i, ln, t in m.RT
        if not m.y[i, ln, t].fixed
        for k in range(t, n)
        if need[i, k] > 0
    ]
    m.ALLOC = pyo.Set(initialize=keys, dimen=4, doc="(route, make period t, delivery period k)")
    m.DMAX = pyo.Param(m.VARIANTS * m.PERIODS, initialize=need, doc="most deliverable in k")
    m.alloc = pyo.Var(m.ALLOC, domain=pyo.NonNegativeReals, doc="made in t for delivery in k")
    m.from_stock = pyo.Var(
        m.VARIANTS * m.PERIODS, domain=pyo.NonNegativeReals, doc="delivered from initial stock"
    )
    made_for: dict[tuple[str, str, int], list[int]] = {}
    served_by: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for i, ln, t, k in keys:
        made_for.setdefault((i, ln, t), []).append(k)
        served_by.setdefault((i, k), []).append((ln, t))

    @m.Constraint(m.VARIANTS * m.PERIODS, doc="deliveries come from allocations or stock")
    def allocation_cover(m, i, k):
        src = sum(m.alloc[i, ln, t, k] for ln, t in served_by.get((i, k), []))
        return src + m.from_stock[i, k] == m.q[i, k] + m.f[i, k]

    @m.Constraint(m.VARIANTS, doc="initial stock is used at most once")
    def stock_use(m, i):
        return sum(m.from_stock[i, k] for k in m.PERIODS) <= m.S0[i]

    @m.Constraint(m.RT, doc="allocations of a lot do not exceed the lot")
    def allocation_lot(m, i, ln, t):
        ks = made_for.get((i, ln, t), [])
        if not ks:
            return pyo.Constraint.Skip
        return sum(m.alloc[i, ln, t, k] for k in ks) <= m.x[i, ln, t]

    @m.Constraint(m.ALLOC, doc="an allocation needs the setup and at most the demand of k")
    def allocation_setup(m, i, ln, t, k):
        return m.alloc[i, ln, t, k] <= m.DMAX[i, k] * m.y[i, ln, t]
