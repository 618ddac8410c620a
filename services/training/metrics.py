"""Forecast metrics and the baselines they are compared with (numpy/pandas; no TensorFlow).

- WAPE = sum |y - P50| / sum y.
- MASE = mean |y - P50| over the hold-out rows / mean |y_t - y_{t-1}| over the same series'
  training weeks on sale (a pooled, non-seasonal scale: most series are shorter than two years).
- pinball = mean over rows and over the quantile levels (``QUANTILES``) of the quantile loss, units.
- coverage_p10_p90 = share of rows with P10 <= y <= P90 (nominal 0.80); coverage_p05_p95 likewise
  (nominal 0.90).
- bias = sum (P50 - y) / sum y.

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

from services.common.quantiles import QUANTILE_COLUMNS, QUANTILES, index

MIN_ETS_WEEKS = 10


@dataclass(frozen=True)
class ForecastScores:
    wape: float
    mase: float | None
    pinball: float | None
    coverage_p10_p90: float | None
    rows: int
    coverage_p05_p95: float | None = None
    bias: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "wape": _r(self.wape),
            "mase": _r(self.mase),
            "pinball": _r(self.pinball),
            "coverage_p10_p90": _r(self.coverage_p10_p90),
            "coverage_p05_p95": _r(self.coverage_p05_p95),
            "bias": _r(self.bias),
            "rows": self.rows,
        }


def _r(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def wape(y: np.ndarray, p50: np.ndarray) -> float:
    total = float(np.sum(y))
    return float(np.sum(np.abs(y - p50)) / total) if total > 0 else float("nan")


def pinball(y: np.ndarray, q: np.ndarray, levels: tuple[float, ...] = QUANTILES) -> float:
    """Mean quantile loss over rows and ``levels`` (the columns of ``q``), in units."""
    err = np.asarray(y, dtype=np.float64)[:, None] - q
    qs = np.asarray(levels)[None, :]
    return float(np.mean(np.maximum(qs * err, (qs - 1.0) * err)))


def coverage(
    y: np.ndarray, q: np.ndarray, lo: float = 0.1, hi: float = 0.9,
    levels: tuple[float, ...] = QUANTILES,
) -> float:  # fmt: skip
    """Share of rows with ``q[lo] <= y <= q[hi]`` (the columns of ``q`` are ``levels``)."""
    a, b = index(lo, levels), index(hi, levels)
    return float(np.mean((y >= q[:, a]) & (y <= q[:, b])))


def bias(y: np.ndarray, p50: np.ndarray) -> float:
    total = float(np.sum(y))
    return float(np.sum(p50 - y) / total) if total > 0 else float("nan")


def score(
    y: np.ndarray, p50: np.ndarray, q: np.ndarray | None = None, mase_scale: float | None = None
) -> ForecastScores:
    """Scores of point forecast ``p50`` and, when given, quantiles ``q [N, len(QUANTILES)]``."""
    y = np.asarray(y, dtype=np.float64)
    p50 = np.asarray(p50, dtype=np.float64)
    if not len(y):
        return ForecastScores(float("nan"), None, None, None, 0)
    if q is not None and q.shape[1] != len(QUANTILES):
        raise ValueError(f"q has {q.shape[1]} columns; the levels are {QUANTILES}")
    mae = float(np.mean(np.abs(y - p50))) if len(y) else float("nan")
    return ForecastScores(
        wape=wape(y, p50),
        mase=mae / mase_scale if mase_scale else None,
        pinball=pinball(y, q) if q is not None else None,
        coverage_p10_p90=coverage(y, q, 0.1, 0.9) if q is not None else None,
        rows=len(y),
        coverage_p05_p95=coverage(y, q, 0.05, 0.95) if q is not None else None,
        bias=bias(y, p50),
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


def interval_levels() -> list[int]:
    """statsforecast ``level=`` (central interval %) giving every level of QUANTILES but 0.5."""
    return sorted({round(abs(1.0 - 2.0 * q) * 100) for q in QUANTILES if abs(q - 0.5) > 1e-9})


def interval_columns(fc: pd.DataFrame, name: str) -> np.ndarray:
    """``[N, len(QUANTILES)]`` from a statsforecast frame with ``name-lo-L``/``name-hi-L``."""
    cols = []
    for q in QUANTILES:
        if abs(q - 0.5) < 1e-9:
            cols.append(fc[name].to_numpy(dtype=np.float64))
            continue
        lvl = round(abs(1.0 - 2.0 * q) * 100)
        side = "lo" if q < 0.5 else "hi"
        cols.append(fc[f"{name}-{side}-{lvl}"].to_numpy(dtype=np.float64))
    return np.sort(np.maximum(np.stack(cols, axis=1), 0.0), axis=1)


def autoets(history: pd.DataFrame, horizon: int, min_weeks: int = MIN_ETS_WEEKS) -> pd.DataFrame:
    """AutoETS forecasts per series: columns unique_id, step (1..h), ets (bool) and one column
    per quantile level (``p05`` .. ``p95``; ``p50`` is the point forecast).

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
        fc = sf.forecast(
            df=history[history["unique_id"].isin(long_ids)], h=horizon, level=interval_levels()
        )
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        fc["step"] = fc.groupby("unique_id").cumcount() + 1
        q = interval_columns(fc, "AutoETS")
        part = pd.DataFrame({"unique_id": fc["unique_id"], "step": fc["step"], "ets": True})
        for i, c in enumerate(QUANTILE_COLUMNS):
            part[c] = q[:, i]
        parts.append(part)
    short = history[~history["unique_id"].isin(long_ids)]
    if len(short):
        m = short.groupby("unique_id")["y"].mean()
        rep = pd.DataFrame(
            {
                "unique_id": np.repeat(m.index.to_numpy(), horizon),
                "step": np.tile(np.arange(1, horizon + 1), len(m)),
                "ets": False,
            }
        )
        for c in QUANTILE_COLUMNS:
            rep[c] = np.repeat(m.to_numpy(), horizon)
        parts.append(rep)
    if not parts:
        return pd.DataFrame(columns=["unique_id", "step", *QUANTILE_COLUMNS, "ets"])
    return pd.concat(parts, ignore_index=True)


def mape(pred: np.ndarray, truth: np.ndarray) -> float:
    truth = np.asarray(truth, dtype=np.float64)
    ok = truth > 0
    return float(np.mean(np.abs(np.asarray(pred)[ok] - truth[ok]) / truth[ok]))


def fit_calibration(q: np.ndarray, y: np.ndarray, levels: tuple[float, ...] = QUANTILES
                    ) -> np.ndarray:  # fmt: skip
    """Per level, the factor on its distance from P50 that makes the level hold on ``(q, y)``.

    Split-conformal quantile scaling on the calibration (validation) rows: for a level tau below
    the median, the factor ``s`` with share(y < P50 - s * (P50 - q_tau)) = tau; above it,
    share(y > P50 + s * (q_tau - P50)) = 1 - tau. 1.0 at the median; clipped to [0.3, 4].
    """
    y = np.asarray(y, dtype=np.float64)
    med = levels.index(0.5)
    p50 = q[:, med]
    out = np.ones(len(levels))
    for i, tau in enumerate(levels):
        if i == med:
            continue
        below = tau < 0.5
        dist = (p50 - q[:, i]) if below else (q[:, i] - p50)
        exceed = (p50 - y) if below else (y - p50)
        tail = tau if below else 1.0 - tau
        # rows whose distance is 0 are exceeded at any factor when exceed > 0, never otherwise
        ratio = np.where(
            dist > 1e-9, exceed / np.maximum(dist, 1e-9), np.where(exceed > 0, np.inf, -np.inf)
        )
        s = float(np.quantile(ratio, 1.0 - tail, method="higher")) if len(ratio) else 1.0
        out[i] = float(np.clip(s if np.isfinite(s) else 4.0, 0.3, 4.0))
    return out
