"""Champion/challenger: score both on the same, most recent hold-out; promote only a better one.

Plain code (no Ray). The challenger is a freshly trained demand model (trained on weeks before
the hold-out); the champion is the served SavedModel loaded from the repository. Both predict the
same hold-out rows (``holdout_rows``: every variant on sale in the last ``holdout_weeks`` weeks,
from one origin), scored by ``metric`` (``wape`` of P50 or ``pinball``; lower is better).

Order of writes, so that a failed or killed job changes nothing that is served:
1. ``retrain_jobs`` row ``running`` (the job's, :mod:`services.store.jobs`);
2. the challenger is published (SavedModel first, ``metadata.json`` last) and registered as a
   ``candidate`` - ``current`` untouched;
3. only if it wins by ``margin`` (relative): :func:`services.registry.promote.promote` moves
   ``served`` to it in the store (the old one becomes ``retired``) and replaces ``current``
   atomically just before that transaction's commit;
4. the job row gets both metric values and the decision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument
from services.features.demand import FEATURE_VERSION, DemandPanel, numeric_features
from services.registry.promote import promote
from services.registry.publish import publish, register_version
from services.registry.repository import ModelRepository
from services.training import metrics as M
from services.training.train import TrainConfig, TrainedModel, holdout_rows, predict_batched

METRICS = ("wape", "pinball")
MODEL = "demand"


@dataclass(frozen=True)
class Decision:
    job_id: str
    metric: str
    margin: float
    challenger: float
    champion: float | None  # None when nothing was served yet
    champion_version: int | None
    challenger_version: int
    promoted: bool
    served_version: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _metric(name: str, y: np.ndarray, q: np.ndarray) -> float:
    if name == "wape":
        return round(M.wape(y, q[:, 1]), 6)
    if name == "pinball":
        return round(M.pinball(y, q), 6)
    raise InvalidArgument(f"unknown metric {name!r}; one of {', '.join(METRICS)}", field="metric")


def saved_model_quantiles(repo: ModelRepository, version: int, rows: pd.DataFrame) -> np.ndarray:
    """P10/P50/P90 of a published demand version for ``rows`` (its serving signature)."""
    import tensorflow as tf

    meta = repo.read_metadata(MODEL, version)
    sig = tf.saved_model.load(str(repo.saved_model_dir(MODEL, version))).signatures[
        "serving_default"
    ]
    parts = []
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
        parts.append(sig(**x)["quantiles"].numpy())
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 3))


def holdout(panel: DemandPanel, cfg: TrainConfig) -> tuple[pd.DataFrame, np.ndarray]:
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    rows = holdout_rows(panel, train_end, cfg.holdout_weeks)
    return rows, rows["y"].to_numpy(np.float64)


def better(challenger: float, champion: float | None, margin: float) -> bool:
    """Lower is better; the challenger must beat the champion by ``margin`` (relative)."""
    if champion is None or not np.isfinite(champion):
        return bool(np.isfinite(challenger))
    return bool(challenger < champion * (1.0 - margin))


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
    extra_metadata: dict[str, Any] | None = None,
) -> Decision:
    """Score challenger and champion on the same hold-out, publish, promote only if better."""
    if metric not in METRICS:
        raise InvalidArgument(
            f"unknown metric {metric!r}; one of {', '.join(METRICS)}", field="metric"
        )
    if margin < 0:
        raise InvalidArgument("margin must be >= 0", field="margin")
    rows, y = holdout(panel, cfg)
    q_new = predict_batched(challenger.model, rows, challenger.inputs).astype(np.float64)
    m_new = _metric(metric, y, q_new)
    champ_version = repo.served_version(MODEL)
    m_old = None
    if champ_version is not None:
        m_old = _metric(metric, y, saved_model_quantiles(repo, champ_version, rows))
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    version = publish(
        repo,
        MODEL,
        challenger.model,
        challenger.inputs,
        {
            "data_range": {
                "first_week": str(panel.first_week.date()),
                "last_week": str(panel.last_week.date()),
                "train_until": str(panel.week_at(train_end).date()),
                "holdout_weeks": cfg.holdout_weeks,
            },
            "seed": cfg.seed,
            "config": asdict(cfg),
            "metrics": challenger.metrics,
            "training": challenger.info,
            "retrain": {"job_id": job_id, "metric": metric, metric: m_new},
            "feature_schema": {
                "string": [c for c, d in challenger.inputs if d == "string"],
                "float32": numeric_features(panel.attributes),
                "feature_version": FEATURE_VERSION,
                "horizon_max": cfg.horizon,
                "builder": "services.features.build_serving_frame",
            },
            **(extra_metadata or {}),
        },
    )
    register_version(engine, repo, MODEL, version)
    win = better(m_new, m_old, margin)
    if win:
        promote(engine, repo, MODEL, version)
        reason = (
            "no served model yet"
            if m_old is None
            else f"{metric} {m_new:.4f} < {m_old:.4f} by more than {margin:.1%}"
        )
    else:
        reason = f"{metric} {m_new:.4f} not better than {m_old:.4f} by {margin:.1%}; candidate"
    return Decision(
        job_id=job_id,
        metric=metric,
        margin=margin,
        challenger=m_new,
        champion=m_old,
        champion_version=champ_version,
        challenger_version=version,
        promoted=win,
        served_version=repo.served_version(MODEL),
        reason=reason,
    )
