"""The hindsight policy: the best production of the whole simulated span, knowing its demand.

Every policy's executed production ``x[v, l, t]`` (whole units, eligible lines only) is booked by
:mod:`services.simulate.accounting` against the week's realised demand ``d[v, t]``, starting
from no stock, and nothing else limits it: the book charges overtime above a line's regular hours
without a ceiling and does not draw materials from a stock. The hindsight problem is that book
as a planning problem over the simulated weeks ``0 .. W-1`` with the realised demand as certain:

    max  sum_t [ sum_v P q - sum_{v,l} c x - F y - sum_{f,l} G z - OC o - H s - LC u ]
    s.t. s[v,t-1] + sum_l x[v,l,t] = q[v,t] + s[v,t]      (s[v,-1] = 0, the policies' start)
         q + u = d,  sum_v (A x + ST y) <= CAP + o,  x <= M y,  y[v,l,t] <= z[f(v),l,t],
         x, q, u, s, o >= 0,  y, z binary

with the true prices, unit costs (materials included), hours, each run's setup hours ``ST`` and
fixed cost ``F``, the family changeovers' cost ``G``, overtime cost, holding and lost-sale rates of
the book. It is solved by the planner's optimizer (:func:`optimizer.solve`) as a quantile-mode
problem whose quantiles all equal the realised demand, without materials or firm orders and with
an overtime ceiling no plan can reach; the changeovers are its ``family_setups`` with their cost
and ``a`` times their hours (below).

Why it bounds every policy: a policy's executed weeks are one feasible point of this problem
(round production is a special case of continuous ``x``; ``y`` = 1 where it made something, ``z``
= 1 where a line made the family); the book's sales ``min(d, stock + x)`` are one choice of ``q``
(selling later instead of now is never better: the unit earns the same price later and pays
holding meanwhile). The book pays overtime on the processing and setup hours ``W`` of a line only,
at the share ``(W + C - CAP) / (W + C)`` of them above capacity, where ``C`` are the changeover
hours; this problem counts the changeovers at ``a`` times their hours and charges
``OC max(0, W + a C - CAP)``, which is never more where ``a <= CAP / (W + C)``: then
``(W + C - CAP) W - (W + C) (W + a C - CAP) = C (CAP - a (W + C)) >= 0``, and below capacity both
are 0. ``a`` per line is the least regular share ``min(1, CAP / (W + C))`` of any week any policy
booked (:func:`services.simulate.accounting.regular_share`; 0 when not given, valid for any plan),
so the bound is exact where no policy worked overtime and loosens by at most
``OC C (CAP / (W + C) - a)`` a line-week. So the problem's objective at every policy's point is at
least that policy's realised profit. Hence its optimum, and
a fortiori the solver's dual bound on it, is at least every policy's profit. The policies' rolling
horizon (they see H weeks ahead and replan weekly) only restricts what they can do; the stock
they leave at the end is worth nothing to them and nothing here. Leaving out variants with no
demand in the span, and capping ``x`` at the demand still to come (the optimizer's big-M), cut
off only plans that a cheaper one dominates, so the optimum is unchanged.

The upper bound reported is the solver's dual bound (at least the objective of the best plan
found); ``plan_profit`` is that plan booked like every policy (its quantities rounded to units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.simulate.accounting import TrueCosts, WeekBook, account_week


@dataclass(frozen=True)
class Hindsight:
    """The hindsight solve of one world: its bound, its best plan's weekly books."""

    bound: float  # upper bound on any policy's realised profit over the span
    books: list[WeekBook]  # the best plan found, booked week by week
    status: str
    gap: float | None
    seconds: float

    @property
    def plan_profit(self) -> float:
        return float(sum(b.profit for b in self.books))


def hindsight_problem(
    costs: TrueCosts, demand: np.ndarray, changeover_share: np.ndarray | None = None
) -> object:
    """The planning problem of the module docstring; ``demand`` [V, W] realised units,
    ``changeover_share`` [L] the share ``a`` of the changeover hours counted (default 0)."""
    share = np.zeros(len(costs.line_ids)) if changeover_share is None else changeover_share
    if not (np.all(share >= 0) and np.all(share <= 1)):
        raise ValueError("changeover_share must lie in [0, 1]")
    from optimizer import FamilySetup, Line, PlanningProblem, Route, Variant

    n_w = demand.shape[1]
    keep = np.flatnonzero(demand.sum(axis=1) > 0)
    if not len(keep):
        raise ValueError("no demand in the simulated weeks")
    periods = tuple(f"week {k}" for k in range(n_w))
    hold = costs.holding
    setup_h, setup_c = costs.setup_figures()
    families = costs.has_families
    variants = []
    routes = []
    for v in keep:
        vid = costs.variant_ids[v]
        price = float(costs.price[v])
        variants.append(
            Variant(
                id=vid,
                price=(price,) * n_w,
                demand=tuple((float(x),) for x in demand[v]),
                holding_cost=float(hold[v]),
                lost_sale_cost=float(costs.lost_sale_rate * price),
                family=costs.family_ids[costs.family[v]] if families else "",  # type: ignore[index]
            )
        )
        for ln in np.flatnonzero(~np.isnan(costs.unit_cost[v])):
            routes.append(
                Route(
                    variant=vid,
                    line=costs.line_ids[ln],
                    unit_cost=float(costs.unit_cost[v, ln]),
                    hours_per_unit=max(1e-6, float(costs.hours[v, ln])),
                    setup_hours=float(setup_h[v, ln]),
                    setup_cost=float(setup_c[v, ln]),
                )
            )
    changeovers = []
    if families:
        assert costs.family is not None and costs.changeover_cost is not None
        assert costs.changeover_hours is not None
        used = sorted({int(f) for f in costs.family[keep]})
        for f in used:
            for ln in np.flatnonzero(~np.isnan(costs.changeover_cost[f])):
                changeovers.append(
                    FamilySetup(
                        line=costs.line_ids[ln],
                        family=costs.family_ids[f],
                        hours=float(share[ln] * costs.changeover_hours[f, ln]),
                        cost=float(costs.changeover_cost[f, ln]),
                    )
                )
    # hours that making all the span's demand in one week would take: never binding
    most = float(
        (np.nan_to_num(costs.hours[keep]).max(axis=1) * demand[keep].sum(axis=1)).sum()
        + len(keep) * float(setup_h[keep].max(initial=0.0))
    )
    lines = tuple(
        Line(
            id=costs.line_ids[ln],
            capacity_hours=(float(costs.capacity_hours[ln]),) * n_w,
            overtime_max_hours=most + 1.0,
            overtime_cost=float(costs.overtime_cost[ln]),
            setup_hours=float(costs.setup_hours[ln]),
            setup_cost=float(costs.setup_cost[ln]),
        )
        for ln in range(len(costs.line_ids))
    )
    return PlanningProblem(
        periods=periods,
        variants=tuple(variants),
        lines=lines,
        routes=tuple(routes),
        quantiles=(0.5,),
        allow_backlog=False,
        name="hindsight",
        family_setups=tuple(changeovers),
    ).validate()


def solve_hindsight(
    costs: TrueCosts,
    demand: np.ndarray,
    *,
    time_limit_s: float,
    mip_rel_gap: float = 1e-4,
    changeover_share: np.ndarray | None = None,
) -> Hindsight:
    """Solve the hindsight problem of realised ``demand`` [V, W] and book its plan;
    ``changeover_share``: the least regular share per line of the policies' weeks (module doc)."""
    import time

    from optimizer import SolveOptions, solve

    t0 = time.perf_counter()
    problem = hindsight_problem(costs, demand, changeover_share)
    plan = solve(
        problem,  # type: ignore[arg-type]
        SolveOptions(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, explain=False, threads=1),
    )
    n_v, n_w = demand.shape
    made = np.zeros((n_v, len(costs.line_ids), n_w))
    if plan.lines:
        v = costs.variant_index([pl.variant for pl in plan.lines])
        ln = costs.line_index([pl.line for pl in plan.lines])
        week = np.array([pl.period for pl in plan.lines], dtype=np.int64)
        np.add.at(made, (v, ln, week), np.array([pl.quantity for pl in plan.lines]))
    books: list[WeekBook] = []
    stock = np.zeros(n_v)
    for t in range(n_w):
        book, stock = account_week(costs, stock, made[:, :, t], demand[:, t])
        books.append(book)
    booked = float(sum(b.profit for b in books))
    if plan.best_bound is not None:
        dual = float(plan.best_bound)
    elif plan.status == "optimal" and plan.objective is not None:
        dual = float(plan.objective)
    else:  # a plan without a proven bound bounds nothing
        raise RuntimeError(f"the hindsight solve proved no bound ({plan.message})")
    # the booked plan is a feasible point of the same problem: the bound is never below it
    bound = max(dual, booked)
    return Hindsight(
        bound=bound,
        books=books,
        status=plan.status,
        gap=plan.gap,
        seconds=time.perf_counter() - t0,
    )
