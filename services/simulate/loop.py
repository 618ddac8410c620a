"""The closed loop, week by week, for the tailorline policy and the two reference policies.

Setup (a fresh home: its own SQLite store and model repository): synthetic data (preset, seed)
-> ingest -> train (:func:`services.local.bootstrap.bootstrap_home`) -> the local stack (KServe
predictor, Ray Serve optimizer, gateway). Then for each simulated week ``t`` (the weeks after the
history; the preset's fashion shift lies among them):

1. each policy plans weeks ``t .. t+H-1`` from its own stock on hand and makes the first week's
   plan: **tailorline** through the gateway's CreatePlan (the served models' forecasts and cost
   estimates), **oracle** and **naive** in process (:mod:`services.simulate.policies`);
2. the world realises week ``t``'s orders (the same draws for every policy) and each policy's
   production; :mod:`services.simulate.accounting` books sales, lost sales, stock and profit with
   the true costs;
3. the week's orders, market signals and the tailorline policy's production records go back
   through the gateway's RecordEvents;
4. :class:`~services.simulate.retrain.RetrainDriver` retrains when the trigger fires and waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
from services.simulate import SIM_SERVICE_LEVEL, policies
from services.simulate import accounting as acc
from services.simulate.accounting import WeekBook
from services.simulate.retrain import RetrainDriver
from services.store import schema
from services.store.frames import load_frames
from services.training.train import TrainConfig

Say = Callable[[str], None]
POLICIES = ("tailorline", "oracle", "naive")


@dataclass(frozen=True)
class SimOptions:
    weeks: int = 26
    preset: str = "small"
    seed: int = 3
    horizon: int = 4
    service_level: float = SIM_SERVICE_LEVEL
    time_limit_s: float = 10.0
    mip_rel_gap: float = 0.02
    retrain_trials: int = 2
    retrain_epochs: int = 30


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
    def service_level(self) -> float:
        demand = sum(b.demand_units for b in self.books)
        return float(sum(b.sales_units for b in self.books) / demand) if demand else 1.0

    @property
    def wape(self) -> float:
        demand = sum(b.demand_units for b in self.books)
        return float(sum(self.abs_error) / demand) if demand else 0.0

    def weekly_wape(self) -> list[float]:
        return [e / b.demand_units if b.demand_units else 0.0 for e, b in zip(
            self.abs_error, self.books, strict=True)]  # fmt: skip

    def summary(self) -> dict[str, float]:
        return {
            "profit": round(self.profit, 2),
            "service_level": round(self.service_level, 4),
            "wape": round(self.wape, 4),
        }


@dataclass
class SimResult:
    options: SimOptions
    home: Path
    first_week: str
    shift_week: int  # simulated week index where the fashion shift starts (may be < 0)
    traces: dict[str, PolicyTrace]
    retrains: list[Any]
    models: list[dict[str, Any]]
    timings: dict[str, float]
    report: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "policies": {name: t.summary() for name, t in self.traces.items()},
            "retrains": [r.to_json() for r in self.retrains],
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


def _stock_map(costs: Any, stock: np.ndarray) -> dict[str, float]:
    return {costs.variant_ids[i]: float(stock[i]) for i in np.flatnonzero(stock > 0)}


def _gateway_used_stock(engine: Any, plan_id: str) -> bool:
    """Whether the gateway's planner received the stock we sent (the stored request has it)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.plans.c.request).where(schema.plans.c.plan_id == plan_id)
        ).first()
    return bool(row is not None and (row[0] or {}).get("initial_inventory"))


def run_simulation(
    settings: CoreSettings,
    opts: SimOptions,
    *,
    say: Say = print,
    gateway_env: dict[str, str] | None = None,
) -> SimResult:
    timings: dict[str, float] = {}
    home = settings.home
    # the world the data set is generated from (World.from_dataset of it is the same world)
    world = World(get_preset(opts.preset), opts.seed)
    n_hist = world.n_weeks
    if n_hist + opts.weeks + opts.horizon > world.n_path_weeks:
        raise InvalidArgument(
            f"at most {world.n_path_weeks - n_hist - opts.horizon} weeks for this preset",
            field="--weeks",
        )
    holdout = 4 if n_hist < 52 else 8
    base = TrainConfig(seed=opts.seed, holdout_weeks=holdout, origin_stride=2, epochs=30)

    def setup_done(step: SetupStep) -> None:
        if step.done and step.name == "ingest":
            say(f"data: preset {opts.preset}, seed {opts.seed}, {n_hist} weeks of history")

    bootstrapped = bootstrap_home(
        settings,
        preset=opts.preset,
        seed=opts.seed,
        train_config=base,
        progress=setup_done,
        data_dir=home / "sim-data",
    )
    engine, frames, trained = bootstrapped.engine, bootstrapped.frames, bootstrapped.trained
    seconds = {step.name: step.seconds or 0.0 for step in bootstrapped.steps}
    timings["data_s"] = seconds["datagen"] + seconds["ingest"]
    timings["train_s"] = seconds["train"]
    say(f"trained demand v{trained['versions']['demand']}, cost v{trained['versions']['cost']}")
    repo = ModelRepository(settings.resolved_models_dir)

    costs = acc.true_costs(world, frames["lines"])
    refs = policies.ReferencePolicies(world, frames, costs)
    n_v = len(costs.variant_ids)

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
    models: list[dict[str, Any]] = []
    netted_weeks = 0
    failed_plans = 0
    t_loop = time.perf_counter()
    try:
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

                reply = _create_plan(
                    client,
                    say,
                    start_week=str(start.date()),
                    horizon=opts.horizon,
                    service_level=opts.service_level,
                    time_limit_s=opts.time_limit_s,
                    mip_rel_gap=opts.mip_rel_gap,
                    name=f"simulate week {k}",
                    initial_inventory=_stock_map(costs, stock["tailorline"]),
                )
                if reply is None:  # no plan this week: nothing is made
                    failed_plans += 1
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

                for name in refs.names:
                    made[name], p50[name] = refs.plan(
                        name,
                        t,
                        stock[name],
                        horizon=opts.horizon,
                        service_level=opts.service_level,
                        time_limit_s=opts.time_limit_s,
                        mip_rel_gap=opts.mip_rel_gap,
                    )

                outcome = world.realise_week(t, opts.seed)
                orders = outcome.orders
                demand = np.zeros(n_v)
                np.add.at(
                    demand, costs.variant_index(orders["variant_id"]), orders["quantity"].to_numpy()
                )
                for name in POLICIES:
                    book, stock[name] = acc.account_week(costs, stock[name], made[name], demand)
                    traces[name].books.append(book)
                    traces[name].abs_error.append(_abs_error(costs, demand, p50[name]))

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
                    np.random.default_rng([opts.seed, 4, t]),
                )
                events = (
                    order_events(orders)
                    + market_events(outcome.market)
                    + production_events(production)
                )
                client.record_events(events)
                refs.observe(t, orders, demand)
                line = ", ".join(f"{n} {traces[n].books[-1].profit:,.0f}" for n in POLICIES)
                version = reply.demand_version if reply is not None else "-"
                say(
                    f"week {k + 1}/{opts.weeks} ({start.date()}): profit {line}; "
                    f"demand v{version} ({time.perf_counter() - tw:.1f} s)"
                )
                if driver is not None:
                    rec = driver.after_week(k, (start + pd.Timedelta(days=7)).date())
                    if rec is not None:
                        say(
                            f"      retrain {rec.job_id or ''} ({rec.via}): promoted "
                            f"{rec.promoted}, {rec.metric_before} -> {rec.metric_after}"
                        )
            models = client.list_models("demand")
    finally:
        stack.stop()
    timings["loop_s"] = time.perf_counter() - t_loop
    timings["netted_weeks"] = float(netted_weeks)
    timings["failed_plans"] = float(failed_plans)
    return SimResult(
        options=opts,
        home=home,
        first_week=str(pd.Timestamp(world.week_date(np.array([n_hist]))[0]).date()),
        shift_week=int(world.preset.shift_week - n_hist),
        traces=traces,
        retrains=list(driver.records) if driver is not None else [],
        models=models,
        timings=timings,
    )


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
