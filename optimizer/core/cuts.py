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


def cut_expr(m: pyo.ConcreteModel, d: ModelData, cut: Cut) -> pyo.Expression:
    i, k, members = cut
    need = _need(d)
    dc = {t: sum(need[i, tau] for tau in range(t, k + 1)) for t in {t for _, t in members}}
    lhs = sum(m.x[i, ln, t] for ln, t in members)
    rhs = sum(dc[t] * m.y[i, ln, t] for ln, t in members) + m.s[i, k]
    if d.allow_backlog:
        rhs += sum(m.b[i, t - 1] for t in sorted({t for _, t in members}) if t > 0)
    return lhs <= rhs


def add_cuts(m: pyo.ConcreteModel, d: ModelData, cuts: list[Cut]) -> list[pyo.Constraint]:
    """Append the cuts to ``m.ls_cuts`` (a ConstraintList made on first use); returns the new
    constraint data objects (for a persistent solver's ``add_constraints``)."""
    if not hasattr(m, "ls_cuts"):
        m.ls_cuts = pyo.ConstraintList(doc="(l,S) inequalities separated on the LP relaxation")
    return [m.ls_cuts.add(cut_expr(m, d, c)) for c in cuts]


def cut_rounds(
    session: Session,
    d: ModelData,
    budget_s: float,
    rounds: int = 4,
    per_round: int | None = None,
    min_gain: float = 1e-4,
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
            lp = session.run(left, 0.0, changed=changed)
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
            cuts = separate(m, d, max_cuts=per_round)
            if not cuts:
                break
            new = add_cuts(m, d, [c for c, _ in cuts])
            session.opt.add_constraints(new)
            added += len(new)
    finally:
        for v in free:
            v.domain = pyo.Binary
        session.opt.update_variables(free)
    return CutRounds(tuple(bounds), added, time.perf_counter() - t0, last)
