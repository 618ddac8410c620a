"""The hindsight policy: the best production of the whole simulated span, knowing its demand.

Every policy's executed production ``x[v, l, t]`` (whole units, eligible lines only) is booked by
:mod:`services.simulate.accounting` against the week's realised demand ``d[v, t]``, starting
from no stock, and nothing else limits it: the book charges overtime above a line's regular hours
without a ceiling and does not draw materials from a stock. The hindsight problem is that book
as a planning problem over the simulated weeks ``0 .. W-1`` with the realised demand as certain:

    max  sum_t [ sum_v P q - sum_{v,l} c x - SC y - OC o - H s - LC u ]
    s.t. s[v,t-1] + sum_l x[v,l,t] = q[v,t] + s[v,t]      (s[v,-1] = 0, the policies' start)
         q + u = d,  sum_v A x + ST y <= CAP + o,  x <= M y,  x, q, u, s, o >= 0,  y binary

with the true prices, unit costs (materials included), hours, setup hours and costs, overtime
cost, holding and lost-sale rates of the book. It is solved by the planner's optimizer
(:func:`optimizer.solve`) as a quantile-mode problem whose quantiles all equal the realised demand,
without materials or firm orders and with an overtime ceiling no plan can reach.

Why it bounds every policy: a policy's executed weeks are one feasible point of this problem
(round production is a special case of continuous ``x``; ``y`` = 1 where it made something); the
book's sales ``min(d, stock + x)`` are one choice of ``q`` (selling later instead of now is never
better: the unit earns the same price later and pays holding meanwhile), so the problem's
objective at that point is at least the policy's realised profit. Hence the problem's optimum, and
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


def hindsight_problem(costs: TrueCosts, demand: np.ndarray) -> object:
    """The planning problem of the module docstring; ``demand`` [V, W] realised units."""
    from optimizer import Line, PlanningProblem, Route, Variant

    n_w = demand.shape[1]
    keep = np.flatnonzero(demand.sum(axis=1) > 0)
    if not len(keep):
        raise ValueError("no demand in the simulated weeks")
    periods = tuple(f"week {k}" for k in range(n_w))
    hold = costs.holding
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
            )
        )
        for ln in np.flatnonzero(~np.isnan(costs.unit_cost[v])):
            routes.append(
                Route(
                    variant=vid,
                    line=costs.line_ids[ln],
                    unit_cost=float(costs.unit_cost[v, ln]),
                    hours_per_unit=max(1e-6, float(costs.hours[v, ln])),
                )
            )
    # hours that making all the span's demand in one week would take: never binding
    most = float(
        (np.nan_to_num(costs.hours[keep]).max(axis=1) * demand[keep].sum(axis=1)).sum()
        + len(keep) * float(costs.setup_hours.max(initial=0.0))
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
    ).validate()


def solve_hindsight(
    costs: TrueCosts, demand: np.ndarray, *, time_limit_s: float, mip_rel_gap: float = 1e-4
) -> Hindsight:
    """Solve the hindsight problem of realised ``demand`` [V, W] and book its plan."""
    import time

    from optimizer import SolveOptions, solve

    t0 = time.perf_counter()
    problem = hindsight_problem(costs, demand)
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
