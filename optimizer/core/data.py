"""Turn a validated :class:`PlanningProblem` into the plain numbers the model's Params take.

Everything derived lives here, once: the demand planned for (the service-level quantile, or in
expected-profit mode the demand scenarios and their mean), firm quantities per variant and period,
the setup forcing bound ``M`` (tight: the least of remaining demand -- in the highest scenario --
and what the line can make after the setup, its family's changeover included), the family
changeovers (which routes need which, and the family's hours bound) and the previous plan per route
and period.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, replace

from optimizer.core.problem import PlanningProblem
from optimizer.core.scenarios import sample_paths

Key2 = tuple[str, int]
Route2 = tuple[str, str]
Key3 = tuple[str, str, int]
FamLine = tuple[str, str]  # (family, line)


def quantile_value(levels: tuple[float, ...], values: tuple[float, ...], q: float) -> float:
    """Demand at level ``q``: linear between the given levels, clamped outside them."""
    if q <= levels[0]:
        return float(values[0])
    if q >= levels[-1]:
        return float(values[-1])
    k = bisect.bisect_right(levels, q)
    lo, hi = levels[k - 1], levels[k]
    w = (q - lo) / (hi - lo)
    return float(values[k - 1] + w * (values[k] - values[k - 1]))


@dataclass(frozen=True)
class ModelData:
    """Index sets and parameter tables, keyed like the model's components."""

    I: tuple[str, ...]  # noqa: E741 - the formulation calls the variant set I
    L: tuple[str, ...]
    T: tuple[int, ...]
    M: tuple[str, ...]
    R: tuple[Route2, ...]
    demand: dict[Key2, float]  # planned demand: the quantile, or the scenarios' mean
    firm: dict[Key2, float]
    price: dict[Key2, float]
    firm_price: dict[str, float]
    hold: dict[str, float]
    backlog_cost: dict[str, float]
    lost_cost: dict[str, float]
    s0: dict[str, float]
    cap: dict[tuple[str, int], float]
    ot_max: dict[str, float]
    ot_cost: dict[str, float]
    unit_cost: dict[Route2, float]
    a: dict[Route2, float]
    st: dict[Route2, float]
    sc: dict[Route2, float]
    min_lot: dict[Route2, float]
    usage: dict[tuple[str, str], float]
    mat_cost: dict[str, float]
    stock: dict[str, float]
    arrivals: dict[tuple[str, int], float]
    big_m: dict[Key3, float]
    big_m_demand: dict[Key3, float]  # the same bound without the capacity limit (elastic runs)
    prev: dict[Key3, float]
    has_previous: bool
    frozen: int
    change_penalty: float
    allow_backlog: bool
    clsp: bool
    K: tuple[int, ...] = ()  # demand scenarios (expected-profit mode; empty: quantile mode)
    scenario_demand: dict[tuple[str, int, int], float] | None = None  # (i, t, k)
    # family changeovers (empty: every setup is the variant's own)
    FL: tuple[FamLine, ...] = ()  # (family, line) with a changeover and a member route
    fst: dict[FamLine, float] | None = None  # changeover hours
    fsc: dict[FamLine, float] | None = None  # changeover cost
    members: dict[FamLine, tuple[str, ...]] | None = None  # variants of f eligible on l
    family_of: dict[Route2, str] | None = None  # route -> the family whose changeover it needs
    fam_hours: dict[tuple[str, str, int], float] | None = None  # family_forcing bound (f, l, t)
    fam_hours_demand: dict[tuple[str, str, int], float] | None = None  # without capacity
    share_sc: dict[Route2, float] | None = None  # the changeover cost split over its members
    share_st: dict[Route2, float] | None = None  # the changeover hours split over its members
    # worth of a unit left on hand at the horizon's end (expected-profit mode; None: nothing)
    end_value: dict[str, float] | None = None

    def route_share(self, i: str, ln: str) -> tuple[float, float]:
        """(cost, hours) of the family changeover charged to one setup of i on ln by the
        equal split (0, 0 without one): see docs/formulation.md, "Family setups"."""
        if not self.share_sc or self.share_st is None or (i, ln) not in self.share_sc:
            return 0.0, 0.0
        return self.share_sc[i, ln], self.share_st[i, ln]


def prepare(p: PlanningProblem) -> ModelData:
    """Derived data of a validated problem (call ``p.validate()`` first)."""
    n = len(p.periods)
    T = tuple(range(n))
    demand: dict[Key2, float] = {}
    price: dict[Key2, float] = {}
    for v in p.variants:
        for t in T:
            demand[v.id, t] = quantile_value(p.quantiles, v.demand[t], v.service_level)
            price[v.id, t] = float(v.price[t])
    K: tuple[int, ...] = ()
    scenario_demand: dict[tuple[str, int, int], float] | None = None
    # the demand paths production may have to serve (big-M): the scenarios, or the one quantile
    paths_of: dict[str, list[list[float]]] = {
        v.id: [[demand[v.id, t] for t in T]] for v in p.variants
    }
    if p.demand_mode == "expected_profit":
        K = tuple(range(p.scenario_count))
        scenario_demand = {}
        for v in p.variants:
            paths = scenarios_of(p, v.id, v.demand, v.demand_scenarios)
            paths_of[v.id] = [[float(paths[k][t]) for t in T] for k in K]
            for t in T:
                column = [float(paths[k][t]) for k in K]
                demand[v.id, t] = sum(column) / len(column)
                for k in K:
                    scenario_demand[v.id, t, k] = column[k]
    firm: dict[Key2, float] = {(v.id, t): 0.0 for v in p.variants for t in T}
    firm_rev: dict[str, float] = {}
    firm_qty: dict[str, float] = {}
    by_id = {v.id: v for v in p.variants}
    for o in p.orders:
        firm[o.variant, o.due_period] += o.quantity
        unit = o.price if o.price is not None else by_id[o.variant].price[o.due_period]
        firm_rev[o.variant] = firm_rev.get(o.variant, 0.0) + unit * o.quantity
        firm_qty[o.variant] = firm_qty.get(o.variant, 0.0) + o.quantity
    firm_price = {
        v.id: (firm_rev[v.id] / firm_qty[v.id] if firm_qty.get(v.id) else 0.0) for v in p.variants
    }
    lines = {ln.id: ln for ln in p.lines}
    R = tuple((r.variant, r.line) for r in p.routes)
    a = {(r.variant, r.line): float(r.hours_per_unit) for r in p.routes}
    st = {
        (r.variant, r.line): float(
            r.setup_hours if r.setup_hours is not None else lines[r.line].setup_hours
        )
        for r in p.routes
    }
    sc = {
        (r.variant, r.line): float(
            r.setup_cost if r.setup_cost is not None else lines[r.line].setup_cost
        )
        for r in p.routes
    }
    cap = {(ln.id, t): float(ln.capacity_hours[t]) for ln in p.lines for t in T}
    ot_max = {ln.id: (0.0 if p.mode == "clsp" else float(ln.overtime_max_hours)) for ln in p.lines}
    prev: dict[Key3, float] = {}
    for pl in p.previous_plan:
        key = (pl.variant, pl.line, pl.period)
        prev[key] = prev.get(key, 0.0) + pl.quantity
    s0 = {v.id: float(v.initial_inventory) for v in p.variants}

    min_lot = {(r.variant, r.line): float(r.min_lot) for r in p.routes}
    fam = _families(p, R)
    big_m, big_m_demand, fam_hours, fam_hours_demand = _setup_bounds(
        T, R, paths_of, firm, s0, p.allow_backlog, min_lot, prev, p.frozen_periods, cap, ot_max,
        st, a, fam.family_of, fam.FL, fam.members, fam.fst,
    )  # fmt: skip
    usage: dict[tuple[str, str], float] = {}
    for v in p.variants:
        for use in v.bom:
            usage[v.id, use.material] = usage.get((v.id, use.material), 0.0) + use.quantity
    d = ModelData(
        I=tuple(v.id for v in p.variants),
        L=tuple(ln.id for ln in p.lines),
        T=T,
        M=tuple(m.id for m in p.materials),
        R=R,
        demand=demand,
        firm=firm,
        price=price,
        firm_price=firm_price,
        hold={v.id: float(v.holding_cost) for v in p.variants},
        backlog_cost={v.id: float(v.backlog_cost) for v in p.variants},
        lost_cost={v.id: float(v.lost_sale_cost) for v in p.variants},
        s0=s0,
        cap=cap,
        ot_max=ot_max,
        ot_cost={ln.id: float(ln.overtime_cost) for ln in p.lines},
        unit_cost={(r.variant, r.line): float(r.unit_cost) for r in p.routes},
        a=a,
        st=st,
        sc=sc,
        min_lot=min_lot,
        usage=usage,
        mat_cost={m.id: float(m.unit_cost) for m in p.materials},
        stock={m.id: float(m.stock) for m in p.materials},
        arrivals={
            (m.id, t): float(m.arrivals[t]) if m.arrivals else 0.0 for m in p.materials for t in T
        },
        big_m=big_m,
        big_m_demand=big_m_demand,
        prev=prev,
        has_previous=bool(p.previous_plan) or p.frozen_periods > 0,
        frozen=p.frozen_periods,
        change_penalty=float(p.change_penalty),
        allow_backlog=p.allow_backlog,
        clsp=p.mode == "clsp",
        K=K,
        scenario_demand=scenario_demand,
        FL=fam.FL,
        fst=fam.fst,
        fsc=fam.fsc,
        members=fam.members,
        family_of=fam.family_of,
        fam_hours=fam_hours,
        fam_hours_demand=fam_hours_demand,
        share_sc={
            r: fam.fsc[f, r[1]] / len(fam.members[f, r[1]]) for r, f in fam.family_of.items()
        },
        share_st={
            r: fam.fst[f, r[1]] / len(fam.members[f, r[1]]) for r, f in fam.family_of.items()
        },
    )
    if K and p.end_stock_value > 0:
        d = replace(d, end_value=_end_value(p, d))
    return d


def material_unit_cost(d: ModelData) -> dict[str, float]:
    """Material cost of one unit of each variant (its BOM at the materials' unit costs)."""
    out = dict.fromkeys(d.I, 0.0)
    for (i, mt), u in d.usage.items():
        out[i] += u * d.mat_cost[mt]
    return out


def _end_value(p: PlanningProblem, d: ModelData) -> dict[str, float]:
    """Worth of a unit on hand at the horizon's end: ``end_stock_value`` x (the variable unit
    cost on the variant's cheapest line + its materials), at most its lowest price plus the
    lost-sale cost and its lowest firm-order price (so a unit sold or delivered is never worth
    less than one kept). Making a unit only to keep it then never pays: it costs at least this
    much plus a period's holding."""
    firm_price: dict[str, float] = {}  # the lowest price of a variant's firm orders
    for o in p.orders:
        unit = float(o.price) if o.price is not None else d.price[o.variant, o.due_period]
        firm_price[o.variant] = min(unit, firm_price.get(o.variant, unit))
    cheapest: dict[str, float] = {}
    for i, ln in d.R:
        cheapest[i] = min(d.unit_cost[i, ln], cheapest.get(i, d.unit_cost[i, ln]))
    mat = material_unit_cost(d)
    out: dict[str, float] = {}
    for i, c in cheapest.items():
        ceiling = min(d.price[i, t] for t in d.T) + d.lost_cost[i]
        worth = min(p.end_stock_value * (c + mat[i]), ceiling, firm_price.get(i, ceiling))
        if worth > 0:
            out[i] = worth
    return out


@dataclass(frozen=True)
class _Families:
    FL: tuple[FamLine, ...]
    fst: dict[FamLine, float]
    fsc: dict[FamLine, float]
    members: dict[FamLine, tuple[str, ...]]
    family_of: dict[Route2, str]


def _families(p: PlanningProblem, routes: tuple[Route2, ...]) -> _Families:
    """The family changeovers that some planned route needs, in the problem's order."""
    family = {v.id: v.family for v in p.variants if v.family}
    declared = {(fs.family, fs.line): fs for fs in p.family_setups}
    members: dict[FamLine, list[str]] = {}
    family_of: dict[Route2, str] = {}
    for i, ln in routes:
        f = family.get(i)
        if f is not None and (f, ln) in declared:
            members.setdefault((f, ln), []).append(i)
            family_of[i, ln] = f
    FL = tuple((fs.family, fs.line) for fs in p.family_setups if (fs.family, fs.line) in members)
    return _Families(
        FL=FL,
        fst={k: float(declared[k].hours) for k in FL},
        fsc={k: float(declared[k].cost) for k in FL},
        members={k: tuple(members[k]) for k in FL},
        family_of=family_of,
    )


def scenarios_of(
    p: PlanningProblem,
    variant_id: str,
    quantile_rows: tuple[tuple[float, ...], ...],
    given: tuple[tuple[float, ...], ...] = (),
) -> list[tuple[float, ...]] | list[list[float]]:
    """The demand paths of one variant in expected-profit mode: the given ones, else drawn from
    its quantiles (:func:`optimizer.core.scenarios.sample_paths`)."""
    if given:
        return list(given)
    paths = sample_paths(
        variant_id,
        p.quantiles,
        quantile_rows,
        p.scenario_count,
        seed=p.scenario_seed,
        rho=p.week_correlation,
    )
    return paths.tolist()


def _setup_bounds(
    T: tuple[int, ...],
    R: tuple[Route2, ...],
    paths_of: dict[str, list[list[float]]],
    firm: dict[Key2, float],
    s0: dict[str, float],
    allow_backlog: bool,
    min_lot: dict[Route2, float],
    prev: dict[Key3, float],
    frozen: int,
    cap: dict[tuple[str, int], float],
    ot_max: dict[str, float],
    st: dict[Route2, float],
    a: dict[Route2, float],
    family_of: dict[Route2, str],
    FL: tuple[FamLine, ...],
    members: dict[FamLine, tuple[str, ...]],
    fst: dict[FamLine, float],
) -> tuple[dict[Key3, float], dict[Key3, float], dict[Key3, float], dict[Key3, float]]:
    """The setup forcing bounds (big-M) of each route and period, with and without the
    capacity limit, and each family changeover's hours bound, from the demand paths
    production may have to serve."""
    # remaining demand that production in t can still serve (firm backlog included when
    # allowed), in the demand path where it is highest: production in t beyond it is left over
    # in every scenario (docs/formulation.md, "Expected profit over demand scenarios")
    rem: dict[Key2, float] = {}
    for i, paths in paths_of.items():
        for path in paths:
            acc = sum(firm[i, t] for t in T) if allow_backlog else 0.0
            before = sum(path[t] + firm[i, t] for t in T)
            for t in reversed(T):
                acc += path[t] + (0.0 if allow_backlog else firm[i, t])
                before -= path[t] + firm[i, t]
                on_hand = max(0.0, s0[i] - before)  # initial stock surely left at t
                rem[i, t] = max(rem.get((i, t), 0.0), acc - on_hand)
    route_fst = {r: fst[f, r[1]] for r, f in family_of.items()}
    big_m: dict[Key3, float] = {}
    big_m_demand: dict[Key3, float] = {}
    for i, ln in R:
        for t in T:
            by_demand = max(rem[i, t], min_lot[i, ln], prev.get((i, ln, t), 0.0))
            big_m_demand[i, ln, t] = by_demand
            hours = cap[ln, t] + ot_max[ln] - st[i, ln] - route_fst.get((i, ln), 0.0)
            by_cap = hours / a[i, ln] if a[i, ln] > 0 else float("inf")
            # the previous plan's quantity too: with a change penalty, making it may pay even
            # beyond every scenario's demand (it is cheap once left stock is worth its cost)
            bound = min(max(rem[i, t], min_lot[i, ln], prev.get((i, ln, t), 0.0)), by_cap)
            if t < frozen:
                bound = max(bound, prev.get((i, ln, t), 0.0))
            if bound < min_lot[i, ln] and t >= frozen:
                bound = 0.0
            big_m[i, ln, t] = max(0.0, bound)
    fam_hours: dict[Key3, float] = {}
    fam_hours_demand: dict[Key3, float] = {}
    for f, ln in FL:
        for t in T:
            need = need_demand = 0.0
            for i in members[f, ln]:
                if big_m[i, ln, t] > 0:
                    need += a[i, ln] * big_m[i, ln, t] + st[i, ln]
                need_demand += a[i, ln] * big_m_demand[i, ln, t] + st[i, ln]
            room = cap[ln, t] + ot_max[ln] - fst[f, ln]
            fam_hours[f, ln, t] = max(0.0, min(need, room))
            fam_hours_demand[f, ln, t] = need_demand
    return big_m, big_m_demand, fam_hours, fam_hours_demand


def certain_demand_data(d: ModelData, path: str = "mean") -> ModelData:
    """Expected-profit data as one certain demand path: the scenarios' ``"mean"`` (``d.demand``)
    or their per-cell ``"median"``, with the setup bounds recomputed from that path: the
    scenarios' big-M (the highest scenario's remaining demand) kept the certain model's LP as
    weak as the scenario model's, and its 3.5 s solve found a plan 3x below the P50 model's on
    the ``small`` preset's 4-week plan."""
    if path == "mean":
        demand = d.demand
    elif path == "median":
        assert d.scenario_demand is not None
        demand = {
            (i, t): float(statistics.median(d.scenario_demand[i, t, k] for k in d.K))
            for i in d.I
            for t in d.T
        }
    else:
        raise ValueError(f"path: 'mean' or 'median', not {path!r}")
    paths_of = {i: [[demand[i, t] for t in d.T]] for i in d.I}
    big_m, big_m_demand, fam_hours, fam_hours_demand = _setup_bounds(
        d.T, d.R, paths_of, d.firm, d.s0, d.allow_backlog, d.min_lot, d.prev, d.frozen, d.cap,
        d.ot_max, d.st, d.a, d.family_of or {}, d.FL, d.members or {}, d.fst or {},
    )  # fmt: skip
    return replace(
        d,
        demand=demand,
        K=(),
        scenario_demand=None,
        big_m=big_m,
        big_m_demand=big_m_demand,
        fam_hours=fam_hours if d.FL else d.fam_hours,
        fam_hours_demand=fam_hours_demand if d.FL else d.fam_hours_demand,
    )


def mean_demand_data(d: ModelData) -> ModelData:
    """The scenarios' mean demand as one certain path (:func:`certain_demand_data`)."""
    return certain_demand_data(d, "mean")
