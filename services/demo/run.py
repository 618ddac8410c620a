"""The demo: the whole loop on a synthetic manufacturer, in one process, with progress.

synthetic data -> ingest into the store -> train the demand and cost models -> start the local
stack (KServe predictor, Ray Serve optimizer, gateway) -> a plan through the gateway's CreatePlan
-> the first planned week's actual orders back through RecordEvents -> print the plan and write
an HTML report. The stack is stopped at the end, also on failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from services.common.settings import CoreSettings
from services.datagen.world import World
from services.demo.report import render
from services.gateway.client import GatewayClient, market_events, order_events
from services.local.bootstrap import SetupStep, bootstrap_home
from services.local.stack import LocalStack
from services.planning.request import DEFAULT_DEMAND_MODE, DEFAULT_SERVICE_LEVEL
from services.training.train import TrainConfig

Step = Callable[[str], None]
STEPS = 7


def realised_week_events(data_dir: Path, seed: int) -> list[Any]:
    """What the synthetic world realises in the first planned week, as feedback events."""
    world = World.from_dataset(data_dir)
    outcome = world.realise_week(world.n_weeks, seed)
    return order_events(outcome.orders) + market_events(outcome.market)


@dataclass
class DemoResult:
    data_dir: Path
    report: Path
    steps: list[tuple[str, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    plan_table: pd.DataFrame | None = None


def run_demo(
    settings: CoreSettings,
    *,
    preset: str = "small",
    seed: int = 1,
    horizon: int = 8,
    demand_mode: str = DEFAULT_DEMAND_MODE,
    service_level: float = DEFAULT_SERVICE_LEVEL,
    time_limit_s: float = 60.0,
    report: Path | None = None,
    say: Step = print,
) -> DemoResult:
    home = settings.home
    data_dir = home / "demo-data"
    report = report or home / "reports" / "demo.html"
    result = DemoResult(data_dir=data_dir, report=report)

    def record(step: str, what: str, seconds: float) -> None:
        line = f"{what} ({seconds:.1f} s)"
        result.steps.append((step, line))
        say(f"[{len(result.steps)}/{STEPS}] {step}: {line}")

    def done(step: str, what: str, started: float) -> None:
        record(step, what, time.perf_counter() - started)

    def setup_done(step: SetupStep) -> None:
        if step.seconds is not None:
            record(step.name, step.detail, step.seconds)

    bootstrapped = bootstrap_home(
        settings,
        preset=preset,
        seed=seed,
        train_config=TrainConfig(seed=seed, holdout_weeks=8, origin_stride=2, epochs=30),
        progress=setup_done,
        data_dir=data_dir,
    )
    frames = bootstrapped.frames

    t = time.perf_counter()
    stack = LocalStack(core=settings, optimizer_cpus=1, log_dir=home / "logs")
    stack.start(say=lambda m: say(f"      {m}"))
    done("up", "predictor, optimizer and gateway healthy: " + stack.gateway_target, t)
    try:
        with GatewayClient(stack.gateway_target, timeout_s=time_limit_s + 300) as client:
            t = time.perf_counter()
            reply = client.create_plan(
                horizon=horizon,
                demand_mode=demand_mode,
                service_level=service_level,
                time_limit_s=time_limit_s,
                mip_rel_gap=0.01,
                name="demo",
            )
            plan, periods = reply.plan, reply.periods
            variants = sorted({v.variant for v in plan.variants})
            origin = str((pd.Timestamp(periods[0]) - pd.Timedelta(days=7)).date())
            forecast, _ = client.forecast(variants, horizon, origin_week=origin)
            gap = f"{plan.gap:.2%}" if plan.gap is not None else "n/a"
            done(
                "plan",
                f"through the gateway: plan {reply.plan_id}, {plan.status}, "
                f"{'expected ' if plan.kpis.scenarios else ''}profit "
                f"{plan.costs.profit:,.0f}, gap {gap} "
                f"(demand v{reply.demand_version}, cost v{reply.cost_version})",
                t,
            )

            t = time.perf_counter()
            feedback = realised_week_events(data_dir, seed)
            summary = client.record_events(feedback)
            again = client.record_events(feedback[:5])  # a client retrying: nothing doubles
            done(
                "feedback",
                f"first planned week's actuals: {summary.received} events, {summary.stored} "
                f"stored, {summary.rejected} rejected; a retry of 5 stored {again.stored} "
                f"({again.duplicates} duplicates)",
                t,
            )
    finally:
        stack.stop()
    demand_version, cost_version = reply.demand_version, reply.cost_version
    start = pd.Timestamp(periods[0])

    t = time.perf_counter()
    families = frames["variants"].set_index("variant_id")["family_id"]
    fc = forecast.assign(family_id=forecast["variant_id"].map(families))
    result.summary = {
        "first week": str(start.date()),
        "weeks": horizon,
        "planned for": (
            f"expected profit over {plan.kpis.scenarios} demand scenarios"
            if plan.kpis.scenarios
            else f"demand quantile {service_level:g} as if certain"
        ),
        "plan id": reply.plan_id,
        "variants": len(variants),
        "status": plan.status,
        ("expected profit" if plan.kpis.scenarios else "profit"): round(plan.costs.profit),
        **(
            {"profit P10": round(plan.kpis.profit_p10), "profit P90": round(plan.kpis.profit_p90)}
            if plan.kpis.profit_p10 is not None and plan.kpis.profit_p90 is not None
            else {}
        ),
        "revenue": round(plan.costs.revenue),
        ("expected fill rate" if plan.kpis.scenarios else "fill rate"): (
            f"{plan.kpis.fill_rate:.1%}"
        ),
        "expected leftover (units)": round(plan.kpis.expected_leftover),
        **(
            {"expected leftover at cost (in the profit)": round(plan.costs.end_stock_value)}
            if plan.kpis.scenarios
            else {}
        ),
        "units planned": round(plan.kpis.total_production),
        "whole-unit rounding cost": round(plan.kpis.rounding_cost),
        "mean line utilisation": round(plan.kpis.mean_utilisation, 4),
        "setups": plan.kpis.setups,
        "gap": gap,
        "solve time (s)": round(plan.total_time_s, 2),
        "demand model version": demand_version,
        "cost model version": cost_version,
    }
    report.parent.mkdir(parents=True, exist_ok=True)
    # the report lists the six steps; the last one is this one
    steps = [*result.steps, ("report", str(report))]
    report.write_text(
        render(
            title=f"tailorline demo: plan for {horizon} weeks from {start.date()}",
            summary=result.summary,
            forecast=fc,
            plan=plan,
            periods=periods,
            steps=steps,
        ),
        encoding="utf-8",
    )
    done("report", str(report), t)
    rows = pd.DataFrame([x.to_dict() for x in plan.lines])
    if len(rows):
        rows["week"] = [periods[int(p)] for p in rows["period"]]
        rows = rows.groupby(["week", "line"], as_index=False).agg(
            variants=("variant", "nunique"), units=("quantity", "sum"), setups=("setup", "sum")
        )
        rows["units"] = rows["units"].round().astype(int)
    result.plan_table = rows
    return result
