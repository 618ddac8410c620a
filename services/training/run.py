"""``tailorline train`` end to end: frames -> both models -> repository (+ registry) -> report.

Kept apart from the CLI so the retraining job (Ray Tune) and tests call the same function.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from services.features import observed
from services.features.demand import FEATURE_VERSION, build_panel, numeric_features
from services.features.tables import read_truth
from services.registry.consistency import check_versions
from services.registry.promote import promote as promote_version
from services.registry.publish import publish, register_version
from services.registry.repository import ModelRepository
from services.store import schema
from services.training.train import Progress, TrainConfig, train_demand


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


# what of the demand fit's info ``train --json`` shows under ``demand.training``
TRAINING_KEYS = ("epochs", "best_epoch", "rows", "validation_rows", "refit_validation",
                 "train_until", "seconds")  # fmt: skip


def report_shape(demand: dict[str, Any], cost: dict[str, Any], versions: dict[str, Any],
                 training: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The JSON that ``tailorline train --json`` prints (issue 3's shape, plus row counts, and
    ``demand.training``: how the scored fit was trained, from ``training``, its info)."""
    info = training or {}
    return {
        "demand": {
            "model": demand["model"],
            "seasonal_naive": demand["seasonal_naive"],
            "autoets": demand["autoets"],
            "baselines": demand.get("baselines", {}),
            "best_baseline": demand.get("best_baseline"),
            "cold_start": demand["cold_start"],
            "holdout": demand["holdout"],
            "training": {k: info[k] for k in TRAINING_KEYS if k in info},
        },
        "cost": cost,
        "versions": versions,
    }


def has_cost_inputs(frames: dict[str, pd.DataFrame]) -> str | None:
    """None when the frames can train the cost model; else what is missing (one line)."""
    missing = [t for t in ("lines", "production") if frames.get(t) is None or frames[t].empty]
    if not missing:
        return None
    return (
        f"cost model skipped: no {' and no '.join(missing)} records (the demand-only data set "
        "trains the demand model alone; planning needs them)"
    )


def run_training(
    frames: dict[str, pd.DataFrame],
    repo: ModelRepository,
    cfg: TrainConfig,
    *,
    truth: dict[str, pd.DataFrame] | None = None,
    progress: Progress | None = None,
    engine: Any = None,
    promote: bool = True,
    refit: bool = True,
) -> dict[str, Any]:
    """Train both models, publish them as new versions, register them, return the report.

    The hold-out fit of each model is scored and published; with ``refit`` (the default) the same
    configuration is then refit on every week, the hold-out included, and that refit is the
    version served (``versions.demand``/``versions.cost``; ``refit`` in the report records both
    fits). ``promote``: serve the new versions (:func:`services.registry.promote.promote`);
    else they stay candidates. ``engine=None``: no store, the repository alone. A data set
    without lines or production records trains the demand model alone (``cost.skipped``). The
    store and the repository are checked to agree about versions before anything is trained.
    """
    from services.training.champion import publish_refit
    from services.training.cost_loop import publish_cost

    skip_cost = has_cost_inputs(frames)
    check_versions(engine, repo, ("demand",) if skip_cost else ("demand", "cost"))
    panel = observed.attach(build_panel(frames), frames)
    demand = train_demand(panel, cfg, progress)
    v_demand, common = publish_demand(repo, engine, panel, demand, cfg)
    cutoff = panel.week_at(panel.n_weeks - 1 - cfg.holdout_weeks)
    served: dict[str, Any] = {"demand": v_demand}
    fits: dict[str, Any] = {"demand": {"holdout_fit": v_demand, "refit": None}}
    if refit:
        served["demand"], fits["demand"]["refit"] = publish_refit(
            engine, repo, panel, demand, v_demand, cfg
        )
    cost_report: dict[str, Any]
    if skip_cost:
        cost_report = {"skipped": skip_cost}
        served["cost"] = None
    else:
        cost_report, served["cost"], fits["cost"] = publish_cost(
            engine, repo, frames, cutoff, cfg, common, truth=truth, progress=progress, refit=refit
        )
    for name, version in served.items():
        if promote and version is not None:
            promote_version(engine, repo, name, version)
    report = report_shape(demand.metrics, cost_report, served, demand.info)
    report["refit"] = fits
    return report


def publish_demand(
    repo: Any, engine: Any, panel: Any, demand: Any, cfg: Any
) -> tuple[int, dict[str, Any]]:
    """Publish (and register, with a store) the demand model's hold-out fit with its data range,
    config and feature schema; its version and the metadata common to every fit of this run."""
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    cutoff = panel.week_at(train_end)
    data_range = {
        "first_week": str(panel.first_week.date()),
        "last_week": str(panel.last_week.date()),
        "train_until": str(cutoff.date()),
        "holdout_weeks": cfg.holdout_weeks,
    }
    common = {"data_range": data_range, "seed": cfg.seed, "config": asdict(cfg)}
    strings = [c for c, d in demand.inputs if d == "string"]
    version = publish(
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
    if engine is not None:
        register_version(engine, repo, "demand", version)
    return version, common
