"""The closed loop, week by week, for the tailorline policy and the reference policies, in one
or several worlds (seeds).

Setup of one world (a fresh home: its own SQLite store and model repository): synthetic data
(preset, seed) -> ingest -> train (:func:`services.local.bootstrap.bootstrap_home`) -> the local
stack (KServe predictor, Ray Serve optimizer, gateway). Then for each simulated week ``t`` (the
weeks after the history; the preset's fashion shift lies among them):

1. each policy plans weeks ``t .. t+H-1`` from its own stock on hand and makes the first week's
   plan: this process first builds the other policies' problems
   (:mod:`services.simulate.policies`): the **quantile** policies from the same problem as
   tailorline's (built once a week), **oracle** and **naive**; then **tailorline** plans through
   the gateway's CreatePlan in the project's default demand mode (the served models' forecasts
   and cost estimates), in a thread, and a pool of solver processes
   (:class:`~services.simulate.policies.Solver`, two by default) solves the others, never more
   solves at a time than the pool has workers, counting tailorline's while it is made (each
   plan gets about a core); every solve has the same time limit and gap;
2. the world realises week ``t``'s orders once (common random numbers: the draw depends on the
   seed and the week only) and each policy's production; :mod:`services.simulate.accounting`
   books sales, lost sales, stock and profit with the true costs against the week's demand of
   :mod:`services.simulate.demand` (stock orders placed in the week, custom orders due in it);
3. the week's orders, market signals and the tailorline policy's production records go back
   through the gateway's RecordEvents;
4. :class:`~services.simulate.retrain.RetrainDriver` retrains when the trigger fires and waits.

After the last week the stack stops and :mod:`services.simulate.hindsight` solves the whole span
with the realised demand: the upper bound every policy is measured against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
from sqlalchemy import select

from services.common.errors import InvalidArgument
from services.common.settings import CoreSettings
from services.datagen.presets import get_preset
from services.datagen.world import World
from services.gateway.client import (
    GatewayClient,
    market_events,
    order_events,
    production_events,
)
from services.local.bootstrap import SetupStep, bootstrap_home
from services.local.stack import LocalStack
from services.monitoring.triggers import TriggerPolicy
from services.registry.repository import ModelRepository
from services.simulate import accounting as acc
from services.simulate import policies
from services.simulate.accounting import WeekBook
from services.simulate.demand import DemandBook
from services.simulate.hindsight import Hindsight, solve_hindsight
from services.simulate.policies import QUANTILE_LEVELS, Solved, Solver, quantile_name
from services.simulate.retrain import RetrainDriver
from services.store import schema
from services.store.frames import load_frames
from services.training.train import TrainConfig

Say = Callable[[str], None]
#: ``on_week(seed, week index, weeks)``: a simulated week is booked.
OnWeek = Callable[[int, int, int], None]
QUANTILE_POLICIES = tuple(quantile_name(q) for q in QUANTILE_LEVELS)
#: The policies that plan week by week, in report order; ``hindsight`` comes after them.
POLICIES = ("tailorline", *QUANTILE_POLICIES, "oracle", "naive")
HINDSIGHT = "hindsight"


@dataclass(frozen=True)
class SimOptions:
    weeks: int = 26
    preset: str = "small"
    seeds: tuple[int, ...] = (3,)
    horizon: int = 4
    time_limit_s: float = 10.0
    mip_rel_gap: float = 0.02
    scenario_count: int = 32
    hindsight_time_limit_s: float = 120.0
    hindsight_gap: float = 1e-4
    retrain_trials: int = 2
    retrain_epochs: int = 30
    #: solver processes for the in-process policies' plans, and how many plans solve at a time
    #: with tailorline's (0: one at a time, in the simulator's thread)
    solver_workers: int = field(default_factory=policies.default_workers)


@dataclass
class PolicyTrace:
    """One policy's weeks: the books and the forecast error of each executed week."""

    name: str
    books: list[WeekBook] = field(default_factory=list)
    abs_error: list[float] = field(default_factory=list)  # sum |demand - P50| per week

    @property
    def profit(self) -> float:
        return float(sum(b.profit for b in self.books))

    @property
    def demand_units(self) -> float:
        return float(sum(b.demand_units for b in self.books))

    @property
    def sales_units(self) -> float:
        return float(sum(b.sales_units for b in self.books))

    @property
    def service_level(self) -> float:
        demand = self.demand_units
        return self.sales_units / demand if demand else 1.0

    @property
    def wape(self) -> float:
        demand = self.demand_units
        return float(sum(self.abs_error) / demand) if demand else 0.0

    def weekly_wape(self) -> list[float]:
        return [e / b.demand_units if b.demand_units else 0.0 for e, b in zip(
            self.abs_error, self.books, strict=True)]  # fmt: skip


@dataclass
class SeedResult:
    """One world: every policy's trace (``hindsight`` included), the retrains, the models."""

    seed: int
    home: Path
    first_week: str
    shift_week: int  # simulated week index where the fashion shift starts (may be < 0)
    traces: dict[str, PolicyTrace]
    hindsight: Hindsight
    retrains: list[Any]
    models: list[dict[str, Any]]
    timings: dict[str, float]
    #: tailorline's plans, week by week: the week correlation its scenarios were drawn at (the
    #: gateway's measure of its store, the default before there is enough; None: no plan)
    week_correlation: list[float | None] = field(default_factory=list)

    def profit(self, name: str) -> float:
        """Realised profit; for ``hindsight`` its upper bound (module hindsight)."""
        return self.hindsight.bound if name == HINDSIGHT else self.traces[name].profit


@dataclass
class SimResult:
    options: SimOptions
    home: Path
    runs: list[SeedResult]
    report: Path | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (*POLICIES, HINDSIGHT)

    def mean_profit(self, name: str) -> float:
        return float(np.mean([r.profit(name) for r in self.runs]))

    def pct_of_hindsight(self, name: str) -> float:
        """100 x the policy's profit / hindsight's upper bound, summed over the seeds."""
        bound = sum(r.hindsight.bound for r in self.runs)
        return 100.0 * sum(r.profit(name) for r in self.runs) / bound if bound else 0.0

    def summary(self, name: str) -> dict[str, Any]:
        traces = [r.traces[name] for r in self.runs]
        demand = sum(t.demand_units for t in traces)
        out: dict[str, Any] = {
            "profit": round(self.mean_profit(name), 2),
            "profit_by_seed": {str(r.seed): round(r.profit(name), 2) for r in self.runs},
            "service_level": round(sum(t.sales_units for t in traces) / demand, 4)
            if demand
            else 1.0,
            "wape": round(sum(sum(t.abs_error) for t in traces) / demand, 4) if demand else 0.0,
            "pct_of_hindsight": round(self.pct_of_hindsight(name), 2),
        }
        if name == HINDSIGHT:
            out["plan_profit_by_seed"] = {
                str(r.seed): round(r.hindsight.plan_profit, 2) for r in self.runs
            }
            out["gap_by_seed"] = {
                str(r.seed): None if r.hindsight.gap is None else round(r.hindsight.gap, 6)
                for r in self.runs
            }
        return out

    def checks(self) -> dict[str, Any]:
        """The comparisons issue 15 asks for: tailorline against the best quantile policy per
        seed and on the mean (in % of that policy's profit), and whether any policy exceeds
        hindsight's bound."""
        by_seed = {}
        for r in self.runs:
            best = max(QUANTILE_POLICIES, key=r.profit)
            ref = r.profit(best)
            by_seed[str(r.seed)] = {
                "best_quantile": best,
                "tailorline_over_best_quantile_pct": round(
                    100.0 * (r.profit("tailorline") - ref) / abs(ref), 2
                )
                if ref
                else None,
            }
        best_mean = max(QUANTILE_POLICIES, key=self.mean_profit)
        ref = self.mean_profit(best_mean)
        over = [
            f"{name} seed {r.seed}"
            for r in self.runs
            for name in POLICIES
            if r.profit(name) > r.hindsight.bound + 1e-6
        ]
        return {
            "by_seed": by_seed,
            "best_quantile_on_mean": best_mean,
            "tailorline_over_best_quantile_on_mean_pct": round(
                100.0 * (self.mean_profit("tailorline") - ref) / abs(ref), 2
            )
            if ref
            else None,
            "policies_above_hindsight": over,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "seeds": [r.seed for r in self.runs],
            "policies": {name: self.summary(name) for name in self.names},
            "checks": self.checks(),
            "retrains": [
                {"seed": r.seed, **rec.to_json()} for r in self.runs for rec in r.retrains
            ],
            "week_correlation": {
                str(r.seed): [None if x is None else round(x, 4) for x in r.week_correlation]
                for r in self.runs
            },
        }


def _served_p50(engine: Any, week: pd.Timestamp) -> pd.Series:
    """The last P50 the gateway served for each variant for ``week`` (forecasts_served)."""
    t = schema.forecasts_served
    query = (
        select(t.c.variant_id, t.c.p50)
        .where(t.c.week == week.date())
        .where(t.c.model_name == "demand")
        .order_by(t.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.Series({str(v): float(p) for v, p in rows}, dtype=float)


def _abs_error(costs: Any, demand: np.ndarray, p50: pd.Series) -> float:
    """sum |demand - P50| over every variant (a variant without a forecast counts P50 = 0)."""
    forecast = np.zeros(len(costs.variant_ids))
    if len(p50):
        forecast[costs.variant_index(list(p50.index))] = p50.to_numpy()
    return float(np.abs(demand - forecast).sum())


def _gateway_used_stock(engine: Any, plan_id: str) -> bool:
    """Whether the gateway's planner received the stock we sent (the stored request has it)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.plans.c.request).where(schema.plans.c.plan_id == plan_id)
        ).first()
    return bool(row is not None and (row[0] or {}).get("initial_inventory"))


def realised_demand(world: Any, costs: Any, t: int, seed: int) -> tuple[Any, np.ndarray]:
    """Week ``t``'s outcome of world ``seed`` and its units per variant [V]: a function of the
    seed and the week alone, so every policy (and every run) meets the same demand."""
    outcome = world.realise_week(t, seed)
    demand = np.zeros(len(costs.variant_ids))
    orders = outcome.orders
    np.add.at(demand, costs.variant_index(orders["variant_id"]), orders["quantity"].to_numpy())
    return outcome, demand


def run_simulation(
    settings: CoreSettings,
    opts: SimOptions,
    *,
    say: Say = print,
    on_week: OnWeek | None = None,
    gateway_env: dict[str, str] | None = None,
) -> SimResult:
    """Every seed of ``opts`` in its own world and home (``<settings.home>/seed-<n>``)."""
    world = World(get_preset(opts.preset), opts.seeds[0])
    if world.n_weeks + opts.weeks + opts.horizon > world.n_path_weeks:
        raise InvalidArgument(
            f"at most {world.n_path_weeks - world.n_weeks - opts.horizon} weeks for this preset",
            field="--weeks",
        )
    runs = []
    with Solver(opts.solver_workers) as solver:
        for seed in opts.seeds:
            home = settings.home / f"seed-{seed}"
            runs.append(
                run_world(
                    settings.model_copy(update={"home": home}),
                    opts,
                    seed,
                    say=say,
                    on_week=on_week,
                    gateway_env=gateway_env,
                    solver=solver,
                )
            )
    return SimResult(options=opts, home=settings.home, runs=runs)


def run_world(
    settings: CoreSettings,
    opts: SimOptions,
    seed: int,
    *,
    say: Say = print,
    on_week: OnWeek | None = None,
    gateway_env: dict[str, str] | None = None,
    solver: Solver | None = None,
) -> SeedResult:
    """One world (``seed``) through the closed loop; see the module docstring. ``solver``: the
    pool that solves the in-process policies' plans (default: one of ``opts.solver_workers``)."""
    if solver is None:
        with Solver(opts.solver_workers) as own:
            return run_world(settings, opts, seed, say=say, on_week=on_week,
                             gateway_env=gateway_env, solver=own)  # fmt: skip
    timings: dict[str, float] = {}
    home = settings.home
    # the world the data set is generated from (World.from_dataset of it is the same world)
    world = World(get_preset(opts.preset), seed)
    n_hist = world.n_weeks
    holdout = 4 if n_hist < 52 else 8
    base = TrainConfig(seed=seed, holdout_weeks=holdout, origin_stride=2, epochs=30)

    def setup_done(step: SetupStep) -> None:
        if step.done and step.name == "ingest":
            say(f"seed {seed}: preset {opts.preset}, {n_hist} weeks of history")

    bootstrapped = bootstrap_home(
        settings,
        preset=opts.preset,
        seed=seed,
        train_config=base,
        progress=setup_done,
        data_dir=home / "sim-data",
    )
    engine, frames, trained = bootstrapped.engine, bootstrapped.frames, bootstrapped.trained
    seconds = {step.name: step.seconds or 0.0 for step in bootstrapped.steps}
    timings["data_s"] = seconds["datagen"] + seconds["ingest"]
    timings["train_s"] = seconds["train"]
    say(f"seed {seed}: trained demand v{trained['versions']['demand']}, cost v"
        f"{trained['versions']['cost']}")  # fmt: skip
    repo = ModelRepository(settings.resolved_models_dir)

    costs = acc.true_costs(world, frames["lines"])
    refs = policies.ReferencePolicies(
        world, frames, costs, seed=seed, scenario_count=opts.scenario_count
    )
    n_v = len(costs.variant_ids)
    # the least regular share of a line's hours in any policy's week: the hindsight bound's
    # changeover hours (services/simulate/hindsight.py)
    regular = np.ones(len(costs.line_ids))

    def train_in_process() -> dict[str, Any]:
        from services.training.job import retrain  # Ray Tune: loaded only when a retrain runs

        return retrain(
            engine,
            repo,
            load_frames(engine),
            base,
            trials=opts.retrain_trials,
            max_epochs=opts.retrain_epochs,
            num_cpus=1,
        )

    t0 = time.perf_counter()
    stack = LocalStack(
        core=settings, optimizer_cpus=1, log_dir=home / "logs", gateway_env=gateway_env or {}
    )
    stack.start(say=lambda m: say(f"      {m}"))
    timings["up_s"] = time.perf_counter() - t0
    traces = {name: PolicyTrace(name) for name in POLICIES}
    stock = {name: np.zeros(n_v) for name in POLICIES}
    book = DemandBook(world, costs, n_hist, opts.weeks, history=frames["orders"])
    models: list[dict[str, Any]] = []
    netted_weeks = 0
    failed_plans = 0
    rhos: list[float | None] = []
    # seconds per policy summed over the weeks: solve wall and CPU (in the solving process; for
    # tailorline the optimizer's reported solve), the gap of its plans; the week's phases
    spent: dict[str, float] = {}
    gaps: dict[str, list[float]] = {name: [] for name in POLICIES}

    def add(key: str, seconds: float) -> None:
        spent[key] = spent.get(key, 0.0) + seconds

    t_loop = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="create-plan")
    try:
        planner, predictor = _local_planner(engine, stack.predictor_target)
        with GatewayClient(stack.gateway_target, timeout_s=opts.time_limit_s + 600) as client:
            job_config = {
                "trials": opts.retrain_trials,
                "max_epochs": opts.retrain_epochs,
                "holdout_weeks": base.holdout_weeks,
                "origin_stride": base.origin_stride,
                "seed": base.seed,
            }
            driver = _driver(engine, client, train_in_process, job_config, say)
            for k in range(opts.weeks):
                t = n_hist + k
                start = pd.Timestamp(world.week_date(np.array([t]))[0])
                tw = time.perf_counter()
                made: dict[str, np.ndarray] = {}
                p50: dict[str, pd.Series] = {}

                # every policy's problem first (this process's CPU), then the solves, never more
                # at a time than the solver pool has workers (two: one a core), counting
                # tailorline's plan while it is made: each plan gets about a core for its limit
                tb = time.perf_counter()
                built: dict[str, Any] = {}
                for name in refs.names:
                    built[name], p50[name] = refs.problem_with_stock(
                        name, t, stock[name], horizon=opts.horizon
                    )
                # the quantile policies: tailorline's problem, built once, in quantile mode
                from services.planning import PlanRequest

                prepared = planner.prepare(
                    PlanRequest(start_week=start, horizon=opts.horizon, name=f"week {k}")
                )
                quantile = policies.quantile_problems(
                    costs, prepared.problem, stock, QUANTILE_LEVELS
                )
                # the oracle first (expected profit, as tailorline's), then quantile, then naive
                queue = [("oracle", built["oracle"]), *quantile.items(), ("naive", built["naive"])]
                assert prepared.forecast is not None
                fc = prepared.forecast
                week_p50 = fc[pd.to_datetime(fc["target_week"]) == start]
                for name in QUANTILE_POLICIES:
                    p50[name] = week_p50.set_index("variant_id")["p50"]
                add("build_s", time.perf_counter() - tb)
                # tailorline through the gateway, in a thread
                pending = pool.submit(
                    _timed,
                    _create_plan,
                    client,
                    say,
                    start_week=str(start.date()),
                    horizon=opts.horizon,
                    time_limit_s=opts.time_limit_s,
                    mip_rel_gap=opts.mip_rel_gap,
                    scenario_count=opts.scenario_count,
                    scenario_seed=t,
                    name=f"simulate seed {seed} week {k}",
                    initial_inventory=policies.stock_map(costs, stock["tailorline"]),
                )
                solving = solver.solve_beside(pending, queue, opts.time_limit_s, opts.mip_rel_gap)
                for name, future in solving.items():
                    solved: Solved = future.result()
                    made[name] = acc.production_matrix(costs, solved.rows)
                    add(f"{name}_s", solved.seconds)
                    add(f"{name}_cpu_s", solved.cpu_seconds)
                    if solved.gap is not None:
                        gaps[name].append(solved.gap)

                reply, seconds_tl = pending.result()
                add("tailorline_s", seconds_tl)
                add("plans_wall_s", time.perf_counter() - tw)
                rhos.append(reply.week_correlation if reply is not None else None)
                if reply is None:  # no plan this week: nothing is made
                    failed_plans += 1
                else:  # the optimizer's Plan (services.gateway.client.PlanReply)
                    if reply.plan.gap is not None:
                        gaps["tailorline"].append(float(reply.plan.gap))
                    add("tailorline_solve_s", float(reply.plan.total_time_s or 0.0))
                rows = (
                    [
                        (ln.variant, ln.line, float(ln.quantity))
                        for ln in reply.plan.lines
                        if ln.period == 0
                    ]
                    if reply is not None
                    else []
                )
                x = acc.production_matrix(costs, rows)
                netting = reply is not None and stock["tailorline"].any()
                if netting and not _gateway_used_stock(engine, reply.plan_id):
                    x = acc.net_against_stock(x, stock["tailorline"])
                    netted_weeks += 1
                made["tailorline"] = x
                p50["tailorline"] = _served_p50(engine, start)

                outcome = world.realise_week(t, seed)
                orders = outcome.orders
                book.add_week(k, orders)
                demand = book.demand(k)  # stock orders of the week + custom orders due in it
                for name in POLICIES:
                    regular = np.minimum(regular, acc.regular_share(costs, made[name]))
                    week, stock[name] = acc.account_week(costs, stock[name], made[name], demand)
                    traces[name].books.append(week)
                    traces[name].abs_error.append(_abs_error(costs, book.ordered[:, k], p50[name]))

                plan_rows = [
                    (
                        costs.variant_ids[v],
                        costs.line_ids[ln],
                        t,
                        int(np.rint(made["tailorline"][v, ln])),
                    )
                    for v, ln in zip(*np.nonzero(np.rint(made["tailorline"]) > 0), strict=True)
                ]
                production = world.realise_production_table(
                    pd.DataFrame(plan_rows, columns=["variant_id", "line_id", "week", "quantity"]),
                    np.random.default_rng([seed, 4, t]),
                )
                events = (
                    order_events(orders)
                    + market_events(outcome.market)
                    + production_events(production)
                )
                client.record_events(events)
                refs.observe(t, orders)
                line = ", ".join(f"{n} {traces[n].books[-1].profit:,.0f}" for n in POLICIES)
                version = reply.demand_version if reply is not None else "-"
                say(
                    f"seed {seed} week {k + 1}/{opts.weeks} ({start.date()}): profit {line}; "
                    f"demand v{version} ({time.perf_counter() - tw:.1f} s)"
                )
                if on_week is not None:
                    on_week(seed, k, opts.weeks)
                add("week_s", time.perf_counter() - tw)
                if driver is not None:
                    tr = time.perf_counter()
                    rec = driver.after_week(k, (start + pd.Timedelta(days=7)).date())
                    add("retrain_s", time.perf_counter() - tr)
                    if rec is not None:
                        say(
                            f"      retrain {rec.job_id or ''} ({rec.via}): promoted "
                            f"{rec.promoted}, {rec.metric_before} -> {rec.metric_after}"
                        )
            models = client.list_models("demand")
        predictor.close()
    finally:
        pool.shutdown(wait=True)
        stack.stop()
    timings["loop_s"] = time.perf_counter() - t_loop
    timings.update(spent)
    for name, values in gaps.items():
        if values:
            timings[f"{name}_mean_gap"] = float(np.mean(values))
    timings["netted_weeks"] = float(netted_weeks)
    timings["failed_plans"] = float(failed_plans)

    say(f"seed {seed}: hindsight over {opts.weeks} weeks ...")
    best = solve_hindsight(
        costs,
        book.path,
        time_limit_s=opts.hindsight_time_limit_s,
        mip_rel_gap=opts.hindsight_gap,
        changeover_share=regular,
    )
    timings["hindsight_s"] = best.seconds
    hind = PolicyTrace(HINDSIGHT, books=list(best.books), abs_error=[0.0] * opts.weeks)
    say(
        f"seed {seed}: hindsight bound {best.bound:,.0f} (best plan {best.plan_profit:,.0f}, "
        f"{best.status}, {best.seconds:.0f} s)"
    )
    return SeedResult(
        seed=seed,
        home=home,
        first_week=str(pd.Timestamp(world.week_date(np.array([n_hist]))[0]).date()),
        shift_week=int(world.preset.shift_week - n_hist),
        traces={**traces, HINDSIGHT: hind},
        hindsight=best,
        retrains=list(driver.records) if driver is not None else [],
        models=models,
        timings=timings,
        week_correlation=rhos,
    )


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _local_planner(engine: Any, predictor_target: str) -> tuple[Any, Any]:
    """The gateway's Planner in this process, against the stack's predictor and the same store:
    ``prepare`` builds the very problem a CreatePlan builds (it solves nothing here)."""
    from services.gateway.downstream import PredictorClient
    from services.planning.service import Planner

    predictor = PredictorClient(predictor_target)

    def no_solve(*_: Any) -> Any:
        raise NotImplementedError("the simulator solves its own problems")

    planner = Planner(engine, predict=predictor.predict_fn, inputs=predictor.inputs, solve=no_solve)
    return planner, predictor


def _create_plan(client: Any, say: Say, **fields: Any) -> Any:
    """CreatePlan; a failed solve (INTERNAL/UNAVAILABLE/DEADLINE_EXCEEDED) is retried once with
    twice the time limit, and a second failure returns None (the week makes nothing)."""
    for attempt in range(2):
        try:
            return client.create_plan(**fields)
        except grpc.RpcError as exc:
            code = exc.code()
            if code not in (
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            ):
                raise
            say(f"      CreatePlan failed ({code.name}: {str(exc.details())[:120]})")
            if attempt == 0:
                fields = {**fields, "time_limit_s": 2 * fields["time_limit_s"]}
    return None


def _driver(
    engine: Any,
    client: Any,
    train: Callable[[], dict[str, Any]],
    job_config: dict[str, Any],
    say: Say,
) -> Any:
    """The retrain driver."""
    return RetrainDriver(
        engine,
        client,
        TriggerPolicy(),
        train,
        job_config=job_config,
        say=say,
    )
