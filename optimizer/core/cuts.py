"""(l,S) inequalities of lot sizing, separated on the LP relaxation and added as model rows.

For a variant i, a last period k and a set S of (line, period) pairs with periods <= k:

    sum_{(l,t) in S} x[i,l,t]
        <= sum_{(l,t) in S} DC[i,t,k] y[i,l,t] + s[i,k] + sum_{t in T(S)} b[i,t-1]

(``DC[i,t,k]`` = demand + firm quantity of i in t..k; the ``b`` terms only when backlog is
allowed). Valid: if no setup of S is on, the left side is 0; else let p be the first period of S
with a setup on. Everything made in p..k (a superset of S's production) is sold in p..k (at most
DC[i,p,k]: forecast sales never exceed D, firm deliveries never exceed what is due plus the
backlog b[i,p-1] carried into p) or is still in stock at k, and DC[i,p,k] <= the setup term.
With S = {(l,t)} and k = t..n-1 these are the model's ``lot_cover`` rows; the full family gives
the convex hull of single-item uncapacitated lot sizing (Barany, Van Roy & Wolsey 1984).

Separation (exact for a given k up to the b terms, S reaching at most REACH periods back):
take every (l,t), t <= k, whose x - DC y is positive, grouped by period; keep a period when its
positive part exceeds its b[i,t-1]; the cut is violated when the sum exceeds s[i,k]. A round
adds the most violated cuts (at most ``per_round``), relative to the demand they span.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from optimizer.core.data import ModelData
from optimizer.core.solver import RunResult, Session

#: How far back from k a cut's set S reaches (periods); longer carries do not pay.
REACH = 12

Cut = tuple[str, int, tuple[tuple[str, int], ...]]  # (variant, k, S)


@dataclass(frozen=True)
class CutRounds:
    """What the cut loop did: LP bound after each round (the first: no cuts), cuts added."""

    bounds: tuple[float, ...]
    cuts: int
    seconds: float
    last: RunResult | None

    @property
    def bound(self) -> float | None:
        return self.bounds[-1] if self.bounds else None


def _need(d: ModelData) -> dict[tuple[str, int], float]:
    return {(i, t): d.demand[i, t] + d.firm[i, t] for i in d.I for t in d.T}


def separate(
    m: pyo.ConcreteModel,
    d: ModelData,
    tol: float = 1e-3,
    max_cuts: int | None = None,
    reach: int = REACH,
) -> list[tuple[Cut, float]]:
    """Violated (l,S) inequalities at the model's current (LP) values, the most violated
    (relative to the demand of the periods spanned) first; S looks at most ``reach`` periods
    back from k, which keeps the rows short."""
    n = len(d.T)
    need = _need(d)
    lines_of: dict[str, list[str]] = {}
    for i, ln in d.R:
        lines_of.setdefault(i, []).append(ln)
    found: list[tuple[Cut, float]] = []
    for i in d.I:
        lines = lines_of.get(i, [])
        if not lines:
            continue
        xv = {(ln, t): m.x[i, ln, t].value or 0.0 for ln in lines for t in d.T}
        yv = {(ln, t): m.y[i, ln, t].value or 0.0 for ln in lines for t in d.T}
        sv = [m.s[i, t].value or 0.0 for t in d.T]
        bv = [0.0, *[m.b[i, t].value or 0.0 for t in d.T][:-1]] if d.allow_backlog else [0.0] * n
        for k in d.T:
            dc = 0.0
            lhs = 0.0
            members: list[tuple[str, int]] = []
            for t in range(k, max(-1, k - reach - 1), -1):  # DC[i,t,k] grows as t goes back
                dc += need[i, t]
                part = 0.0
                here = []
                for ln in lines:
                    g = xv[ln, t] - dc * yv[ln, t]
                    if g > 1e-9:
                        part += g
                        here.append((ln, t))
                if here and part > bv[t] + 1e-9:
                    lhs += part - bv[t]
                    members.extend(here)
            viol = lhs - sv[k]
            if members and viol > tol * (1.0 + dc):
                found.append(((i, k, tuple(members)), viol / (1.0 + dc)))
    found.sort(key=lambda cv: -cv[1])
    return found[:max_cuts] if max_cuts else found


#: A cut of one demand scenario: (variant, scenario, k, S).
ScenarioCut = tuple[str, int, int, tuple[tuple[str, int], ...]]
#: A cut of a family's aggregate: (family, k, S), S of (line, period) pairs of its changeovers.
FamilyCut = tuple[str, int, tuple[tuple[str, int], ...]]


def _most_violated(
    xv: np.ndarray,
    yv: np.ndarray,
    need: np.ndarray,
    stock: np.ndarray,
    late: np.ndarray,
    reach: int,
    tol: float,
) -> list[tuple[int, int, list[tuple[int, int]], float]]:
    """The exact separation above, vectorised over demand paths: ``xv``, ``yv`` [line, period]
    (one item's production and setups), ``need`` [path, period], ``stock`` [path, period] (the
    stock at the end of each period in that path), ``late`` [period] (b[t-1], 0 when backlog is
    forbidden). Returns (path, k, S as (line index, period), relative violation)."""
    n = xv.shape[1]
    out = []
    for k in range(n):
        lo = max(0, k - reach)
        # dc[path, t] = need of t..k
        dc = np.cumsum(need[:, lo : k + 1][:, ::-1], axis=1)[:, ::-1]
        g = xv[None, :, lo : k + 1] - dc[:, None, :] * yv[None, :, lo : k + 1]
        pos = g > 1e-9
        part = np.where(pos, g, 0.0).sum(axis=1)  # [path, t]
        keep = pos.any(axis=1) & (part > late[None, lo : k + 1] + 1e-9)
        lhs = np.where(keep, part - late[None, lo : k + 1], 0.0).sum(axis=1)
        viol = lhs - stock[:, k]
        span = dc[:, 0]
        for path in np.nonzero((viol > tol * (1.0 + span)) & keep.any(axis=1))[0]:
            members = [
                (int(li), lo + int(t))
                for t in np.nonzero(keep[path])[0]
                for li in np.nonzero(pos[path, :, t])[0]
            ]
            out.append((int(path), k, members, float(viol[path] / (1.0 + span[path]))))
    return out


def separate_scenarios(
    m: pyo.ConcreteModel,
    d: ModelData,
    tol: float = 1e-3,
    max_cuts: int | None = None,
    reach: int = REACH,
) -> list[tuple[ScenarioCut, float]]:
    """Expected-profit mode: the (l,S) inequalities of each demand scenario, with its demand
    and its stock ``sk`` (valid in every scenario by the argument above, with that scenario's
    sales): ``sum_S x <= sum_S DS[i,t..k] y + sk[i,k,scenario] + sum_{T(S)} b[i,t-1]``. Their
    average over the scenarios is the mean-demand cut, but each alone is stronger wherever a
    scenario's stock would be negative in the average (a lot that some scenarios sell out)."""
    if not d.K or d.scenario_demand is None:
        return []
    n, nk = len(d.T), len(d.K)
    lines_of: dict[str, list[str]] = {}
    for i, ln in d.R:
        lines_of.setdefault(i, []).append(ln)
    found: list[tuple[ScenarioCut, float]] = []
    for i in d.I:
        lines = lines_of.get(i, [])
        if not lines:
            continue
        xv = np.array([[m.x[i, ln, t].value or 0.0 for t in d.T] for ln in lines])
        yv = np.array([[m.y[i, ln, t].value or 0.0 for t in d.T] for ln in lines])
        if not np.any((yv > 1e-9) & (yv < 1 - 1e-9)):
            continue  # integral setups: the point is a plan, which no valid cut cuts off
        need = np.array(
            [[d.scenario_demand[i, t, k] + d.firm[i, t] for t in d.T] for k in d.K]
        ).reshape(nk, n)
        stock = np.array([[m.sk[i, t, k].value or 0.0 for t in d.T] for k in d.K]).reshape(nk, n)
        late = np.zeros(n)
        if d.allow_backlog:
            late[1:] = [m.b[i, t].value or 0.0 for t in d.T[:-1]]
        for k_path, k, members, viol in _most_violated(xv, yv, need, stock, late, reach, tol):
            cut = (i, d.K[k_path], k, tuple((lines[li], t) for li, t in members))
            found.append((cut, viol))
    found.sort(key=lambda cv: -cv[1])
    return found[:max_cuts] if max_cuts else found


def _family_items(d: ModelData) -> dict[str, tuple[list[str], list[str]]]:
    """family -> (its lines with a changeover, the variants it makes on any of them)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for g, ln in d.FL:
        lines, items = out.setdefault(g, ([], []))
        lines.append(ln)
        for i in (d.members or {})[g, ln]:
            if i not in items:
                items.append(i)
    return out


def separate_families(
    m: pyo.ConcreteModel,
    d: ModelData,
    tol: float = 1e-3,
    max_cuts: int | None = None,
    reach: int = REACH,
) -> list[tuple[FamilyCut, float]]:
    """The (l,S) inequalities of a family's aggregate item (docs/formulation.md, "Family
    setups"): its members' production on the lines in S, the changeovers ``z`` as the setups,
    the members' summed demand and stock. Valid: with no changeover of S on, no member is made
    in S; else from the first period p with one on, everything the members make in p..k is sold
    in p..k or in stock at k. With the members' own (l,S) rows and ``y <= z`` they would be
    implied, but the model has those rows only for S = {t} (and on big plans k = t only)."""
    fams = _family_items(d)
    if not fams:
        return []
    n = len(d.T)
    found: list[tuple[FamilyCut, float]] = []
    for g, (lines, items) in fams.items():
        xv = np.array(
            [
                [sum(m.x[i, ln, t].value or 0.0 for i in (d.members or {})[g, ln]) for t in d.T]
                for ln in lines
            ]
        )
        yv = np.array([[m.z[g, ln, t].value or 0.0 for t in d.T] for ln in lines])
        need = np.array([[sum(d.demand[i, t] + d.firm[i, t] for i in items) for t in d.T]])
        stock = np.array([[sum(m.s[i, t].value or 0.0 for i in items) for t in d.T]])
        late = np.zeros(n)
        if d.allow_backlog:
            late[1:] = [sum(m.b[i, t].value or 0.0 for i in items) for t in d.T[:-1]]
        for _, k, members, viol in _most_violated(
            xv, yv, need.reshape(1, n), stock.reshape(1, n), late, reach, tol
        ):
            found.append(((g, k, tuple((lines[li], t) for li, t in members)), viol))
    found.sort(key=lambda cv: -cv[1])
    return found[:max_cuts] if max_cuts else found


def scenario_cut_expr(m: pyo.ConcreteModel, d: ModelData, cut: ScenarioCut) -> pyo.Expression:
    i, sc, k, members = cut
    assert d.scenario_demand is not None
    need = {t: d.scenario_demand[i, t, sc] + d.firm[i, t] for t in d.T}
    dc = {t: sum(need[tau] for tau in range(t, k + 1)) for t in {t for _, t in members}}
    lhs = sum(m.x[i, ln, t] for ln, t in members)
    rhs = sum(dc[t] * m.y[i, ln, t] for ln, t in members) + m.sk[i, k, sc]
    if d.allow_backlog:
        rhs += sum(m.b[i, t - 1] for t in sorted({t for _, t in members}) if t > 0)
    return lhs <= rhs


def family_cut_expr(m: pyo.ConcreteModel, d: ModelData, cut: FamilyCut) -> pyo.Expression:
    g, k, members = cut
    items = _family_items(d)[g][1]
    need = {t: sum(d.demand[i, t] + d.firm[i, t] for i in items) for t in d.T}
    dc = {t: sum(need[tau] for tau in range(t, k + 1)) for t in {t for _, t in members}}
    lhs = sum(m.x[i, ln, t] for ln, t in members for i in (d.members or {})[g, ln])
    rhs = sum(dc[t] * m.z[g, ln, t] for ln, t in members) + sum(m.s[i, k] for i in items)
    if d.allow_backlog:
        rhs += sum(m.b[i, t - 1] for t in sorted({t for _, t in members}) if t > 0 for i in items)
    return lhs <= rhs


def cut_expr(m: pyo.ConcreteModel, d: ModelData, cut: Cut) -> pyo.Expression:
    i, k, members = cut
    need = _need(d)
    dc = {t: sum(need[i, tau] for tau in range(t, k + 1)) for t in {t for _, t in members}}
    lhs = sum(m.x[i, ln, t] for ln, t in members)
    rhs = sum(dc[t] * m.y[i, ln, t] for ln, t in members) + m.s[i, k]
    if d.allow_backlog:
        rhs += sum(m.b[i, t - 1] for t in sorted({t for _, t in members}) if t > 0)
    return lhs <= rhs


def add_cuts(
    m: pyo.ConcreteModel,
    d: ModelData,
    cuts: list[Cut],
    scenario_cuts: list[ScenarioCut] | None = None,
    family_cuts: list[FamilyCut] | None = None,
) -> list[pyo.Constraint]:
    """Append the cuts to ``m.ls_cuts`` (a ConstraintList made on first use); returns the new
    constraint data objects (for a persistent solver's ``add_constraints``)."""
    if not hasattr(m, "ls_cuts"):
        m.ls_cuts = pyo.ConstraintList(doc="(l,S) inequalities separated on the LP relaxation")
    rows = [cut_expr(m, d, c) for c in cuts]
    rows += [scenario_cut_expr(m, d, c) for c in scenario_cuts or []]
    rows += [family_cut_expr(m, d, c) for c in family_cuts or []]
    return [m.ls_cuts.add(row) for row in rows]


#: The cut families ``cut_rounds`` can separate: the variants' (l,S) rows on the mean demand,
#: each demand scenario's, and the families' aggregate ones on the changeovers.
KINDS = ("item", "scenario", "family")


def cut_rounds(
    session: Session,
    d: ModelData,
    budget_s: float,
    rounds: int = 4,
    per_round: int | None = None,
    min_gain: float = 1e-4,
    kinds: tuple[str, ...] = ("item",),
) -> CutRounds:
    """Relax the setups, solve the LP, add violated (l,S) cuts, repeat (at most ``rounds``
    rounds, within ``budget_s``, until a round improves the bound by less than ``min_gain``
    relatively). The setups' domains are restored at the end; the cuts stay in the model and in
    the persistent solver. Every LP value is a valid bound of the MIP."""
    m = session.model
    t0 = time.perf_counter()
    free = [v for v in m.y.values() if not v.fixed]
    free += [v for v in m.z.values() if not v.fixed]  # family changeovers: relaxed with them
    for v in free:
        v.domain = pyo.UnitInterval
    bounds: list[float] = []
    added = 0
    last: RunResult | None = None
    per_round = per_round or 2 * len(d.I) * len(d.T)
    maximise = not d.clsp
    try:
        changed: list[pyo.Var] | None = free
        for r in range(rounds + 1):
            left = budget_s - (time.perf_counter() - t0)
            if left <= 0.5:
                break
            # the first LP by interior point (on the family plans dual simplex took minutes),
            # later ones by dual simplex from its basis, only the new rows added
            lp = session.run(left, 0.0, changed=changed, lp="ipm" if r == 0 else None)
            changed = []
            if lp.status != "optimal" or lp.objective is None:
                break
            last = lp
            if bounds:
                gain = (bounds[-1] - lp.objective) * (1 if maximise else -1)
                bounds.append(lp.objective)
                if gain < min_gain * max(1.0, abs(lp.objective)):
                    break
            else:
                bounds.append(lp.objective)
            if r == rounds:
                break
            cuts = separate(m, d, max_cuts=per_round) if "item" in kinds else []
            by_scenario = (
                separate_scenarios(m, d, max_cuts=per_round) if "scenario" in kinds else []
            )
            by_family = separate_families(m, d, max_cuts=per_round) if "family" in kinds else []
            if not (cuts or by_scenario or by_family):
                break
            new = add_cuts(
                m,
                d,
                [c for c, _ in cuts],
                [c for c, _ in by_scenario],
                [c for c, _ in by_family],
            )
            session.opt.add_constraints(new)
            added += len(new)
    finally:
        for v in free:
            v.domain = pyo.Binary
        session.update_variables(free)
    return CutRounds(tuple(bounds), added, time.perf_counter() - t0, last)
