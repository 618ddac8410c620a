"""Lagrangian relaxation of capacity and material availability (planning mode).

Dualising the line-hours rows with multipliers ``lam[l,t] >= 0`` and the cumulative material
rows (use up to t <= stock + arrivals up to t) with ``mu[m,t] >= 0`` leaves one uncapacitated
single-variant problem per variant, solved exactly by a dynamic programme over lots (the one in
:mod:`optimizer.core.start`, with the production cost of a lot made in ``j`` on line ``l`` raised by
``lam[l,j]`` per hour and ``sum_{t>=j} mu[m,t]`` per unit of material):

    L(lam, mu) = sum_i V_i(lam, mu) + sum_{l,t} lam C + sum_{l,t} OTMAX max(0, lam - OC)
                 + sum_{m,t} mu (STOCK + arrivals up to t) + revenue of initial stock, firm orders

With family changeovers the rows ``y <= z`` are relaxed too, with multipliers that split each
changeover's cost and hours (the latter priced at ``lam``) equally over the setups of its
members: a variant setup then costs its own setup plus its share, ``z`` drops out, and the
problem still decomposes per variant.

Every ``L`` is an upper bound on the profit (the relaxation drops minimum lots, setup bounds,
the previous plan and the cost and hours of firm orders, and prices the dualised rows); the
subgradient method lowers it. The multipliers also price capacity for the primal side: each
iterate's lots (on the eligible line-periods, firm orders included) are a setup pattern that
knows which lines and weeks are scarce, and the LP over that pattern is a plan. This is the
classic Lagrangian heuristic for capacitated lot sizing (Thizy & Van Wassenhove 1985;
Trigeiro, Thomas & McClain 1989, whose instances are in ../shared/data/lotsizing/trigeiro/).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from optimizer.core.data import ModelData, material_unit_cost
from optimizer.core.solver import RunResult
from optimizer.core.start import bound_demand, net_demand

if TYPE_CHECKING:
    from optimizer.core.setups import Setups
    from optimizer.core.solver import Session

Key3 = tuple[str, str, int]
EPS = 1e-9
#: The subgradient stops once its step factor (2 at the start) is halved below this.
THETA_MIN = 0.005


@dataclass(frozen=True)
class Evaluation:
    """One solve of the relaxed problem at (lam, mu)."""

    value: float  # L(lam, mu): an upper bound in bound mode
    lots: list[tuple[str, str, int]]  # (variant, line, period) of every lot
    hours: np.ndarray  # [line, period] hours the lots use (setups included)
    material: np.ndarray  # [material, period] material the lots use


class Relaxation:
    """The relaxed problem's data as arrays over routes (variant, line) and periods.

    ``primal=False``: the bounding problem (net of initial stock, firm orders outside, every
    period open). ``primal=True``: the pattern problem (firm orders in the demand, only the
    line-periods where the model lets a setup happen)."""

    def __init__(self, d: ModelData, primal: bool = False) -> None:
        n = self.n = len(d.T)
        self.items = list(d.I)
        idx = {i: k for k, i in enumerate(self.items)}
        mat = material_unit_cost(d)
        dem = np.zeros((len(self.items), n))
        price = np.zeros((len(self.items), n))
        const = np.zeros(len(self.items))  # revenue outside the DP: initial stock, firm orders
        for k, i in enumerate(self.items):
            if primal:
                dem[k], price[k], _ = net_demand(d, i, firm=True)
            else:
                dem[k], price[k], const[k] = bound_demand(d, i)
        self.dem, self.price, self.const = dem, price, const
        self.hold = np.array([d.hold[i] for i in self.items])
        self.lost = np.array([d.lost_cost[i] for i in self.items])
        self.routes = list(d.R)
        self.ir = np.array([idx[i] for i, _ in self.routes], dtype=np.int64)
        line_idx = {ln: k for k, ln in enumerate(d.L)}
        self.lr = np.array([line_idx[ln] for _, ln in self.routes], dtype=np.int64)
        self.unit0 = np.array([d.unit_cost[r] + mat[r[0]] for r in self.routes])
        self.a = np.array([d.a[r] for r in self.routes])
        # a family changeover enters as an equal share per member setup (a valid split of the
        # relaxed y <= z rows; docs/formulation.md, "Family setups")
        share = [d.route_share(*r) for r in self.routes]
        self.st = np.array([d.st[r] + h for r, (_, h) in zip(self.routes, share, strict=True)])
        self.sc = np.array([d.sc[r] + c for r, (c, _) in zip(self.routes, share, strict=True)])
        self.open = np.array(
            [[(not primal) or d.big_m[i, ln, t] > 0 for t in d.T] for i, ln in self.routes],
            dtype=bool,
        ).reshape(len(self.routes), n)
        self.routes_of: list[list[int]] = [[] for _ in self.items]
        for r, k in enumerate(self.ir):
            self.routes_of[int(k)].append(r)
        mat_idx = {m: k for k, m in enumerate(d.M)}
        self.usage = np.zeros((len(self.items), len(d.M)))
        for (i, m), u in d.usage.items():
            self.usage[idx[i], mat_idx[m]] += u
        self.cap = np.array([[d.cap[ln, t] for t in d.T] for ln in d.L]).reshape(len(d.L), n)
        self.ot_max = np.array([d.ot_max[ln] for ln in d.L])
        self.ot_cost = np.array([d.ot_cost[ln] for ln in d.L])
        arrivals = np.array([[d.arrivals[m, t] for t in d.T] for m in d.M]).reshape(len(d.M), n)
        stock = np.array([d.stock[m] for m in d.M]).reshape(len(d.M), 1)
        self.avail = stock + np.cumsum(arrivals, axis=1)

    def zeros(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros_like(self.cap), np.zeros_like(self.avail)

    def costs(self, lam: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[route, period] cost of a unit and of a setup, the dualised rows priced in."""
        # material price of a unit made in j: sum over the material rows it enters (t >= j)
        mu_tail = np.cumsum(mu[:, ::-1], axis=1)[:, ::-1]
        ir, lr = self.ir, self.lr
        unit = self.unit0[:, None] + lam[lr] * self.a[:, None] + (self.usage @ mu_tail)[ir]
        return unit, self.sc[:, None] + lam[lr] * self.st[:, None]

    def evaluate(self, lam: np.ndarray, mu: np.ndarray) -> Evaluation:
        n = self.n
        ir, lr = self.ir, self.lr
        unit_all, setup_all = self.costs(lam, mu)
        value = np.zeros((len(self.items), n + 1))
        lot_end = np.zeros((len(self.routes), n), dtype=np.int64)  # k: lot in j serves j..k-1
        lot_val = np.full((len(self.routes), n), -np.inf)
        lose = -self.lost[:, None] * self.dem
        for j in range(n - 1, -1, -1):
            ahead = np.arange(n - j)
            marg = (
                self.price[ir, j:]
                - unit_all[:, j : j + 1]
                - self.hold[ir][:, None] * ahead[None, :]
            )
            gain = np.maximum(marg, -self.lost[ir][:, None]) * self.dem[ir, j:]
            total = np.cumsum(gain, axis=1) - setup_all[:, j : j + 1] + value[ir, j + 1 :]
            best = np.argmax(total, axis=1)
            val = total[np.arange(len(self.routes)), best]
            val[~self.open[:, j]] = -np.inf
            lot_val[:, j] = val
            lot_end[:, j] = j + best + 1
            item_best = lose[:, j] + value[:, j + 1]
            np.maximum.at(item_best, ir, val)
            value[:, j] = item_best
        hours = np.zeros_like(self.cap)
        material = np.zeros_like(self.avail)
        lots: list[tuple[str, str, int]] = []
        for k, i in enumerate(self.items):
            j = 0
            while j < n:
                stay = lose[k, j] + value[k, j + 1]
                r = max(self.routes_of[k], key=lambda r: lot_val[r, j], default=None)
                if r is None or lot_val[r, j] <= stay + EPS * max(1.0, abs(stay)):
                    j += 1
                    continue
                end = int(lot_end[r, j])
                marg = self.price[k, j:end] - unit_all[r, j] - self.hold[k] * np.arange(end - j)
                qty = float(np.sum(self.dem[k, j:end][marg > -self.lost[k]]))
                hours[lr[r], j] += self.a[r] * qty + self.st[r]
                material[:, j] += self.usage[k] * qty
                lots.append((i, self.routes[r][1], j))
                j = end
        overtime = self.ot_max[:, None] * np.maximum(0.0, lam - self.ot_cost[:, None])
        total_value = (
            float(value[:, 0].sum())
            + float(self.const.sum())
            + float(np.sum(lam * self.cap) + np.sum(overtime) + np.sum(mu * self.avail))
        )
        return Evaluation(total_value, lots, hours, material)

    def subgradient(
        self, lam: np.ndarray, mu: np.ndarray, ev: Evaluation
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slack of the dualised rows at the relaxed solution (projected: a multiplier at 0
        whose row has slack stays at 0)."""
        g_cap = self.cap + self.ot_max[:, None] * (lam > self.ot_cost[:, None]) - ev.hours
        g_mat = self.avail - np.cumsum(ev.material, axis=1)
        g_cap[(lam <= 0) & (g_cap > 0)] = 0.0
        g_mat[(mu <= 0) & (g_mat > 0)] = 0.0
        return g_cap, g_mat


@dataclass(frozen=True)
class LagrangeOutcome:
    result: RunResult  # the best pattern's plan (its values loaded in the model)
    bound: float | None  # the lowest L found
    iterations: int
    patterns: int  # pattern LPs solved
    seconds: float


def lagrangian_start(
    session: Session,
    setups: Setups,
    d: ModelData,
    deadline: float,
    incumbent: RunResult,
    gap: float = 0.0,
    max_iterations: int = 400,
    pattern_every: int = 10,
) -> LagrangeOutcome:
    """Subgradient optimisation of (lam, mu) from 0, solving the LP over the primal pattern
    every ``pattern_every`` iterations (the setups the LP leaves idle are dropped and the LP
    solved again once). Starts from ``incumbent``, the plan over the setups fixed now (e.g.
    the DP pattern's), and keeps the best plan; the model's values end as that plan's. Polyak
    steps towards the incumbent's profit, halved after 10 iterations without a lower L. Stops
    at ``deadline``, after ``max_iterations``, when the step size has been halved 9 times (on
    the 200x52x3 bench plan the bound then moves by < 0.01% and the plans by < 0.1%), or when
    the best L is within ``gap`` of the best plan (relative, as HiGHS's gap)."""
    t0 = time.perf_counter()
    bound_rel = Relaxation(d)
    primal_rel = Relaxation(d, primal=True)
    m = session.model
    ids = {k: id(v) for k, v in m.y.items() if id(v) in setups.ids}
    lam, mu = bound_rel.zeros()
    best_bound = np.inf
    best = incumbent
    # loaded: the pattern whose plan the model's values hold
    best_pattern = loaded = setups.snapshot()
    theta, stall, iterations, patterns = 2.0, 0, 0, 0
    for it in range(max_iterations):
        if time.perf_counter() > deadline:
            break
        iterations = it + 1
        ev = bound_rel.evaluate(lam, mu)
        if ev.value < best_bound - 1e-9 * abs(ev.value):
            best_bound, stall = ev.value, 0
        else:
            stall += 1
            if stall >= 10:
                theta, stall = theta / 2, 0
        if it % pattern_every == pattern_every - 1:
            pattern = _pattern(primal_rel.evaluate(lam, mu), ids, d)
            res, loaded = pattern_plan(session, setups, pattern, deadline)
            patterns += 1
            if res.objective is not None and (
                best.objective is None or res.objective > best.objective
            ):
                best, best_pattern = res, loaded
        g_cap, g_mat = bound_rel.subgradient(lam, mu, ev)
        norm = float(np.sum(g_cap**2) + np.sum(g_mat**2))
        target = best.objective if best.objective is not None else 0.95 * ev.value
        close = best_bound - target <= max(gap, 1e-9) * abs(target)
        if norm <= 1e-12 or close or theta < THETA_MIN:
            break  # optimal multipliers, the bound meets the plan, or no more progress
        step = theta * (ev.value - target) / norm
        lam = np.maximum(0.0, lam - step * g_cap)
        mu = np.maximum(0.0, mu - step * g_mat)
    if loaded is not best_pattern:  # load the best plan's values back
        setups.fix(range(len(d.T)), best_pattern)
        left = max(1.0, deadline - time.perf_counter())
        again = session.run(left, 0.0, changed=setups.take(), lp="ipm")
        if again.has_solution:
            best = again
    return LagrangeOutcome(
        result=best,
        bound=None if not np.isfinite(best_bound) else float(best_bound),
        iterations=iterations,
        patterns=patterns,
        seconds=time.perf_counter() - t0,
    )


def _pattern(ev: Evaluation, ids: dict[Key3, int], d: ModelData) -> dict[int, float]:
    on = set(ev.lots)
    for (i, ln, t), qty in d.prev.items():  # the frozen plan's lots need their setups
        if t < d.frozen and qty > 0:
            on.add((i, ln, t))
    return {vid: 1.0 if k in on else 0.0 for k, vid in ids.items()}


def pattern_plan(
    session: Session, setups: Setups, pattern: dict[int, float], deadline: float
) -> tuple[RunResult, dict[int, float]]:
    """The LP over a setup pattern; setups it leaves idle cost hours and money for nothing, so
    they are dropped and the LP solved once more when any was idle."""
    m = session.model
    n = len(m.PERIODS)
    setups.fix(range(n), pattern)
    left = max(1.0, deadline - time.perf_counter())
    res = session.run(left, 0.0, changed=setups.take(), lp="ipm")
    if not res.has_solution:
        return res, pattern
    idle = {
        id(m.y[k])
        for k, x in m.x.items()
        if pattern.get(id(m.y[k]), 0.0) > 0.5 and (x.value is None or x.value <= 1e-6)
    }
    if not idle:
        return res, pattern
    # the first plan stays feasible without them (its x is 0 there), so this is never worse
    trimmed = {k: (0.0 if k in idle else v) for k, v in pattern.items()}
    setups.fix(range(n), trimmed)
    left = max(1.0, deadline - time.perf_counter())
    again = session.run(left, 0.0, changed=setups.take(), lp="ipm")
    return (again, trimmed) if again.has_solution else (res, pattern)
