"""The simulated policies other than tailorline's own plan through the gateway.

All of them plan weeks ``t .. t+H-1`` with the planner's problem builder
(:func:`services.planning.build_problem`) and optimizer (``optimizer.solve``, in this process, one
HiGHS thread, the same time limit and gap as tailorline's plan) and make the first week's plan:

* **quantile_0.5/0.7/0.9**: the problem tailorline's own plan is made from (the served demand
  model's quantiles and the cost model's estimates, built by the gateway's
  :class:`~services.planning.service.Planner` in this process against the same predictor and
  store), planned in quantile mode at that service level: the demand quantile as if it were
  certain. They differ from tailorline only in the planning mode.
* **oracle**: the world's true demand distribution and true costs, in the planner's default mode
  (expected profit). Its demand scenarios are draws of the world's own generator (negative
  binomial stock units plus custom orders of ``2 + Poisson(4)`` units each; the weeks of a path
  are independent, as the world's are), handed to the optimizer as ``demand_scenarios``; its
  quantile table (for the problem and the forecast error) holds the true negative-binomial
  quantiles of all units.
* **naive**: a seasonal naive point forecast: the units ordered in the same week one year earlier
  (52 weeks) when the variant was already on sale then, else the mean of the last 4 known weeks,
  planned as certain (quantile mode at 0.5 of Poisson bands around it). True unit costs and
  hours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from services.common.quantiles import QUANTILE_COLUMNS, QUANTILES
from services.simulate.accounting import TrueCosts, production_matrix

SEASON = 52
FALLBACK_WEEKS = 4
#: The quantile policies' service levels.
QUANTILE_LEVELS = (0.5, 0.7, 0.9)
#: Custom order size: CUSTOM_MIN + Poisson(CUSTOM_EXTRA) (services.datagen.orders).
_CUSTOM_MIN, _CUSTOM_EXTRA = 2, 4.0


def quantile_name(level: float) -> str:
    return f"quantile_{level:g}"


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
    """Forecast rows from quantiles ``q`` [V, W, len(QUANTILES)]."""
    n_v, n_w = q.shape[:2]
    out = pd.DataFrame(
        {
            "variant_id": np.repeat(ids, n_w),
            "target_week": np.tile(np.asarray(weeks, dtype="datetime64[ns]"), n_v),
        }
    )
    for j, col in enumerate(QUANTILE_COLUMNS):
        out[col] = q[:, :, j].ravel()
    return out


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


def oracle_scenarios(world: Any, first: int, horizon: int, n: int, seed: int) -> np.ndarray:
    """``n`` demand paths per variant from the world's own generator, [V, n, horizon] units:
    stock units ~ NB(k, mu (1 - custom share)), custom units = sum of N ~ Poisson(mu share / 6)
    orders of 2 + Poisson(4) units each = 2 N + Poisson(4 N)."""
    weeks = np.arange(first, first + horizon)
    mu = world.expected_demand(weeks)  # [V, H]
    cat = world.catalog
    share = np.array([f.custom_share for f in cat.families])[cat.family][:, None]
    k = world.dispersion[cat.family][:, None]
    rng = np.random.default_rng([int(seed), 5, int(first)])
    mu_stock = np.broadcast_to(mu * (1.0 - share), (n, *mu.shape))
    stock = rng.negative_binomial(k, k / (k + np.maximum(mu_stock, 1e-12)))
    orders = rng.poisson(np.broadcast_to(mu * share / (_CUSTOM_MIN + _CUSTOM_EXTRA), stock.shape))
    custom = _CUSTOM_MIN * orders + rng.poisson(_CUSTOM_EXTRA * orders)
    return np.moveaxis((stock + custom).astype(float), 0, 1)


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
    """:func:`naive_point` with Poisson quantiles around it, as a forecast table."""
    from scipy.stats import poisson

    weeks = np.arange(first, first + horizon)
    point = naive_point(units, launch, known, weeks)
    q = np.stack([poisson.ppf(p, np.maximum(point, 1e-9)) for p in QUANTILES], axis=-1)
    dates = [pd.Timestamp(d) for d in world.week_date(weeks)]  # type: ignore[attr-defined]
    return _table(world.catalog.variant_id, dates, q.astype(float))  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- problems


def with_stock(problem: Any, stock: Mapping[str, float]) -> Any:
    """``problem`` with the finished units on hand of each variant (others: none)."""
    variants = tuple(
        replace(v, initial_inventory=float(stock.get(v.id, 0.0))) for v in problem.variants
    )
    return replace(problem, variants=variants)


def as_quantile(problem: Any, level: float) -> Any:
    """``problem`` planned in quantile mode at service level ``level``."""
    variants = tuple(
        replace(v, service_level=float(level), demand_scenarios=()) for v in problem.variants
    )
    return replace(problem, variants=variants, demand_mode="quantile")


def as_expected_profit(
    problem: Any, count: int, seed: int, paths: Mapping[str, np.ndarray] | None = None
) -> Any:
    """``problem`` in expected-profit mode over ``count`` scenarios (drawn with ``seed`` from the
    quantiles, or ``paths[variant]`` [count, periods] when given)."""
    variants = problem.variants
    if paths is not None:
        variants = tuple(
            replace(v, demand_scenarios=tuple(tuple(float(x) for x in row) for row in paths[v.id]))
            for v in variants
        )
    return replace(
        problem,
        variants=variants,
        demand_mode="expected_profit",
        scenario_count=int(count),
        scenario_seed=int(seed),
    )


def solve_first_week(problem: Any, time_limit_s: float, mip_rel_gap: float) -> list[Any]:
    """Solve in this process (one HiGHS thread); the first week's
    ``(variant_id, line_id, quantity)``."""
    from optimizer import SolveOptions, solve

    plan = solve(
        problem,
        SolveOptions(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, explain=False, threads=1),
    )
    return [(ln.variant, ln.line, float(ln.quantity)) for ln in plan.lines if ln.period == 0]


def stock_map(costs: TrueCosts, stock: np.ndarray) -> dict[str, float]:
    return {costs.variant_ids[i]: float(stock[i]) for i in np.flatnonzero(stock > 0)}


class ReferencePolicies:
    """The oracle and the naive policy of one world: their weekly problems and what they learn.

    ``frames``: the store's tables at the end of the history (as ``load_frames`` returns them);
    the realised orders of each simulated week are appended (:meth:`observe`), so firm custom
    orders enter the problems as they do in the gateway's."""

    names = ("oracle", "naive")

    def __init__(
        self,
        world: Any,
        frames: Mapping[str, pd.DataFrame],
        costs: TrueCosts,
        *,
        seed: int = 0,
        scenario_count: int = 32,
    ) -> None:
        self.world = world
        self.costs = costs
        self.seed = int(seed)
        self.scenario_count = int(scenario_count)
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

    def problem(self, name: str, t: int, horizon: int) -> tuple[Any, pd.Series]:
        """Week ``t``'s problem of policy ``name`` (no stock on hand yet) and its P50 of week t."""
        from services.planning import PlanRequest, build_problem, default_variants

        start = pd.Timestamp(self.world.week_date(np.array([t]))[0])
        ids = default_variants(self.frames, start)
        fc = self.forecast(name, t, horizon)
        fc = fc[fc["variant_id"].isin(ids)]
        request = PlanRequest(
            start_week=start, horizon=horizon, variant_ids=tuple(ids), name=f"{name} week {t}"
        )
        costs = self.cost_table[self.cost_table["variant_id"].isin(ids)]
        problem = build_problem(self.frames, fc, costs, request)
        if name == "oracle":
            draws = oracle_scenarios(self.world, t, horizon, self.scenario_count, self.seed)
            index = self.costs.variant_index(ids)
            paths = {vid: draws[i] for vid, i in zip(ids, index, strict=True)}
            problem = as_expected_profit(problem, self.scenario_count, t, paths)
        else:
            problem = as_quantile(problem, 0.5)
        first = fc[pd.to_datetime(fc["target_week"]) == start]
        return problem, first.set_index("variant_id")["p50"]

    def plan(
        self, name: str, t: int, stock: np.ndarray, *, horizon: int, time_limit_s: float,
        mip_rel_gap: float,
    ) -> tuple[np.ndarray, pd.Series]:  # fmt: skip
        """Week ``t``'s production [V, L] of policy ``name`` and the P50 it planned with."""
        problem, p50 = self.problem(name, t, horizon)
        rows = solve_first_week(
            with_stock(problem, stock_map(self.costs, stock)), time_limit_s, mip_rel_gap
        )
        return production_matrix(self.costs, rows), p50

    def observe(self, t: int, orders: pd.DataFrame, demand: np.ndarray) -> None:
        """Week ``t`` happened: ``orders`` (the orders table) and units per variant."""
        self.units[:, t] = demand
        self.frames["orders"] = pd.concat(
            [self.frames["orders"], orders.reindex(columns=self.order_columns)], ignore_index=True
        )


def quantile_plans(
    costs: TrueCosts,
    problem: Any,
    stocks: Mapping[str, np.ndarray],
    levels: Sequence[float],
    *,
    time_limit_s: float,
    mip_rel_gap: float,
) -> dict[str, np.ndarray]:
    """The quantile policies' first-week production [V, L] from tailorline's week problem."""
    out = {}
    for level in levels:
        name = quantile_name(level)
        p = with_stock(as_quantile(problem, level), stock_map(costs, stocks[name]))
        out[name] = production_matrix(costs, solve_first_week(p, time_limit_s, mip_rel_gap))
    return out
