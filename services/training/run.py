"""``tailorline train`` end to end: frames -> both models -> repository (+ registry) -> report.

Kept apart from the CLI so the retraining job (Ray Tune) and tests call the same function.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from services.features.demand import FEATURE_VERSION, build_panel, numeric_features
from services.features.tables import read_truth
from services.registry.promote import promote as promote_version
from services.registry.publish import publish, register_version
from services.registry.repository import ModelRepository
from services.store import schema
from services.training.train import Progress, TrainConfig, train_cost, train_demand


def truth_from_store(engine: Any) -> dict[str, pd.DataFrame]:
    """Ground truth of the most recent ingested folder that has one (``<source>/truth``)."""
    t = schema.ingest_runs
    try:
        with engine.connect() as conn:
            sources = conn.execute(select(t.c.source).order_by(t.c.finished_at.desc())).all()
    except Exception:  # no ingest_runs table (an older store): no truth
        return {}
    for (source,) in sources:
        if source and (Path(source) / "truth").is_dir():
            return read_truth(source)
    return {}


def report_shape(demand: dict[str, Any], cost: dict[str, Any], versions: dict[str, int]
                 ) -> dict[str, Any]:  # fmt: skip
    """The JSON that ``tailorline train --json`` prints (issue 3's shape, plus row counts)."""
    return {
        "demand": {
            "model": demand["model"],
            "seasonal_naive": demand["seasonal_naive"],
            "autoets": demand["autoets"],
            "cold_start": demand["cold_start"],
            "holdout": demand["holdout"],
        },
        "cost": cost,
        "versions": versions,
    }


def run_training(
    frames: dict[str, pd.DataFrame],
    repo: ModelRepository,
    cfg: TrainConfig,
    *,
    truth: dict[str, pd.DataFrame] | None = None,
    progress: Progress | None = None,
    engine: Any = None,
    promote: bool = True,
) -> dict[str, Any]:
    """Train both models, publish them as new versions, register them, return the report.

    ``promote``: serve both new versions (:func:`services.registry.promote.promote`); else they
    stay candidates. ``engine=None``: no store, the repository alone.
    """
    panel = build_panel(frames)
    demand = train_demand(panel, cfg, progress)
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    cutoff = panel.week_at(train_end)
    cost = train_cost(frames, cutoff, cfg, (truth or {}).get("unit_cost"), progress)
    data_range = {
        "first_week": str(panel.first_week.date()),
        "last_week": str(panel.last_week.date()),
        "train_until": str(cutoff.date()),
        "holdout_weeks": cfg.holdout_weeks,
    }
    common = {"data_range": data_range, "seed": cfg.seed, "config": asdict(cfg)}
    strings = [c for c, d in demand.inputs if d == "string"]
    v_demand = publish(
        repo,
        "demand",
        demand.model,
        demand.inputs,
        {
            **common,
            "metrics": demand.metrics,
            "training": demand.info,
            "feature_schema": {
                "string": strings,
                "float32": numeric_features(panel.attributes),
                "feature_version": FEATURE_VERSION,
                "horizon_max": cfg.horizon,
                "builder": "services.features.build_serving_frame",
            },
        },
    )
    v_cost = publish(
        repo,
        "cost",
        cost.model,
        cost.inputs,
        {
            **common,
            "metrics": cost.metrics,
            "training": cost.info,
            "feature_schema": {
                "string": [c for c, d in cost.inputs if d == "string"],
                "float32": [c for c, d in cost.inputs if d != "string"],
                "feature_version": FEATURE_VERSION,
                "builder": "services.features.cost_serving_frame",
            },
        },
    )
    for name, version in (("demand", v_demand), ("cost", v_cost)):
        if engine is not None:
            register_version(engine, repo, name, version)
        if promote:
            promote_version(engine, repo, name, version)
    cost_report: dict[str, Any] = {
        k: cost.metrics.get(k)
        for k in ("unit_cost_mape_vs_truth", "hours_mape_vs_truth")
        if k in cost.metrics
    }
    cost_report.update(
        {k: v for k, v in cost.metrics.items() if k.startswith("holdout_")},
    )
    return report_shape(demand.metrics, cost_report, {"demand": v_demand, "cost": v_cost})
