"""Champion/challenger: both models on the same rolling origins; promote only on evidence.

Plain code (no Ray). The challenger is a freshly trained demand model (trained on weeks before
the hold-out). Both forecast the same rows from several **rolling origins** in the hold-out (the
last training week and every ``origin_weeks`` after it, each for the next ``origin_weeks``
weeks: :func:`origin_rows`); the rule is :func:`services.training.evidence.judge` (better on most
origins, a one-sided Wilcoxon signed-rank test over the per-series differences, and at least
``margin`` better pooled). The champion is the served SavedModel when it was trained only on
weeks before the hold-out; a served version that has seen those weeks (a full-data refit) is
scored by refitting its recorded configuration on the challenger's training weeks, so neither
side has seen the weeks it is scored on (``champion_scored_as`` says which).

Order of writes, so that a failed or killed job changes nothing that is served:
1. ``retrain_jobs`` row ``running`` (the job's, :mod:`services.store.jobs`);
2. the challenger (the hold-out fit) is published and registered as a ``candidate``;
3. only if it wins: the same configuration is **refit on every week, the hold-out included**
   (fixed epochs: the hold-out fit's best; its interval calibration), published and registered,
   and :func:`services.registry.promote.promote` serves that refit;
4. the job row gets the decision, its evidence and both fits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument
from services.common.quantiles import QUANTILES
from services.features.demand import FEATURE_VERSION, DemandPanel, numeric_features
from services.registry.promote import promote
from services.registry.publish import publish, register_version
from services.registry.repository import ModelRepository
from services.training.evidence import PromotionRule, judge, row_losses
from services.training.train import TrainConfig, TrainedModel, holdout_rows, predict_batched

METRICS = ("wape", "pinball")
MODEL = "demand"


@dataclass(frozen=True)
class Decision:
    job_id: str
    metric: str
    margin: float
    challenger: float  # pooled over every origin
    champion: float | None  # None when nothing was served yet
    champion_version: int | None
    challenger_version: int  # the hold-out fit (a candidate)
    promoted: bool
    served_version: int | None  # after a win: the full-data refit of the challenger
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    refit: dict[str, Any] | None = None  # the full-data refit: version, train_until, epochs, ...
    champion_scored_as: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def saved_model_outputs(
    repo: ModelRepository, name: str, version: int, rows: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Every output of a published version for ``rows`` (its serving signature), by name.

    KeyError names an input the version needs that ``rows`` lacks (features changed since)."""
    import tensorflow as tf

    meta = repo.read_metadata(name, version)
    missing = [c["name"] for c in meta["inputs"] if c["name"] not in rows.columns]
    if missing:
        raise KeyError(f"{name} v{version} needs inputs the rows lack: {missing[:5]}")
    sig = tf.saved_model.load(str(repo.saved_model_dir(name, version))).signatures[
        "serving_default"
    ]
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(rows), 8192):
        chunk = rows.iloc[i : i + 8192]
        x = {}
        for c in meta["inputs"]:
            col = chunk[c["name"]]
            x[c["name"]] = tf.constant(
                col.astype(str).to_numpy().astype(object)
                if c["dtype"] == "string"
                else col.to_numpy(dtype=np.float32)
            )
        for key, value in sig(**x).items():
            parts.setdefault(key, []).append(value.numpy())
    return {k: np.concatenate(v).astype(np.float64) for k, v in parts.items()}


def saved_model_quantiles(repo: ModelRepository, version: int, rows: pd.DataFrame) -> np.ndarray:
    """The quantiles of a published demand version for ``rows`` (its serving signature)."""
    if not len(rows):
        return np.zeros((0, len(model_levels(repo, version))))
    return saved_model_outputs(repo, MODEL, version, rows)["quantiles"]


def model_levels(repo: ModelRepository, version: int) -> list[float]:
    """The quantile levels a published demand version names in its metadata."""
    outputs = repo.read_metadata(MODEL, version).get("outputs") or [{}]
    return list(outputs[0].get("quantiles") or QUANTILES)


def holdout(panel: DemandPanel, cfg: TrainConfig) -> tuple[pd.DataFrame, np.ndarray]:
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    rows = holdout_rows(panel, train_end, cfg.holdout_weeks)
    return rows, rows["y"].to_numpy(np.float64)


def origin_rows(panel: DemandPanel, cfg: TrainConfig, rule: PromotionRule) -> pd.DataFrame:
    """The rows of every rolling origin: origin ``train_end + k * weeks`` (k = 0..origins-1)
    forecasting its next ``weeks`` weeks; column ``origin`` = the origin week (ISO)."""
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    origins, weeks = rule.fit_to(cfg.holdout_weeks)
    parts = []
    for k in range(origins):
        origin = train_end + k * weeks
        rows = holdout_rows(panel, origin, weeks)
        rows["origin"] = str(panel.week_at(origin).date())
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


def series_scale(panel: DemandPanel, rows: pd.DataFrame, train_end: int) -> np.ndarray:
    """Per row, its series' scale: the mean absolute week-to-week change over the series'
    training weeks on sale (MASE's); where that is 0 or unknown, the series' mean actual in
    ``rows``; at least 1e-3."""
    r = rows["_row"].to_numpy().astype(int)
    hist = panel.demand[:, : train_end + 1]
    launch = panel.variants["launch_idx"].to_numpy()
    on = np.arange(train_end + 1)[None, :] >= launch[:, None]
    diffs = np.abs(np.diff(hist, axis=1))
    both = on[:, 1:] & on[:, :-1]
    count = both.sum(axis=1)
    mase = np.divide((diffs * both).sum(axis=1), count, out=np.zeros(len(hist)), where=count > 0)
    mean_y = rows.groupby("_row")["y"].transform("mean").to_numpy()
    scale = np.where(mase[r] > 0, mase[r], mean_y)
    return np.asarray(np.maximum(scale, 1e-3))


def recipe(meta: dict[str, Any], base: TrainConfig) -> TrainConfig:
    """The TrainConfig a published version was trained with (its metadata's ``config``), on
    ``base``'s hold-out; keys this code does not know are left out."""
    known = {f.name for f in fields(TrainConfig)}
    stored = {k: v for k, v in (meta.get("config") or {}).items() if k in known}
    if "hidden" in stored:
        stored["hidden"] = tuple(int(u) for u in stored["hidden"])
    cfg = replace(base, **stored)
    return replace(cfg, holdout_weeks=base.holdout_weeks, val_weeks=base.val_weeks or 8)


def champion_quantiles(
    repo: ModelRepository,
    version: int,
    panel: DemandPanel,
    rows: pd.DataFrame,
    cfg: TrainConfig,
) -> tuple[np.ndarray, list[float], str]:
    """The champion's quantiles for ``rows``, its levels, and how it was scored (module doc)."""
    from services.training.train import train_demand

    meta = repo.read_metadata(MODEL, version)
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    until = (meta.get("data_range") or {}).get("train_until")
    unseen = until is None or pd.Timestamp(until) <= panel.week_at(train_end)
    if unseen:
        try:
            q = saved_model_quantiles(repo, version, rows)
            return q, model_levels(repo, version), "served model (trained before the hold-out)"
        except KeyError:  # its inputs are not this code's features any more
            pass
    again = train_demand(panel, recipe(meta, cfg), evaluate=False)
    q = predict_batched(again.model, rows, again.inputs).astype(np.float64)
    why = "saw the hold-out" if not unseen else "its inputs changed"
    return q, list(QUANTILES), f"its configuration refit on the challenger's weeks ({why})"


def full_refit(panel: DemandPanel, challenger: TrainedModel, cfg: TrainConfig) -> TrainedModel:
    """The challenger's configuration trained on every week, the hold-out included: as many
    epochs as the hold-out fit's best, no validation split, the hold-out fit's calibration."""
    from services.training.train import train_demand

    epochs = int(challenger.info.get("best_epoch") or challenger.info.get("epochs") or cfg.epochs)
    full = replace(cfg, holdout_weeks=0, val_weeks=0, epochs=max(epochs, 1))
    refit = train_demand(panel, full, evaluate=False)
    cal = getattr(challenger.model, "calibration", None)
    if cal is not None and hasattr(refit.model, "calibration"):
        refit.model.calibration.assign(cal.numpy())
    return refit


def _metadata(panel: DemandPanel, cfg: TrainConfig, trained: TrainedModel) -> dict[str, Any]:
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    return {
        "data_range": {
            "first_week": str(panel.first_week.date()),
            "last_week": str(panel.last_week.date()),
            "train_until": str(panel.week_at(train_end).date()),
            "holdout_weeks": cfg.holdout_weeks,
        },
        "seed": cfg.seed,
        "config": asdict(cfg),
        "training": trained.info,
        "feature_schema": {
            "string": [c for c, d in trained.inputs if d == "string"],
            "float32": numeric_features(panel.attributes),
            "feature_version": FEATURE_VERSION,
            "horizon_max": cfg.horizon,
            "builder": "services.features.build_serving_frame",
        },
    }


def publish_refit(
    engine: Any,
    repo: ModelRepository,
    panel: DemandPanel,
    holdout_fit: TrainedModel,
    holdout_version: int,
    cfg: TrainConfig,
    extra_metadata: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Refit ``holdout_fit``'s configuration on every week, publish and register it (not served
    yet); its version and the record of the refit."""
    refit = full_refit(panel, holdout_fit, cfg)
    full = replace(cfg, holdout_weeks=0)
    meta = _metadata(panel, full, refit)
    meta.update(
        {
            # the hold-out metrics are the hold-out fit's: this version saw those weeks
            "metrics": holdout_fit.metrics,
            "metrics_of": f"version {holdout_version} (the hold-out fit of this configuration)",
            "refit_of": holdout_version,
            **(extra_metadata or {}),
        }
    )
    version = publish(repo, MODEL, refit.model, refit.inputs, meta)
    if engine is not None:
        register_version(engine, repo, MODEL, version)
    record = {
        "version": version,
        "refit_of": holdout_version,
        "train_until": meta["data_range"]["train_until"],
        "epochs": refit.info.get("epochs"),
        "rows": refit.info.get("rows"),
        "seconds": refit.info.get("seconds"),
    }
    return version, record


def decide(
    engine: Any,
    repo: ModelRepository,
    panel: DemandPanel,
    challenger: TrainedModel,
    cfg: TrainConfig,
    *,
    job_id: str,
    metric: str = "wape",
    margin: float = 0.0,
    rule: PromotionRule | None = None,
    challenger_cfg: TrainConfig | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Decision:
    """Score challenger and champion on the rolling origins; publish the challenger; on a win,
    refit it on every week and serve that refit (module doc)."""
    if metric not in METRICS:
        raise InvalidArgument(
            f"unknown metric {metric!r}; one of {', '.join(METRICS)}", field="metric"
        )
    if margin < 0:
        raise InvalidArgument("margin must be >= 0", field="margin")
    rule = replace(rule or PromotionRule(), margin=margin)
    challenger_cfg = challenger_cfg or cfg
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    rows = origin_rows(panel, cfg, rule)
    y = rows["y"].to_numpy(np.float64)
    q_new = predict_batched(challenger.model, rows, challenger.inputs).astype(np.float64)
    champ_version = repo.served_version(MODEL)
    scored = pd.DataFrame(
        {
            "origin": rows["origin"],
            "series": rows["variant_id"],
            "y": y,
            "loss_challenger": row_losses(metric, y, q_new, QUANTILES),
            "loss_champion": np.nan,
            "scale": series_scale(panel, rows, train_end),
        }
    )
    scored_as = ""
    if champ_version is not None:
        q_old, levels, scored_as = champion_quantiles(repo, champ_version, panel, rows, cfg)
        scored["loss_champion"] = row_losses(metric, y, q_old, levels)
    evidence = judge(scored, metric, rule, has_champion=champ_version is not None)
    meta = _metadata(panel, challenger_cfg, challenger)
    meta.update(
        {
            "metrics": challenger.metrics,
            "retrain": {
                "job_id": job_id,
                "metric": metric,
                metric: evidence.challenger,
                "evidence": evidence.to_dict(),
            },
            **(extra_metadata or {}),
        }
    )
    version = publish(repo, MODEL, challenger.model, challenger.inputs, meta)
    register_version(engine, repo, MODEL, version)
    refit = None
    if evidence.promoted:
        served, refit = publish_refit(
            engine, repo, panel, challenger, version, challenger_cfg, extra_metadata
        )
        promote(engine, repo, MODEL, served)
    return Decision(
        job_id=job_id,
        metric=metric,
        margin=margin,
        challenger=float(evidence.challenger),
        champion=evidence.champion,
        champion_version=champ_version,
        challenger_version=version,
        promoted=evidence.promoted,
        served_version=repo.served_version(MODEL),
        reason=evidence.reason,
        evidence=evidence.to_dict(),
        refit=refit,
        champion_scored_as=scored_as,
    )
