"""The two reference policies: the same problem builder and optimizer, other demand and costs.

* **oracle**: the world's true demand distribution. Per variant and week the P10/P50/P90 of a
  negative binomial with the true expected units ``mu`` (all orders) and the family's true
  dispersion ``k`` (Var = mu + mu^2 / k); true unit costs and hours.
* **naive**: a seasonal naive point forecast: the units ordered in the same week one year earlier
  (52 weeks) when the variant was already on sale then, else the mean of the last 4 known weeks;
  P10/P50/P90 are Poisson quantiles around it (a point forecast carries no spread of its own).
  True unit costs and hours, so the gap to the oracle is the forecast's alone.

Both are solved in this process (``optimizer.solve``), built by
:func:`services.planning.build_problem` from the same store frames the gateway reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from services.common.quantiles import QUANTILES
from services.simulate.accounting import TrueCosts, production_matrix

SEASON = 52
FALLBACK_WEEKS = 4


def true_cost_table(costs: TrueCosts, world: object) -> pd.DataFrame:
    """``variant_id, line_id, unit_cost, hours_per_unit`` of the world (materials excluded: the
    builder adds them from the BOM)."""
    cat = world.catalog  # type: ignore[attr-defined]
    v, ln = np.nonzero(~np.isnan(cat.hours))
    return pd.DataFrame(
        {
            "variant_id": np.asarray(costs.variant_ids, dtype=object)[v],
            "line_id": np.asarray(costs.line_ids, dtype=object)[ln],
            "unit_cost": cat.unit_cost[v, ln],
            "hours_per_unit": cat.hours[v, ln],
        }
    )


def _table(ids: np.ndarray, weeks: list[pd.Timestamp], q: np.ndarray) -> pd.DataFrame:
    """Forecast rows from quantiles ``q`` [V, W, 3]."""
    n_v, n_w = q.shape[:2]
    return pd.DataFrame(
        {
            "variant_id": np.repeat(ids, n_w),
            "target_week": np.tile(np.asarray(weeks, dtype="datetime64[ns]"), n_v),
            "p10": q[:, :, 0].ravel(),
            "p50": q[:, :, 1].ravel(),
            "p90": q[:, :, 2].ravel(),
        }
    )


def oracle_forecast(world: object, first: int, horizon: int) -> pd.DataFrame:
    """True demand quantiles of every variant for weeks ``first .. first + horizon - 1``."""
    from scipy.stats import nbinom

    w = world  # a services.datagen.world.World
    weeks = np.arange(first, first + horizon)
    mu = np.maximum(w.expected_demand(weeks), 1e-9)  # type: ignore[attr-defined]
    k = w.dispersion[w.catalog.family][:, None]  # type: ignore[attr-defined]
    q = np.stack([nbinom.ppf(p, k, k / (k + mu)) for p in QUANTILES], axis=-1)
    dates = [pd.Timestamp(d) for d in w.week_date(weeks)]  # type: ignore[attr-defined]
    return _table(w.catalog.variant_id, dates, q.astype(float))  # type: ignore[attr-defined]


def naive_point(units: np.ndarray, launch: np.ndarray, known: int, weeks: np.ndarray) -> np.ndarray:
    """Seasonal naive units [V, W] for target ``weeks`` from ``units`` [V, known] (units ordered
    per variant and week index 0..known-1) and each variant's ``launch`` week index."""
    recent = units[:, max(0, known - FALLBACK_WEEKS) : known].mean(axis=1)
    out = np.empty((units.shape[0], len(weeks)))
    for j, t in enumerate(weeks):
        back = t - SEASON
        if 0 <= back < known:
            on_sale = launch <= back
            out[:, j] = np.where(on_sale, units[:, back], recent)
        else:
            out[:, j] = recent
    return out


def naive_forecast(
    units: np.ndarray, launch: np.ndarray, known: int, world: object, first: int, horizon: int
) -> pd.DataFrame:
    """:func:`naive_point` with Poisson P10/P50/P90 around it, as a forecast table."""
    from scipy.stats import poisson

    weeks = np.arange(first, first + horizon)
    point = naive_point(units, launch, known, weeks)
    q = np.stack([poisson.ppf(p, np.maximum(point, 1e-9)) for p in QUANTILES], axis=-1)
    dates = [pd.Timestamp(d) for d in world.week_date(weeks)]  # type: ignore[attr-defined]
    return _table(world.catalog.variant_id, dates, q.astype(float))  # type: ignore[attr-defined]


def plan_first_week(
    frames: Mapping[str, pd.DataFrame],
    forecast: pd.DataFrame,
    costs: pd.DataFrame,
    *,
    start: pd.Timestamp,
    horizon: int,
    service_level: float,
    stock: Mapping[str, float],
    time_limit_s: float,
    mip_rel_gap: float,
    name: str,
) -> list[tuple[str, str, float]]:
    """Build and solve one rolling-horizon problem in process; the first week's
    ``(variant_id, line_id, quantity)``."""
    from optimizer import SolveOptions, solve
    from services.planning import PlanRequest, build_problem, default_variants

    ids = default_variants(frames, start)
    request = PlanRequest(
        start_week=start,
        horizon=horizon,
        service_level=service_level,
        variant_ids=tuple(ids),
        name=name,
        initial_inventory=tuple((v, float(stock[v])) for v in ids if stock.get(v, 0.0) > 0),
    )
    fc = forecast[forecast["variant_id"].isin(ids)]
    problem = build_problem(frames, fc, costs[costs["variant_id"].isin(ids)], request)
    plan = solve(
        problem,
        SolveOptions(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, explain=False),
    )
    return [(ln.variant, ln.line, float(ln.quantity)) for ln in plan.lines if ln.period == 0]


class ReferencePolicies:
    """The oracle and the naive policy of one world: their weekly plans and what they learn.

    ``frames``: the store's tables at the end of the history (as ``load_frames`` returns them);
    the realised orders of each simulated week are appended (:meth:`observe`), so firm custom
    orders enter the problems as they do in the gateway's."""

    names = ("oracle", "naive")

    def __init__(self, world: Any, frames: Mapping[str, pd.DataFrame], costs: TrueCosts) -> None:
        self.world = world
        self.costs = costs
        self.cost_table = true_cost_table(costs, world)
        self.frames = dict(frames)
        self.order_columns = list(frames["orders"].columns)
        n_hist = world.n_weeks
        self.units = np.zeros((len(costs.variant_ids), world.n_path_weeks))
        hist = frames["orders"]
        week = world.week_index(pd.to_datetime(hist["order_date"]).to_numpy())
        keep = week < n_hist
        np.add.at(
            self.units,
            (costs.variant_index(hist["variant_id"][keep]), week[keep]),
            pd.to_numeric(hist["quantity"][keep]).to_numpy(dtype=float),
        )
        self.launch = world.catalog.launch_week

    def forecast(self, name: str, t: int, horizon: int) -> pd.DataFrame:
        if name == "oracle":
            return oracle_forecast(self.world, t, horizon)
        return naive_forecast(self.units, self.launch, t, self.world, t, horizon)

    def plan(
        self,
        name: str,
        t: int,
        stock: np.ndarray,
        *,
        horizon: int,
        service_level: float,
        time_limit_s: float,
        mip_rel_gap: float,
    ) -> tuple[np.ndarray, pd.Series]:
        """Week ``t``'s production [V, L] of policy ``name`` and the P50 it planned with."""
        start = pd.Timestamp(self.world.week_date(np.array([t]))[0])
        fc = self.forecast(name, t, horizon)
        rows = plan_first_week(
            self.frames,
            fc,
            self.cost_table,
            start=start,
            horizon=horizon,
            service_level=service_level,
            stock={self.costs.variant_ids[i]: float(stock[i]) for i in np.flatnonzero(stock > 0)},
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
            name=f"{name} week {t}",
        )
        first = fc[pd.to_datetime(fc["target_week"]) == start]
        return production_matrix(self.costs, rows), first.set_index("variant_id")["p50"]

    def observe(self, t: int, orders: pd.DataFrame, demand: np.ndarray) -> None:
        """Week ``t`` happened: ``orders`` (the orders table) and units per variant."""
        self.units[:, t] = demand
        self.frames["orders"] = pd.concat(
            [self.frames["orders"], orders.reindex(columns=self.order_columns)], ignore_index=True
        )
