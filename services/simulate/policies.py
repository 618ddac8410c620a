"""The simulated policies other than tailorline's own plan through the gateway.

All of them plan weeks ``t .. t+H-1`` with the planner's problem builder
(:func:`services.planning.build_problem`) and optimizer (``optimizer.solve``, one HiGHS thread,
the same time limit and gap as tailorline's plan) and make the first week's plan. The problems are
built in the simulator's process and solved in a small process pool (:class:`Solver`), one of
them beside tailorline's plan in the optimizer's process and two at a time once it is made
(:meth:`Solver.solve_beside`): on two cores every plan gets about one for its time limit.

* **quantile_0.5/0.7/0.9**: the problem tailorline's own plan is made from (the served demand
  model's quantiles and the cost model's estimates, built by the gateway's
  :class:`~services.planning.service.Planner` in this process against the same predictor and
  store), planned in quantile mode at that service level: the demand quantile as if it were
  certain. They differ from tailorline only in the planning mode.
* **oracle**: the world's true demand distribution and true costs, in the planner's default mode
  (expected profit). Its demand is what the book will ask of the planned weeks beyond the firm
  orders the problem already carries (:mod:`services.simulate.demand`): its scenarios are draws of
  the world's own generator of the stock orders' units (negative binomial) plus the custom
  orders not yet placed that fall due inside the horizon (placed in a planned week, due 2-6 weeks
  later, of ``2 + Poisson(4)`` units each; the weeks of a path are independent, as the world's
  are), handed to the optimizer as ``demand_scenarios``; its quantile table holds the true
  negative-binomial quantiles of the stock units.
* **naive**: a seasonal naive point forecast of the stock orders' units: the units ordered in the
  same week one year earlier (52 weeks) when the variant was already on sale then, else the mean
  of the last 4 known weeks, planned as certain (quantile mode at 0.5 of Poisson bands around
  it); custom orders enter as the firm orders they are. True unit costs and hours.

The oracle and the naive policy plan with the world's true costs (:func:`true_cost_table`): unit
costs and hours, each run's fixed cost and setup hours, the family changeovers; tailorline and
the quantile policies with what the served cost model learned of them.

The oracle's and the naive policy's forecasts are of the stock orders' units, not of every unit
ordered, so their problems are built with ``net_firm_orders=False``: the builder nets the firm
orders out of the served model's forecast of every unit (tailorline's and the quantile policies'
problem) only.

Each policy's forecast error (WAPE) is measured on the units ordered per week, the demand model's
target: the oracle's P50 of all units ordered, the naive policy's seasonal naive of all units.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from services.common.quantiles import QUANTILE_COLUMNS, QUANTILES
from services.simulate.accounting import TrueCosts, production_matrix

SEASON = 52
FALLBACK_WEEKS = 4
#: The quantile policies' service levels.
QUANTILE_LEVELS = (0.5, 0.7, 0.9)
#: Custom order size: CUSTOM_MIN + Poisson(CUSTOM_EXTRA); due 2..6 whole weeks after it is placed
#: (services.datagen.orders).
_CUSTOM_MIN, _CUSTOM_EXTRA = 2, 4.0
_CUSTOM_LEAD = (2, 6)


def quantile_name(level: float) -> str:
    return f"quantile_{level:g}"


def true_cost_table(costs: TrueCosts, world: object) -> pd.DataFrame:
    """``variant_id, line_id, unit_cost, hours_per_unit`` of the world (materials excluded: the
    builder adds them from the BOM), and where ``costs`` has the world's setup truth the columns
    of a cost model's setup figures (``family_id, run_cost, setup_hours, family_setup_hours,
    family_setup_cost``: docs/model-interface.md), so the problem's setups and changeovers are
    the true ones the book charges."""
    cat = world.catalog  # type: ignore[attr-defined]
    v, ln = np.nonzero(~np.isnan(cat.hours))
    table = pd.DataFrame(
        {
            "variant_id": np.asarray(costs.variant_ids, dtype=object)[v],
            "line_id": np.asarray(costs.line_ids, dtype=object)[ln],
            "unit_cost": cat.unit_cost[v, ln],
            "hours_per_unit": cat.hours[v, ln],
        }
    )
    if costs.run_cost is not None and costs.run_setup_hours is not None:
        table["run_cost"] = costs.run_cost[v, ln]
        table["setup_hours"] = costs.run_setup_hours[v, ln]
    if costs.has_families:
        assert costs.family is not None and costs.changeover_hours is not None
        assert costs.changeover_cost is not None
        f = costs.family[v]
        table["family_id"] = np.asarray(costs.family_ids, dtype=object)[f]
        table["family_setup_hours"] = costs.changeover_hours[f, ln]
        table["family_setup_cost"] = costs.changeover_cost[f, ln]
    return table


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


def oracle_forecast(world: object, first: int, horizon: int, *, stock_only: bool = False
                    ) -> pd.DataFrame:  # fmt: skip
    """True demand quantiles of every variant for weeks ``first .. first + horizon - 1``: of all
    units ordered in the week, or with ``stock_only`` of the stock orders' units (negative
    binomial with mean ``mu (1 - custom share)``)."""
    from scipy.stats import nbinom

    w = world  # a services.datagen.world.World
    weeks = np.arange(first, first + horizon)
    mu = np.maximum(w.expected_demand(weeks), 1e-9)  # type: ignore[attr-defined]
    if stock_only:
        mu = np.maximum(mu * (1.0 - _custom_share(w)), 1e-9)
    k = w.dispersion[w.catalog.family][:, None]  # type: ignore[attr-defined]
    q = np.stack([nbinom.ppf(p, k, k / (k + mu)) for p in QUANTILES], axis=-1)
    dates = [pd.Timestamp(d) for d in w.week_date(weeks)]  # type: ignore[attr-defined]
    return _table(w.catalog.variant_id, dates, q.astype(float))  # type: ignore[attr-defined]


def _custom_share(world: Any) -> np.ndarray:
    cat = world.catalog
    return np.array([f.custom_share for f in cat.families])[cat.family][:, None]


def oracle_scenarios(world: Any, first: int, horizon: int, n: int, seed: int) -> np.ndarray:
    """``n`` demand paths per variant from the world's own generator, [V, n, horizon] units, of
    what the planned weeks will ask beyond today's firm orders (services.simulate.demand): stock
    units ~ NB(k, mu (1 - custom share)) per week, plus the custom orders placed in a planned week
    (N ~ Poisson(mu share / 6) of 2 + Poisson(4) units each) whose due week, 2..6 weeks later
    (uniform), lies inside the horizon."""
    weeks = np.arange(first, first + horizon)
    mu = world.expected_demand(weeks)  # [V, H]
    share = _custom_share(world)
    k = world.dispersion[world.catalog.family][:, None]
    rng = np.random.default_rng([int(seed), 5, int(first)])
    mu_stock = np.broadcast_to(mu * (1.0 - share), (n, *mu.shape))
    out = rng.negative_binomial(k, k / (k + np.maximum(mu_stock, 1e-12))).astype(float)
    rate = mu * share / (_CUSTOM_MIN + _CUSTOM_EXTRA)  # custom orders placed per week [V, H]
    lo, hi = _CUSTOM_LEAD
    for lead in range(lo, min(hi, horizon - 1) + 1):
        # orders placed in week j with this lead (each lead has probability 1 / 5) fall due in
        # week j + lead; a Poisson count split by lead stays Poisson
        orders = rng.poisson(np.broadcast_to(rate[:, : horizon - lead] / (hi - lo + 1),
                                             (n, mu.shape[0], horizon - lead)))  # fmt: skip
        out[:, :, lead:] += _CUSTOM_MIN * orders + rng.poisson(_CUSTOM_EXTRA * orders)
    return np.moveaxis(out, 0, 1)


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


@dataclass(frozen=True)
class Solved:
    """One policy's weekly solve: the first week's ``(variant_id, line_id, quantity)`` rows and
    how the solve went (wall and CPU seconds in the solving process, status, gap)."""

    rows: list[tuple[str, str, float]]
    seconds: float
    cpu_seconds: float
    status: str
    gap: float | None


def solve_first_week(problem: Any, time_limit_s: float, mip_rel_gap: float) -> Solved:
    """Solve with one HiGHS thread (the solvers beside it get the other core); the first week's
    plan. A plain function of a pickled problem: it runs in a :class:`Solver` worker."""
    from optimizer import SolveOptions, solve

    t0, c0 = time.perf_counter(), time.process_time()
    plan = solve(
        problem,
        SolveOptions(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, explain=False, threads=1),
    )
    rows = [(ln.variant, ln.line, float(ln.quantity)) for ln in plan.lines if ln.period == 0]
    return Solved(
        rows=rows,
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
        status=str(plan.status),
        gap=None if plan.gap is None else float(plan.gap),
    )


def _warm_up() -> None:
    import optimizer  # noqa: F401  (Pyomo and HiGHS load once per worker, not in a timed solve)


class Solver:
    """Solves the in-process policies' weekly problems: ``workers`` > 0 in that many worker
    processes (started with ``spawn``: the simulator's process holds TensorFlow, gRPC channels and
    threads, which a fork would copy), 0 in the calling thread. :meth:`submit` returns a future
    of :class:`Solved`."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = int(workers)
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 0:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm_up,
            )

    def submit(self, problem: Any, time_limit_s: float, mip_rel_gap: float) -> Future[Solved]:
        if self._pool is not None:
            return self._pool.submit(solve_first_week, problem, time_limit_s, mip_rel_gap)
        done: Future[Solved] = Future()
        try:
            done.set_result(solve_first_week(problem, time_limit_s, mip_rel_gap))
        except Exception as exc:  # the caller's .result() raises it, as a pool's would
            done.set_exception(exc)
        return done

    def solve_beside(
        self,
        first: Future[Any],
        problems: Sequence[tuple[str, Any]],
        time_limit_s: float,
        mip_rel_gap: float,
    ) -> dict[str, Future[Solved]]:
        """Hand ``problems`` (name, problem) to the pool in their order, never more solves at a
        time than the pool has workers, counting ``first`` (tailorline's plan, made in the
        optimizer's process) while it runs: {name: future}. Returns once the last one is
        handed over. Every solve has a wall-clock limit, so a solve that shares a core gets
        less search than one that has a core. Before this, the pool's two workers solved beside
        tailorline's plan on two cores: the first two reference plans of each week got about
        half a core and the later ones a whole core (docs/simulator.md)."""
        futures: dict[str, Future[Solved]] = {}
        running: set[Future[Any]] = {first}
        at_once = max(1, self.workers)
        queue = list(problems)
        while queue:
            running = {f for f in running if not f.done()}
            while queue and len(running) < at_once:
                name, problem = queue.pop(0)
                futures[name] = self.submit(problem, time_limit_s, mip_rel_gap)
                running.add(futures[name])
            if queue:
                wait(running, return_when=FIRST_COMPLETED)
        return futures

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Solver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_workers() -> int:
    """Two solver processes, one on a 1-core machine: with :meth:`Solver.solve_beside`, as many
    solves at a time as cores, tailorline's (in the optimizer's process) counted."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


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
        # units ordered per variant and week: all of them (the forecast error's target) and the
        # stock orders' (what the naive policy plans for; custom orders are firm orders)
        self.units = np.zeros((len(costs.variant_ids), world.n_path_weeks))
        self.stock_units = np.zeros_like(self.units)
        hist = frames["orders"]
        week = world.week_index(pd.to_datetime(hist["order_date"]).to_numpy())
        self._add(hist[week < n_hist], week[week < n_hist])
        self.launch = world.catalog.launch_week

    def _add(self, orders: pd.DataFrame, week: np.ndarray) -> None:
        index = self.costs.variant_index(orders["variant_id"])
        qty = pd.to_numeric(orders["quantity"]).to_numpy(dtype=float)
        np.add.at(self.units, (index, week), qty)
        stock = (orders["kind"].astype(str) != "custom").to_numpy()
        np.add.at(self.stock_units, (index[stock], week[stock]), qty[stock])

    def forecast(self, name: str, t: int, horizon: int, *, planning: bool = True) -> pd.DataFrame:
        """Policy ``name``'s forecast of weeks ``t..t+horizon-1``: what it plans for
        (``planning``: the stock orders' units) or of all units ordered (the forecast error's)."""
        if name == "oracle":
            return oracle_forecast(self.world, t, horizon, stock_only=planning)
        units = self.stock_units if planning else self.units
        return naive_forecast(units, self.launch, t, self.world, t, horizon)

    def problem(self, name: str, t: int, horizon: int) -> tuple[Any, pd.Series]:
        """Week ``t``'s problem of policy ``name`` (no stock on hand yet) and its P50 of week t's
        units ordered."""
        from services.planning import PlanRequest, build_problem, default_variants

        start = pd.Timestamp(self.world.week_date(np.array([t]))[0])
        ids = default_variants(self.frames, start)
        fc = self.forecast(name, t, horizon)
        fc = fc[fc["variant_id"].isin(ids)]
        request = PlanRequest(
            start_week=start, horizon=horizon, variant_ids=tuple(ids), name=f"{name} week {t}"
        )
        costs = self.cost_table[self.cost_table["variant_id"].isin(ids)]
        # the forecast is of the stock orders' units already: nothing of it is firm (the
        # builder nets the firm orders out of a forecast of every unit ordered only)
        problem = build_problem(self.frames, fc, costs, request, net_firm_orders=False)
        if name == "oracle":
            draws = oracle_scenarios(self.world, t, horizon, self.scenario_count, self.seed)
            index = self.costs.variant_index(ids)
            paths = {vid: draws[i] for vid, i in zip(ids, index, strict=True)}
            problem = as_expected_profit(problem, self.scenario_count, t, paths)
        else:
            problem = as_quantile(problem, 0.5)
        every = self.forecast(name, t, 1, planning=False)
        return problem, every.set_index("variant_id")["p50"]

    def plan(
        self, name: str, t: int, stock: np.ndarray, *, horizon: int, time_limit_s: float,
        mip_rel_gap: float, solver: Solver | None = None,
    ) -> tuple[np.ndarray, pd.Series]:  # fmt: skip
        """Week ``t``'s production [V, L] of policy ``name`` and the P50 it forecast (solved
        here, or by ``solver``)."""
        solved, p50 = self.submit(
            name, t, stock, horizon=horizon, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap,
            solver=solver or Solver(0),
        )  # fmt: skip
        return production_matrix(self.costs, solved.result().rows), p50

    def submit(
        self, name: str, t: int, stock: np.ndarray, *, horizon: int, time_limit_s: float,
        mip_rel_gap: float, solver: Solver,
    ) -> tuple[Future[Solved], pd.Series]:  # fmt: skip
        """:meth:`plan`'s problem with the stock on hand, handed to ``solver``."""
        problem, p50 = self.problem_with_stock(name, t, stock, horizon)
        return solver.submit(problem, time_limit_s, mip_rel_gap), p50

    def problem_with_stock(
        self, name: str, t: int, stock: np.ndarray, horizon: int
    ) -> tuple[Any, pd.Series]:
        """:meth:`problem` with the policy's stock on hand."""
        problem, p50 = self.problem(name, t, horizon)
        return with_stock(problem, stock_map(self.costs, stock)), p50

    def observe(self, t: int, orders: pd.DataFrame) -> None:
        """Week ``t`` happened: ``orders`` (the orders table of the week)."""
        self._add(orders, np.full(len(orders), t, dtype=np.int64))
        self.frames["orders"] = pd.concat(
            [self.frames["orders"], orders.reindex(columns=self.order_columns)], ignore_index=True
        )


def quantile_problems(
    costs: TrueCosts, problem: Any, stocks: Mapping[str, np.ndarray], levels: Sequence[float]
) -> dict[str, Any]:
    """The quantile policies' problems: tailorline's week problem at each service level, each
    with its policy's stock."""
    return {
        quantile_name(level): with_stock(
            as_quantile(problem, level), stock_map(costs, stocks[quantile_name(level)])
        )
        for level in levels
    }


def quantile_plans(
    costs: TrueCosts,
    problem: Any,
    stocks: Mapping[str, np.ndarray],
    levels: Sequence[float],
    *,
    time_limit_s: float,
    mip_rel_gap: float,
    solver: Solver | None = None,
) -> dict[str, np.ndarray]:
    """The quantile policies' first-week production [V, L] from tailorline's week problem."""
    solver = solver or Solver(0)
    futures = {
        name: solver.submit(p, time_limit_s, mip_rel_gap)
        for name, p in quantile_problems(costs, problem, stocks, levels).items()
    }
    return {name: production_matrix(costs, f.result().rows) for name, f in futures.items()}
