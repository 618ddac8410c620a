"""Forecast metrics and the baselines they are compared with (numpy/pandas; no TensorFlow).

- WAPE = sum |y - P50| / sum y.
- MASE = mean |y - P50| over the hold-out rows / mean |y_t - y_{t-1}| over the same series'
  training weeks on sale (a pooled, non-seasonal scale: most series are shorter than two years).
- pinball = mean over rows and over P10, P50, P90 of the quantile loss, in units.
- coverage_p10_p90 = share of rows with P10 <= y <= P90.

Baselines, on the same hold-out rows (origin = last training week, targets = hold-out weeks):

- seasonal naive: the variant's demand 52 weeks before the target week; for a variant on sale
  for less than a year at that point, the last training week's demand (naive);
- AutoETS (statsforecast, per series, non-seasonal) on series with at least ``MIN_ETS_WEEKS``
  weeks on sale; shorter series get the mean of their history; P10/P90 from its 80% interval;
- family mean (cold start): the family's mean weekly demand per variant on sale over the last
  13 training weeks (feature ``fam_mean_13``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.common.quantiles import QUANTILES

MIN_ETS_WEEKS = 10


@dataclass(frozen=True)
class ForecastScores:
    wape: float
    mase: float | None
    pinball: float | None
    coverage_p10_p90: float | None
    rows: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "wape": _r(self.wape),
            "mase": _r(self.mase),
            "pinball": _r(self.pinball),
            "coverage_p10_p90": _r(self.coverage_p10_p90),
            "rows": self.rows,
        }


def _r(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def wape(y: np.ndarray, p50: np.ndarray) -> float:
    total = float(np.sum(y))
    return float(np.sum(np.abs(y - p50)) / total) if total > 0 else float("nan")


def pinball(y: np.ndarray, q: np.ndarray) -> float:
    err = y[:, None] - q
    qs = np.asarray(QUANTILES)[None, :]
    return float(np.mean(np.maximum(qs * err, (qs - 1.0) * err)))


def coverage(y: np.ndarray, q: np.ndarray) -> float:
    return float(np.mean((y >= q[:, 0]) & (y <= q[:, 2])))


def score(
    y: np.ndarray, p50: np.ndarray, q: np.ndarray | None = None, mase_scale: float | None = None
) -> ForecastScores:
    y = np.asarray(y, dtype=np.float64)
    p50 = np.asarray(p50, dtype=np.float64)
    if not len(y):
        return ForecastScores(float("nan"), None, None, None, 0)
    mae = float(np.mean(np.abs(y - p50))) if len(y) else float("nan")
    return ForecastScores(
        wape=wape(y, p50),
        mase=mae / mase_scale if mase_scale else None,
        pinball=pinball(y, q) if q is not None else None,
        coverage_p10_p90=coverage(y, q) if q is not None else None,
        rows=len(y),
    )


def mase_scale(history: np.ndarray, on_sale: np.ndarray) -> float:
    """Mean absolute week-to-week change over weeks on sale (rows = series, cols = weeks)."""
    d = np.abs(np.diff(history, axis=1))
    ok = on_sale[:, 1:] & on_sale[:, :-1]
    return float(d[ok].mean()) if ok.any() else float("nan")


def seasonal_naive(rows: pd.DataFrame) -> np.ndarray:
    """Seasonal naive per row from the feature columns (``seasonal_52``, ``lag_1``)."""
    year_old = rows["age_weeks"].to_numpy() >= 52
    return np.where(year_old, rows["seasonal_52"], rows["lag_1"]).astype(np.float64)


def autoets(history: pd.DataFrame, horizon: int, min_weeks: int = MIN_ETS_WEEKS) -> pd.DataFrame:
    """AutoETS forecasts per series: columns unique_id, step (1..h), p10, p50, p90, ets (bool).

    ``history``: columns unique_id, ds (week), y, only weeks on sale, up to the origin.
    """
    os.environ.setdefault("NIXTLA_ID_AS_COL", "1")
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    counts = history.groupby("unique_id")["y"].size()
    long_ids = counts[counts >= min_weeks].index
    parts = []
    if len(long_ids):
        sf = StatsForecast(models=[AutoETS(season_length=1)], freq="W-MON", n_jobs=1)
        fc = sf.forecast(df=history[history["unique_id"].isin(long_ids)], h=horizon, level=[80])
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        fc["step"] = fc.groupby("unique_id").cumcount() + 1
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": fc["unique_id"],
                    "step": fc["step"],
                    "p10": fc["AutoETS-lo-80"].clip(lower=0),
                    "p50": fc["AutoETS"].clip(lower=0),
                    "p90": fc["AutoETS-hi-80"].clip(lower=0),
                    "ets": True,
                }
            )
        )
    short = history[~history["unique_id"].isin(long_ids)]
    if len(short):
        m = short.groupby("unique_id")["y"].mean()
        rep = pd.DataFrame(
            {
                "unique_id": np.repeat(m.index.to_numpy(), horizon),
                "step": np.tile(np.arange(1, horizon + 1), len(m)),
                "p50": np.repeat(m.to_numpy(), horizon),
            }
        )
        rep["p10"] = rep["p90"] = rep["p50"]
        rep["ets"] = False
        parts.append(rep)
    if not parts:
        return pd.DataFrame(columns=["unique_id", "step", "p10", "p50", "p90", "ets"])
    return pd.concat(parts, ignore_index=True)


def mape(pred: np.ndarray, truth: np.ndarray) -> float:
    truth = np.asarray(truth, dtype=np.float64)
    ok = truth > 0
    return float(np.mean(np.abs(np.asarray(pred)[ok] - truth[ok]) / truth[ok]))


def fit_calibration(q: np.ndarray, y: np.ndarray, target: float = 0.1) -> tuple[float, float]:
    """Scale factors (a, b) of the P50-P10 and P90-P50 distances so each tail holds ~10%."""
    p10, p50, p90 = q[:, 0], q[:, 1], q[:, 2]
    lo, hi = p50 - p10, p90 - p50

    def solve(dist: np.ndarray, exceed: np.ndarray) -> float:
        # smallest factor s with share(exceed > s * dist) <= target (ties at 0 distance count in)
        ratio = np.where(
            dist > 1e-9, exceed / np.maximum(dist, 1e-9), np.where(exceed > 0, np.inf, 0)
        )
        s = float(np.quantile(ratio, 1.0 - target))
        return float(np.clip(s if np.isfinite(s) else 3.0, 0.5, 3.0))

    return solve(lo, p50 - y), solve(hi, y - p50)
