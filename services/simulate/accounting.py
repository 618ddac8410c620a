"""Realised profit of one simulated week, with the world's true costs (the same for every policy).

One week of one policy: ``x[v, l]`` units are made (whole units), ``S0[v]`` were on hand, the world
orders ``d[v]`` units. Everything ordered in the week is demand of that week (stock and custom
orders alike); what cannot be served from stock is lost.

    available  A[v] = S0[v] + sum_l x[v, l]
    sales      q[v] = min(d[v], A[v]);   lost u[v] = d[v] - q[v];   end stock S1[v] = A[v] - q[v]
    revenue        = sum_v P[v] q[v]                               (P: list price)
    production     = sum_{v,l} (c[v, l] + sum_m U[v, m] MC[m]) x[v, l]   (true costs)
    setup          = sum_{v,l: x > 0} SC[l]
    overtime       = sum_l OC[l] max(0, sum_v h[v, l] x[v, l] + ST[l] n_setups[l] - CAP[l])
    holding        = sum_v holding_rate min_l c[v, l] S1[v]
    lost_sales     = sum_v lost_sale_rate P[v] u[v]    (goodwill, on top of lost revenue)
    profit         = revenue - production - setup - overtime - holding - lost_sales

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

    @property
    def profit(self) -> float:
        return (
            self.revenue - self.production - self.setup - self.overtime - self.holding
        ) - self.lost_sales


def true_costs(world: object, lines: pd.DataFrame) -> TrueCosts:
    """:class:`TrueCosts` of a :class:`~services.datagen.world.World` and its ``lines`` table."""
    cat = world.catalog  # type: ignore[attr-defined]
    line_ids = tuple(ln.line_id for ln in cat.lines)
    table = lines.set_index("line_id").loc[list(line_ids)]
    material = cat.usage @ cat.materials["unit_cost"].to_numpy(dtype=float)  # [V]
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
    setups = ran.sum(axis=0)
    hours = np.where(ran, np.nan_to_num(costs.hours) * made, 0.0).sum(axis=0)
    over = np.maximum(0.0, hours + costs.setup_hours * setups - costs.capacity_hours)
    book = WeekBook(
        revenue=float(costs.price @ sales),
        production=float(np.where(ran, np.nan_to_num(costs.unit_cost) * made, 0.0).sum()),
        setup=float(costs.setup_cost @ setups),
        overtime=float(costs.overtime_cost @ over),
        holding=float(costs.holding @ end),
        lost_sales=float(costs.lost_sale_rate * (costs.price @ lost)),
        demand_units=float(demand.sum()),
        sales_units=float(sales.sum()),
        made_units=float(made.sum()),
    )
    return book, end


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
