"""The forecasts the demand model has to beat, scored on the model's own hold-out rows.

Every baseline forecasts the same rows as ``demand.model`` (warm series: a sale up to the origin;
one origin, the last training week; horizons 1..H), from data of weeks <= the origin only:

- ``seasonal_naive``: demand 52 weeks before the target week (the origin week's for a series
  younger than a year);
- ``last_value``: demand in the origin week;
- ``moving_median_13``: median of the last 13 weeks on sale; its quantiles are the empirical
  quantiles of those weeks;
- ``moving_mean_13``: mean of the last 13 weeks on sale;
- ``autoets``: statsforecast ``AutoETS(season_length=1)`` per series with >= 10 weeks on sale,
  quantiles from its intervals; shorter series: their mean;
- ``croston_optimized``, ``imapa``: statsforecast's intermittent-demand methods, per series;
- ``lightgbm``: one global LightGBM regressor across all series (Tweedie objective, as the M5
  winners), trained on the demand model's own training rows and features (the known-future
  price and promotion included), ``family_id``/``attr_*`` as categorical columns.

:func:`best` names the lowest WAPE. All return ``(p50, q)`` with ``q`` ``[N, len(QUANTILES)]`` or
None where the method gives no distribution.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from services.common.quantiles import QUANTILE_COLUMNS, QUANTILES
from services.features.demand import DemandPanel
from services.training import metrics as M

WINDOW = 13
Forecast = tuple[np.ndarray, np.ndarray | None]

#: LightGBM settings of the global baseline (fixed, not tuned on the hold-out)
LGBM_PARAMS: dict[str, Any] = {
    "objective": "tweedie",
    "tweedie_variance_power": 1.2,
    "n_estimators": 400,
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_data_in_leaf": 40,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "feature_fraction": 0.8,
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
}


def _windows(panel: DemandPanel, rows: np.ndarray, origin: int, weeks: int) -> np.ndarray:
    """Demand of the last ``weeks`` weeks up to ``origin`` per series (NaN: not on sale)."""
    lo = max(origin - weeks + 1, 0)
    block = panel.demand[rows, lo : origin + 1]
    seen = panel.on_sale[rows, lo : origin + 1].copy()
    unobserved = getattr(panel, "unobserved", None)  # weeks nothing was recorded: not zeros
    if unobserved is not None:
        seen &= ~unobserved[rows, lo : origin + 1]
    return np.where(seen, block, np.nan)


def last_value(panel: DemandPanel, rows: pd.DataFrame, origin: int) -> Forecast:
    r = rows["_row"].to_numpy().astype(int)
    return panel.demand[r, origin].astype(np.float64), None


def moving_median(panel: DemandPanel, rows: pd.DataFrame, origin: int, weeks: int = WINDOW
                  ) -> Forecast:  # fmt: skip
    """Median of the last ``weeks`` weeks on sale; quantiles = those weeks' empirical quantiles."""
    r = rows["_row"].to_numpy().astype(int)
    w = _windows(panel, r, origin, weeks)
    w = np.where(np.isfinite(w).any(axis=1, keepdims=True), w, 0.0)
    q = np.nanquantile(w, QUANTILES, axis=1).T  # [N, K], linear interpolation between weeks
    return np.nanmedian(w, axis=1), q


def moving_mean(panel: DemandPanel, rows: pd.DataFrame, origin: int, weeks: int = WINDOW
                ) -> Forecast:  # fmt: skip
    r = rows["_row"].to_numpy().astype(int)
    w = _windows(panel, r, origin, weeks)
    w = np.where(np.isfinite(w).any(axis=1, keepdims=True), w, 0.0)
    return np.nanmean(w, axis=1), None


def seasonal_naive(rows: pd.DataFrame) -> Forecast:
    return M.seasonal_naive(rows), None


def history_frame(panel: DemandPanel, rows: pd.DataFrame, origin: int) -> pd.DataFrame:
    """statsforecast's long frame (unique_id = panel row, ds, y): each series' weeks on sale."""
    recs = []
    launch = panel.variants["launch_idx"].to_numpy()
    for i in np.unique(rows["_row"].to_numpy().astype(int)):
        start = max(int(launch[i]), 0)
        recs.append(
            pd.DataFrame(
                {
                    "unique_id": int(i),
                    "ds": panel.week_at(np.arange(start, origin + 1)),
                    "y": panel.demand[i, start : origin + 1],
                }
            )
        )
    if not recs:
        return pd.DataFrame(columns=["unique_id", "ds", "y"])
    return pd.concat(recs, ignore_index=True)


def _by_step(fc: pd.DataFrame, rows: pd.DataFrame, origin: int, cols: list[str]) -> np.ndarray:
    key = pd.DataFrame(
        {
            "unique_id": rows["_row"].astype(int).to_numpy(),
            "step": (rows["_target_idx"] - origin).to_numpy(),
        }
    )
    merged = key.merge(fc, on=["unique_id", "step"], how="left")
    return merged[cols].fillna(0.0).to_numpy(np.float64)


def autoets(history: pd.DataFrame, rows: pd.DataFrame, origin: int, horizon: int
            ) -> tuple[np.ndarray, np.ndarray, int]:  # fmt: skip
    """AutoETS P50 and quantiles per row, and how many series got a real ETS fit."""
    fc = M.autoets(history, horizon)
    n_ets = int(fc.loc[fc["ets"].astype(bool), "unique_id"].nunique()) if len(fc) else 0
    q = _by_step(fc, rows, origin, list(QUANTILE_COLUMNS))
    return q[:, QUANTILES.index(0.5)], q, n_ets


def intermittent(history: pd.DataFrame, rows: pd.DataFrame, origin: int, horizon: int
                 ) -> dict[str, np.ndarray]:  # fmt: skip
    """CrostonOptimized and IMAPA point forecasts per row (statsforecast, per series)."""
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    from statsforecast import StatsForecast
    from statsforecast.models import IMAPA, CrostonOptimized

    names = {"croston_optimized": "CrostonOptimized", "imapa": "IMAPA"}
    if history.empty:
        return {k: np.zeros(len(rows)) for k in names}
    sf = StatsForecast(models=[CrostonOptimized(), IMAPA()], freq="W-MON", n_jobs=1)
    fc = sf.forecast(df=history, h=horizon)
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    fc["step"] = fc.groupby("unique_id").cumcount() + 1
    out = {}
    for key, col in names.items():
        fc[col] = fc[col].clip(lower=0)
        out[key] = _by_step(fc, rows, origin, [col])[:, 0]
    return out


def lightgbm(train_rows: pd.DataFrame, rows: pd.DataFrame, strings: list[str],
             numeric: list[str], seed: int = 7) -> np.ndarray:  # fmt: skip
    """One global LightGBM model over all series, on the demand model's features and rows."""
    import lightgbm as lgb

    def design(frame: pd.DataFrame) -> pd.DataFrame:
        x = frame[numeric].astype(np.float32).copy()
        for c in strings:
            x[c] = pd.Categorical(frame[c].astype(str), categories=cats[c])
        return x

    cats = {c: sorted(set(train_rows[c].astype(str))) for c in strings}
    params = {k: v for k, v in LGBM_PARAMS.items() if k != "n_estimators"}
    params["seed"] = seed
    data = lgb.Dataset(
        design(train_rows), train_rows["y"].to_numpy(np.float64), categorical_feature=strings
    )
    booster = lgb.train(params, data, num_boost_round=int(LGBM_PARAMS["n_estimators"]))
    return np.maximum(np.asarray(booster.predict(design(rows)), dtype=np.float64), 0.0)


def evaluate(
    panel: DemandPanel,
    rows: pd.DataFrame,
    origin: int,
    horizon: int,
    mase_scale: float,
    *,
    train_rows: pd.DataFrame | None = None,
    strings: list[str] | None = None,
    numeric: list[str] | None = None,
    seed: int = 7,
) -> dict[str, dict[str, Any]]:
    """Every baseline's scores on ``rows`` (warm hold-out rows with ``y``), by name.

    ``train_rows`` (the model's training rows, with ``y``) enable the global LightGBM baseline.
    """
    y = rows["y"].to_numpy(np.float64)
    history = history_frame(panel, rows, origin)
    forecasts: dict[str, Forecast] = {
        "seasonal_naive": seasonal_naive(rows),
        "last_value": last_value(panel, rows, origin),
        "moving_median_13": moving_median(panel, rows, origin),
        "moving_mean_13": moving_mean(panel, rows, origin),
    }
    p50, q, n_ets = autoets(history, rows, origin, horizon)
    forecasts["autoets"] = (p50, q)
    for name, f in intermittent(history, rows, origin, horizon).items():
        forecasts[name] = (f, None)
    if train_rows is not None and strings is not None and numeric is not None and len(train_rows):
        forecasts["lightgbm"] = (lightgbm(train_rows, rows, strings, numeric, seed), None)
    out = {name: M.score(y, p, qq, mase_scale).to_dict() for name, (p, qq) in forecasts.items()}
    out["autoets"]["series_with_ets"] = n_ets
    return out


def best(scores: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The baseline with the lowest WAPE (None when none has one)."""
    ok = {k: v["wape"] for k, v in scores.items() if v.get("wape") is not None}
    return min(ok, key=lambda k: (ok[k], k)) if ok else None


__all__ = [
    "LGBM_PARAMS",
    "best",
    "evaluate",
    "history_frame",
    "last_value",
    "lightgbm",
    "moving_mean",
    "moving_median",
    "seasonal_naive",
]
