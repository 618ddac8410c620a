"""What a simulated week asks of a policy: stock orders when placed, custom orders when due.

The world has two kinds of orders (services.datagen.orders): **stock** orders (small, due 3-10
days after ordering: served from finished stock in the week they are placed) and **custom**
(made-to-order) orders of 2 + Poisson(4) units, due 2-6 whole weeks after they are placed. A
custom order is firm, known demand with a due date: the planner sees it as a firm order from the
week after it is placed (``services.planning.build_problem``), and it is needed in its due week,
not the week it was placed. So the demand a week books (:mod:`services.simulate.accounting`) is

    d[v, t] = units of stock orders of v placed in week t + units of custom orders of v due in t

and every unit is counted once. Custom orders placed in the history and due inside the simulated
span count in their due week; custom orders due after the span do not count (the span's stock is
worth nothing after it either). The same ``d`` is every policy's and hindsight's demand (common
random numbers: it depends on the seed and the weeks alone).

``ordered[v, t]`` (every unit ordered in week t, both kinds) is what the demand model forecasts
(its target is the units ordered per week); the forecast error (WAPE) is measured against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class DemandBook:
    """The booked demand of weeks ``first .. first + weeks - 1`` of one world, filled week by
    week (:meth:`add_week`), with the custom orders of the history already due in them."""

    def __init__(self, world: Any, costs: Any, first: int, weeks: int,
                 history: pd.DataFrame | None = None) -> None:  # fmt: skip
        self.world = world
        self.costs = costs
        self.first = int(first)
        self.weeks = int(weeks)
        n_v = len(costs.variant_ids)
        self.stock_units = np.zeros((n_v, self.weeks))
        self.custom_due = np.zeros((n_v, self.weeks))
        self.ordered = np.zeros((n_v, self.weeks))
        if history is not None and len(history):
            placed = world.week_index(pd.to_datetime(history["order_date"]).to_numpy())
            self._add_custom(history[placed < self.first])

    def _add_custom(self, orders: pd.DataFrame) -> None:
        custom = orders[orders["kind"].astype(str) == "custom"]
        if not len(custom):
            return
        due = self.world.week_index(pd.to_datetime(custom["due_date"]).to_numpy()) - self.first
        keep = (due >= 0) & (due < self.weeks)
        np.add.at(
            self.custom_due,
            (self.costs.variant_index(custom["variant_id"][keep]), due[keep]),
            pd.to_numeric(custom["quantity"][keep]).to_numpy(dtype=float),
        )

    def add_week(self, k: int, orders: pd.DataFrame) -> None:
        """The orders placed in simulated week ``k`` (the world's ``orders`` table of the week)."""
        units = pd.to_numeric(orders["quantity"]).to_numpy(dtype=float)
        index = self.costs.variant_index(orders["variant_id"])
        np.add.at(self.ordered[:, k], index, units)
        stock = (orders["kind"].astype(str) != "custom").to_numpy()
        np.add.at(self.stock_units[:, k], index[stock], units[stock])
        self._add_custom(orders)

    def demand(self, k: int) -> np.ndarray:
        """Units week ``k`` asks for, per variant [V] (module docstring)."""
        return self.stock_units[:, k] + self.custom_due[:, k]

    @property
    def path(self) -> np.ndarray:
        """[V, weeks]: every week's :meth:`demand` (complete once every week is added)."""
        return self.stock_units + self.custom_due
