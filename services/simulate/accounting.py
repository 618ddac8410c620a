"""Realised profit of one simulated week, with the world's true costs (the same for every policy).

One week of one policy: ``x[v, l]`` units are made (whole units), ``S0[v]`` were on hand, the world
orders ``d[v]`` units. Everything ordered in the week is demand of that week (stock and custom
orders alike); what cannot be served from stock is lost.

    available  A[v] = S0[v] + sum_l x[v, l]
    sales      q[v] = min(d[v], A[v]);   lost u[v] = d[v] - q[v];   end stock S1[v] = A[v] - q[v]
    revenue        = sum_v P[v] q[v]                               (P: list price)
    production     = sum_{v,l} (c[v, l] + sum_m U[v, m] MC[m]) x[v, l]   (true costs)
    setup          = sum_{v,l: x > 0} F[v, l]          (the fixed cost of a run, first-piece checks)
    changeover     = sum_{f,l: l makes f} G[f, l]      (the major setup of line l to family f)
    hours          H[l] = sum_v (h[v, l] x[v, l] + s[v, l] [x > 0]) + sum_f S[f, l] [l makes f]
    overtime       = sum_l OC[l] o[l] (H[l] - changeover hours of l),  o = max(0, H - CAP) / H
    holding        = sum_v holding_rate min_l c[v, l] S1[v]
    lost_sales     = sum_v lost_sale_rate P[v] u[v]    (goodwill, on top of lost revenue)
    profit         = revenue - production - setup - changeover - overtime - holding - lost_sales

These are the world's true costs (docs/synthetic-data.md, "Setups, lot sizes and overtime":
``World.expected_week_cost``): a run's fixed cost ``F`` and setup hours ``s`` per (variant, line),
a family changeover of ``S`` hours and ``G`` EUR once per (family, line, week) the line makes the
family in, and the overtime premium on the share of the line's hours above its regular capacity
(changeover crews are not paid overtime). A :class:`TrueCosts` without them (``run_cost`` None)
books the ``lines`` table's figures per setup and no changeovers; without changeovers the
overtime is ``OC max(0, H - CAP)`` either way.

The rates are the planner's defaults (holding 1% of the unit cost per week, lost sale 5% of the
price), so every policy's optimizer and this book value a unit the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOLDING_RATE = 0.01
LOST_SALE_RATE = 0.05


@dataclass(frozen=True)
class TrueCosts:
    """The world's true economics, indexed like the catalog (variants V, lines L)."""

    variant_ids: tuple[str, ...]
    line_ids: tuple[str, ...]
    price: np.ndarray  # [V]
    unit_cost: np.ndarray  # [V, L] per good unit, materials included; nan = not eligible
    hours: np.ndarray  # [V, L] processing hours per unit; nan = not eligible
    setup_cost: np.ndarray  # [L]
    setup_hours: np.ndarray  # [L]
    capacity_hours: np.ndarray  # [L] regular hours per week
    overtime_cost: np.ndarray  # [L] per hour
    holding_rate: float = HOLDING_RATE
    lost_sale_rate: float = LOST_SALE_RATE
    # the world's setup truth; None: the lines' setup_cost/setup_hours per run, no changeovers
    run_cost: np.ndarray | None = None  # [V, L] F: EUR per run; nan = not eligible
    run_setup_hours: np.ndarray | None = None  # [V, L] s: variant setup hours per run
    family: np.ndarray | None = None  # [V] index into family_ids
    family_ids: tuple[str, ...] = ()
    changeover_hours: np.ndarray | None = None  # [F, L] S; nan = not eligible
    changeover_cost: np.ndarray | None = None  # [F, L] G

    def setup_figures(self) -> tuple[np.ndarray, np.ndarray]:
        """(hours, EUR) of a run's setup per (variant, line), [V, L]: the world's truth, else the
        line's figures on every variant."""
        if self.run_cost is not None and self.run_setup_hours is not None:
            return np.nan_to_num(self.run_setup_hours), np.nan_to_num(self.run_cost)
        n_v = len(self.variant_ids)
        return np.tile(self.setup_hours, (n_v, 1)), np.tile(self.setup_cost, (n_v, 1))

    @property
    def has_families(self) -> bool:
        """Whether the world's family changeovers are known (family, their hours and cost)."""
        return (
            self.family is not None
            and self.changeover_hours is not None
            and self.changeover_cost is not None
        )

    def families_run(self, ran: np.ndarray) -> np.ndarray:
        """[F, L]: which families each line makes, from the runs ``ran`` [V, L] (no families:
        an empty [0, L])."""
        n_l = ran.shape[1]
        family = self.family
        if family is None or not self.has_families:
            return np.zeros((0, n_l), dtype=bool)
        out = np.zeros((len(self.family_ids), n_l), dtype=bool)
        np.logical_or.at(out, family, ran)
        return out

    @property
    def holding(self) -> np.ndarray:
        """Holding cost per unit and week, [V]."""
        return self.holding_rate * np.nanmin(self.unit_cost, axis=1)

    def variant_index(self, ids: pd.Series | np.ndarray | list[str]) -> np.ndarray:
        idx = pd.Index(self.variant_ids).get_indexer(pd.Index(list(ids)))
        if (idx < 0).any():
            raise ValueError("unknown variant id")
        return idx

    def line_index(self, ids: pd.Series | np.ndarray | list[str]) -> np.ndarray:
        idx = pd.Index(self.line_ids).get_indexer(pd.Index(list(ids)))
        if (idx < 0).any():
            raise ValueError("unknown line id")
        return idx


@dataclass(frozen=True)
class WeekBook:
    """One week of one policy."""

    revenue: float
    production: float
    setup: float
    overtime: float
    holding: float
    lost_sales: float
    demand_units: float
    sales_units: float
    made_units: float
    changeover: float = 0.0  # EUR of family changeovers
    changeovers: int = 0  # (family, line) pairs changed over in the week

    @property
    def profit(self) -> float:
        return (
            self.revenue
            - self.production
            - self.setup
            - self.changeover
            - self.overtime
            - self.holding
            - self.lost_sales
        )


def true_costs(world: object, lines: pd.DataFrame) -> TrueCosts:
    """:class:`TrueCosts` of a :class:`~services.datagen.world.World` and its ``lines`` table."""
    cat = world.catalog  # type: ignore[attr-defined]
    line_ids = tuple(ln.line_id for ln in cat.lines)
    table = lines.set_index("line_id").loc[list(line_ids)]
    material = cat.usage @ cat.materials["unit_cost"].to_numpy(dtype=float)  # [V]
    truth = world.setups  # type: ignore[attr-defined]
    return TrueCosts(
        variant_ids=tuple(str(v) for v in cat.variant_id),
        line_ids=line_ids,
        price=cat.list_price.astype(float),
        unit_cost=cat.unit_cost + material[:, None],
        hours=cat.hours.astype(float),
        setup_cost=table["setup_cost"].to_numpy(dtype=float),
        setup_hours=table["setup_hours"].to_numpy(dtype=float),
        capacity_hours=table["capacity_hours"].to_numpy(dtype=float),
        overtime_cost=table["overtime_cost_per_hour"].to_numpy(dtype=float),
        run_cost=np.asarray(truth.run_cost, dtype=float),
        run_setup_hours=np.asarray(truth.setup_hours, dtype=float),
        family=np.asarray(cat.family, dtype=np.int64),
        family_ids=tuple(str(f.family_id) for f in cat.families),
        changeover_hours=np.asarray(truth.family_hours, dtype=float),
        changeover_cost=np.asarray(truth.family_cost, dtype=float),
    )


def account_week(
    costs: TrueCosts, stock: np.ndarray, made: np.ndarray, demand: np.ndarray
) -> tuple[WeekBook, np.ndarray]:
    """Book one week (module docstring); returns the book and the end stock ``S1`` [V].

    ``made`` [V, L] is rounded to whole units; production on an ineligible line is an error."""
    made = np.rint(np.maximum(made, 0.0))
    ran = made > 0
    if np.isnan(np.where(ran, costs.unit_cost, 0.0)).any():
        raise ValueError("production on a line that is not eligible for the variant")
    available = stock + made.sum(axis=1)
    sales = np.minimum(demand, available)
    lost = demand - sales
    end = available - sales
    _, setup_c = costs.setup_figures()
    work, major, families = line_hours(costs, made)  # [L] overtime is paid on ``work`` only
    changeover = 0.0
    if families.size and costs.changeover_cost is not None:
        changeover = float(np.where(families, np.nan_to_num(costs.changeover_cost), 0.0).sum())
    share = 1.0 - _regular(costs, work + major)  # the overtime share of the line's hours
    book = WeekBook(
        revenue=float(costs.price @ sales),
        production=float(np.where(ran, np.nan_to_num(costs.unit_cost) * made, 0.0).sum()),
        setup=float(np.where(ran, setup_c, 0.0).sum()),
        overtime=float(costs.overtime_cost @ (share * work)),
        holding=float(costs.holding @ end),
        lost_sales=float(costs.lost_sale_rate * (costs.price @ lost)),
        demand_units=float(demand.sum()),
        sales_units=float(sales.sum()),
        made_units=float(made.sum()),
        changeover=changeover,
        changeovers=int(families.sum()),
    )
    return book, end


def line_hours(costs: TrueCosts, made: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of a week's production ``made`` [V, L] (whole units): the work hours per line [L]
    (processing and variant setups), the changeover hours per line [L] (the module docstring's
    ``H`` is their sum) and which families each line makes [F, L]."""
    made = np.rint(np.maximum(made, 0.0))
    ran = made > 0
    setup_h, _ = costs.setup_figures()
    work = np.where(ran, np.nan_to_num(costs.hours) * made + setup_h, 0.0).sum(axis=0)
    families = costs.families_run(ran)
    major = np.zeros(made.shape[1])
    if families.size and costs.changeover_hours is not None:
        major = np.where(families, np.nan_to_num(costs.changeover_hours), 0.0).sum(axis=0)
    return work, major, families


def _regular(costs: TrueCosts, load: np.ndarray) -> np.ndarray:
    """``min(1, CAP / H)`` per line for its hours ``load`` [L]."""
    over = load > costs.capacity_hours
    return np.where(over, costs.capacity_hours / np.maximum(load, 1e-12), 1.0)


def regular_share(costs: TrueCosts, made: np.ndarray) -> np.ndarray:
    """Per line, the share of its hours that is regular time, ``min(1, CAP / H)`` [L], in a week
    of production ``made`` [V, L] (what :mod:`services.simulate.hindsight` needs to count the
    changeover hours of its bound)."""
    work, major, _ = line_hours(costs, made)
    return _regular(costs, work + major)


def production_matrix(costs: TrueCosts, plan_lines: list[tuple[str, str, float]]) -> np.ndarray:
    """``[V, L]`` units from ``(variant_id, line_id, quantity)`` rows (summed)."""
    out = np.zeros((len(costs.variant_ids), len(costs.line_ids)))
    if plan_lines:
        v = costs.variant_index([r[0] for r in plan_lines])
        ln = costs.line_index([r[1] for r in plan_lines])
        np.add.at(out, (v, ln), [float(r[2]) for r in plan_lines])
    return out


def net_against_stock(made: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """A plan made as if nothing were on hand, netted against ``stock`` (MRP netting): each
    variant's production is cut by its stock, from the line with the least planned first."""
    out = made.copy()
    cut = np.minimum(stock, out.sum(axis=1))
    for v in np.flatnonzero(cut > 0):
        left = cut[v]
        for ln in np.argsort(out[v]):
            take = min(left, out[v, ln])
            out[v, ln] -= take
            left -= take
            if left <= 0:
                break
    return out
