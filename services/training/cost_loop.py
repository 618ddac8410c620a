"""The cost and processing-time model in the loop: publish, champion/challenger, refit, record.

Plain code (no Ray). The same rule as the demand model (:mod:`services.training.evidence`): the
production records after the training cut-off are split into ``origins`` consecutive windows of
``origin_weeks`` weeks (the rolling origins); both models predict each record's unit cost; a row's
loss is |predicted - actual unit cost| x quantity (EUR), its ``y`` the record's cost, a series is
a (variant, line) pair. The champion is the served SavedModel when it was trained before the
cut-off, else its configuration refit on the same records. A winner is refit on every record and
that refit is served.

Every cost version that is served gets its predictions for every eligible (variant, line) pair
written to ``cost_predictions`` (:func:`record_predictions`), with a P10-P90 band from the
hold-out's residual spread (the cost model itself predicts a point): the monitoring compares
production records as they arrive with the predictions of the cost version trained before them
(:mod:`services.monitoring.cost`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, fields, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert

from services.common.errors import FailedPrecondition
from services.features.cost import build_cost_training_frame, cost_serving_frame
from services.features.demand import FEATURE_VERSION
from services.registry.promote import promote
from services.registry.publish import publish, register_version
from services.registry.repository import ModelRepository
from services.store import schema
from services.store.db import writer
from services.training.evidence import PromotionRule, judge
from services.training.train import Progress, TrainConfig, TrainedModel, predict_batched, train_cost

MODEL = "cost"
DAY6 = pd.Timedelta(days=6)


def _schema(trained: TrainedModel) -> dict[str, Any]:
    return {
        "string": [c for c, d in trained.inputs if d == "string"],
        "float32": [c for c, d in trained.inputs if d != "string"],
        "feature_version": FEATURE_VERSION,
        "builder": "services.features.cost_serving_frame",
    }


def residual_band(
    trained: TrainedModel, records: pd.DataFrame, levels: tuple[float, float] = (0.1, 0.9)
) -> list[float]:
    """Multipliers (low, high) on the predicted unit cost that held ``levels`` of ``records``'
    actual unit costs (quantiles of actual / predicted); (1, 1) without records."""
    if records.empty:
        return [1.0, 1.0]
    p = predict_batched(trained.model, records, trained.inputs)[:, 0].astype(np.float64)
    ratio = records["unit_cost"].to_numpy(np.float64) / np.maximum(p, 1e-9)
    ratio = ratio[np.isfinite(ratio)]
    if not len(ratio):
        return [1.0, 1.0]
    lo, hi = np.quantile(ratio, levels)
    return [round(float(min(lo, 1.0)), 4), round(float(max(hi, 1.0)), 4)]


def _later(frames: dict[str, pd.DataFrame], cutoff: pd.Timestamp | None) -> pd.DataFrame:
    records = build_cost_training_frame(frames)
    if cutoff is None or records.empty:
        return records.iloc[:0]
    return records[records["date"] > cutoff + DAY6].reset_index(drop=True)


def record_predictions(
    engine: Any,
    version: int,
    trained: TrainedModel,
    frames: dict[str, pd.DataFrame],
    band: list[float],
) -> int:
    """Write ``cost_predictions`` rows of ``version`` for every eligible (variant, line)."""
    if engine is None:
        return 0
    variants = sorted(set(frames["variants"]["variant_id"].astype(str)))
    rows = cost_serving_frame(frames, variants)
    if rows.empty:
        return 0
    p = predict_batched(trained.model, rows, trained.inputs).astype(np.float64)
    now = dt.datetime.now(dt.UTC)
    recs = [
        {
            "model_version": int(version),
            "variant_id": str(v),
            "line_id": str(ln),
            "unit_cost": float(c),
            "unit_cost_p10": float(c * band[0]),
            "unit_cost_p90": float(c * band[1]),
            "hours_per_unit": float(h),
            "created_at": now,
        }
        for v, ln, c, h in zip(rows["variant_id"], rows["line_id"], p[:, 0], p[:, 1], strict=True)
    ]
    with writer(engine).begin() as conn:
        conn.execute(insert(schema.cost_predictions), recs)
    return len(recs)


def _publish(
    engine: Any,
    repo: ModelRepository,
    trained: TrainedModel,
    meta: dict[str, Any],
) -> int:
    version = publish(repo, MODEL, trained.model, trained.inputs, meta)
    if engine is not None:
        register_version(engine, repo, MODEL, version)
    return version


def _range(frames: dict[str, pd.DataFrame], until: pd.Timestamp | None) -> dict[str, Any]:
    dates = pd.to_datetime(frames["production"]["date"], errors="coerce").dropna()
    last = dates.max() if len(dates) else None
    end = until if until is not None else last
    return {
        "first_week": str(dates.min().date()) if len(dates) else None,
        "last_week": str(last.date()) if last is not None else None,
        "train_until": str(end.date()) if end is not None else None,
    }


def refit_metadata(
    meta: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    cfg: TrainConfig,
    full: TrainedModel,
    refit_of: int,
) -> dict[str, Any]:
    """The metadata of ``full``, the refit on every record of hold-out fit ``refit_of`` (whose
    metadata is ``meta``): as the demand refit records it (:func:`services.training.champion.
    publish_refit`), no week held out (``holdout_weeks`` 0 in ``data_range`` and ``config``), the
    hold-out fit's metrics under ``metrics``, ``refit_of`` naming that fit."""
    return {
        **meta,
        "data_range": {**meta.get("data_range", {}), **_range(frames, None), "holdout_weeks": 0},
        "config": asdict(replace(cfg, holdout_weeks=0)),
        "training": full.info,
        "feature_schema": _schema(full),
        "metrics_of": f"version {refit_of} (the hold-out fit of this configuration)",
        "refit_of": refit_of,
    }


def publish_cost(
    engine: Any,
    repo: ModelRepository,
    frames: dict[str, pd.DataFrame],
    cutoff: pd.Timestamp,
    cfg: TrainConfig,
    common: dict[str, Any],
    *,
    truth: dict[str, pd.DataFrame] | None = None,
    progress: Progress | None = None,
    refit: bool = True,
) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """``tailorline train``'s cost model: the hold-out fit (records up to ``cutoff``), scored and
    published; with ``refit`` the same trained on every record. (report, served version, fits)."""
    held = train_cost(frames, cutoff, cfg, (truth or {}).get("unit_cost"), progress)
    band = residual_band(held, _later(frames, cutoff))
    meta = {
        **common,
        "metrics": held.metrics,
        "training": held.info,
        "interval_band": band,
        "feature_schema": _schema(held),
    }
    v_held = _publish(engine, repo, held, meta)
    served, trained = v_held, held
    fits: dict[str, Any] = {"holdout_fit": v_held, "refit": None}
    if refit:
        full = train_cost(frames, None, cfg)
        meta_full = refit_metadata(meta, frames, cfg, full, v_held)
        served, trained = _publish(engine, repo, full, meta_full), full
        fits["refit"] = {"version": served, "refit_of": v_held, "rows": full.info.get("rows")}
    record_predictions(engine, served, trained, frames, band)
    report: dict[str, Any] = {
        k: held.metrics.get(k)
        for k in ("unit_cost_mape_vs_truth", "lot_cost_mape_vs_truth", "hours_mape_vs_truth")
        if k in held.metrics
    }
    report.update({k: v for k, v in held.metrics.items() if k.startswith("holdout_")})
    report["interval_band"] = band
    return report, served, fits


def cost_rows(
    frames: dict[str, pd.DataFrame], cutoff: pd.Timestamp, rule: PromotionRule, weeks: int
) -> pd.DataFrame:
    """The production records after ``cutoff`` in ``origins`` windows of ``origin_weeks``
    (column ``origin`` = the window's first Monday)."""
    later = _later(frames, cutoff)
    origins, per = rule.fit_to(weeks)
    start = cutoff + pd.Timedelta(days=7)
    k = ((later["date"] - start).dt.days // (7 * per)).to_numpy()
    later = later.assign(_k=k)
    later = later[(later["_k"] >= 0) & (later["_k"] < origins)]
    later["origin"] = (start + pd.to_timedelta(later["_k"] * 7 * per, unit="D")).dt.date.astype(str)
    return later.reset_index(drop=True)


def recipe(meta: dict[str, Any], base: TrainConfig) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    stored = {k: v for k, v in (meta.get("config") or {}).items() if k in known}
    if "hidden" in stored:
        stored["hidden"] = tuple(int(u) for u in stored["hidden"])
    # on base's hold-out: a refit's config says 0 weeks held out
    return replace(base, **{**stored, "holdout_weeks": base.holdout_weeks})


def decide_cost(
    engine: Any,
    repo: ModelRepository,
    frames: dict[str, pd.DataFrame],
    cutoff: pd.Timestamp,
    cfg: TrainConfig,
    *,
    job_id: str,
    rule: PromotionRule,
    challenger: TrainedModel | None = None,
) -> dict[str, Any]:
    """Retrain the cost model and promote it only with the evidence (module doc)."""
    from services.training.champion import saved_model_outputs

    rows = cost_rows(frames, cutoff, rule, cfg.holdout_weeks)
    if rows.empty:
        raise FailedPrecondition(
            f"no production records after {cutoff.date()} to judge a cost model on",
            field="production",
        )
    challenger = challenger or train_cost(frames, cutoff, cfg)
    y = (rows["unit_cost"] * rows["quantity"]).to_numpy(np.float64)
    qty = rows["quantity"].to_numpy(np.float64)
    actual = rows["unit_cost"].to_numpy(np.float64)
    p_new = predict_batched(challenger.model, rows, challenger.inputs)[:, 0].astype(np.float64)
    scored = pd.DataFrame(
        {
            "origin": rows["origin"],
            "series": rows["variant_id"].astype(str) + "@" + rows["line_id"].astype(str),
            "y": y,
            "loss_challenger": np.abs(p_new - actual) * qty,
            "loss_champion": np.nan,
        }
    )
    scored["scale"] = np.maximum(scored.groupby("series")["y"].transform("mean"), 1e-6)
    champ = repo.served_version(MODEL)
    scored_as = ""
    if champ is not None:
        meta = repo.read_metadata(MODEL, champ)
        until = (meta.get("data_range") or {}).get("train_until")
        p_old = None
        if until is not None and pd.Timestamp(until) <= cutoff:
            try:
                p_old = saved_model_outputs(repo, MODEL, champ, rows)["unit_cost"]
                scored_as = "served model (trained before the hold-out)"
            except KeyError:
                p_old = None
        if p_old is None:
            again = train_cost(frames, cutoff, recipe(meta, cfg))
            p_old = predict_batched(again.model, rows, again.inputs)[:, 0].astype(np.float64)
            scored_as = "its configuration refit on the challenger's records"
        scored["loss_champion"] = np.abs(p_old - actual) * qty
    evidence = judge(scored, "wape", rule, has_champion=champ is not None)
    common = {
        "data_range": {**_range(frames, cutoff), "holdout_weeks": cfg.holdout_weeks},
        "seed": cfg.seed,
        "config": asdict(cfg),
    }
    band = residual_band(challenger, rows)
    meta = {
        **common,
        "metrics": challenger.metrics,
        "training": challenger.info,
        "interval_band": band,
        "feature_schema": _schema(challenger),
    }
    retrain = {"retrain": {"job_id": job_id, "evidence": evidence.to_dict()}}
    v_held = _publish(engine, repo, challenger, {**meta, **retrain})
    refit = None
    if evidence.promoted:
        full = train_cost(frames, None, cfg)
        served = _publish(engine, repo, full, refit_metadata(meta, frames, cfg, full, v_held))
        promote(engine, repo, MODEL, served)
        record_predictions(engine, served, full, frames, band)
        refit = {"version": served, "refit_of": v_held, "rows": full.info.get("rows")}
    return {
        "model": MODEL,
        "job_id": job_id,
        "metric": "wape",
        "margin": rule.margin,
        "challenger": evidence.challenger,
        "champion": evidence.champion,
        "champion_version": champ,
        "challenger_version": v_held,
        "promoted": evidence.promoted,
        "served_version": repo.served_version(MODEL),
        "reason": evidence.reason,
        "evidence": evidence.to_dict(),
        "refit": refit,
        "champion_scored_as": scored_as,
    }
