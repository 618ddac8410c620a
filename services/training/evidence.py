"""Promotion evidence: a challenger replaces the champion only when noise cannot explain its lead.

Plain numpy/scipy (no TensorFlow, no Ray). The caller scores both models on the same rows of
several **rolling origins** (for demand: forecasts made at the last training week and every
``origin_weeks`` after it, each for the next ``origin_weeks`` weeks; for cost: the production
records of consecutive windows after the training cut-off) and hands over one row per
(origin, series, target) with both models' losses. The rule (:func:`judge`):

1. per origin, the metric of each model (``wape``: sum |y - P50| / sum y; ``pinball``: mean
   pinball loss; lower is better) and whether the challenger is better there;
2. per series (a variant; for cost a variant x line), the difference of the two models' losses
   over every origin, scaled by the series' own scale (its MASE scale: mean absolute week-to-week
   change over its training weeks, so large and small series weigh alike), positive where the
   challenger is better;
3. a one-sided **Wilcoxon signed-rank test** over those per-series differences (H1: the
   challenger's losses are smaller), ``p < alpha`` to promote;
4. the relative improvement of the pooled metric over all origins must be at least ``margin``.

The challenger is promoted iff it is better on at least ``min_wins`` origins (default: a majority),
the test's p-value is below ``alpha`` and the pooled improvement is at least ``margin`` (and
above 0). With no champion, any challenger with a finite metric is promoted. Every figure goes
into the decision (:class:`Evidence`), so the reason can be checked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument

#: fewest series with a non-zero difference the test is run on (fewer: p = 1, no evidence)
MIN_SERIES = 6


@dataclass(frozen=True)
class PromotionRule:
    """How much evidence a challenger needs (docs/retraining.md, *Promotion*)."""

    origins: int = 3  # rolling forecast origins in the hold-out
    origin_weeks: int = 4  # weeks forecast from each origin (horizon 1..origin_weeks)
    alpha: float = 0.05  # the paired test's significance level
    margin: float = 0.0  # least relative improvement of the pooled metric
    min_wins: int = 0  # origins the challenger must win; 0: a majority (origins // 2 + 1)

    def __post_init__(self) -> None:
        if not 1 <= self.origins <= 13:
            raise InvalidArgument(f"must lie in [1, 13], got {self.origins}", field="origins")
        if not 1 <= self.origin_weeks <= 52:
            raise InvalidArgument(
                f"must lie in [1, 52], got {self.origin_weeks}", field="origin_weeks"
            )
        if not 0.0 < self.alpha < 1.0:
            raise InvalidArgument(f"must lie in (0, 1), got {self.alpha}", field="alpha")
        if not 0.0 <= self.margin <= 1.0:
            raise InvalidArgument(f"must lie in [0, 1], got {self.margin}", field="margin")
        if not 0 <= self.min_wins <= self.origins:
            raise InvalidArgument(
                f"must lie in [0, origins={self.origins}], got {self.min_wins}", field="min_wins"
            )

    @property
    def wins_needed(self) -> int:
        return self.min_wins or self.origins // 2 + 1

    def fit_to(self, holdout_weeks: int) -> tuple[int, int]:
        """(origins, weeks per origin) that fit in a hold-out of ``holdout_weeks`` weeks."""
        origins = max(min(self.origins, holdout_weeks), 1)
        weeks = max(min(self.origin_weeks, holdout_weeks // origins), 1)
        return origins, weeks


@dataclass(frozen=True)
class Evidence:
    promoted: bool
    reason: str
    metric: str
    champion: float | None  # pooled over every origin
    challenger: float
    improvement: float | None  # relative: (champion - challenger) / champion
    origins: list[dict[str, Any]]  # per origin: week, rows, champion, challenger, better
    wins: int
    wins_needed: int
    test: dict[str, Any]  # name, statistic, p_value, series, alpha
    rule: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pooled(metric: str, loss: np.ndarray, y: np.ndarray) -> float:
    if not len(loss):
        return math.nan
    if metric == "wape":
        total = float(np.sum(y))
        return float(np.sum(loss) / total) if total > 0 else math.nan
    return float(np.mean(loss))


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def paired_test(diffs: np.ndarray, alpha: float) -> dict[str, Any]:
    """One-sided Wilcoxon signed-rank test that ``diffs`` (champion - challenger) lie above 0."""
    from scipy.stats import wilcoxon  # scipy: only where a decision is made

    d = np.asarray(diffs, dtype=np.float64)
    d = d[np.isfinite(d)]
    nonzero = int(np.sum(d != 0))
    out: dict[str, Any] = {
        "name": "wilcoxon signed-rank, one-sided (challenger better)",
        "series": len(d),
        "series_differing": nonzero,
        "alpha": alpha,
        "mean_difference": _r(float(np.mean(d)) if len(d) else None),
        "challenger_better_series": int(np.sum(d > 0)),
    }
    if nonzero < MIN_SERIES:
        out.update(statistic=None, p_value=1.0, note=f"fewer than {MIN_SERIES} series differ")
        return out
    res = wilcoxon(d, alternative="greater", zero_method="wilcox")
    out.update(statistic=_r(float(res.statistic), 4), p_value=_r(float(res.pvalue), 8))
    return out


def judge(rows: pd.DataFrame, metric: str, rule: PromotionRule, has_champion: bool) -> Evidence:
    """The promotion decision from scored rows.

    ``rows`` columns: ``origin`` (a label, e.g. the origin week), ``series``, ``y`` (actual),
    ``loss_challenger``, ``loss_champion`` (per row: |y - P50| for ``wape``, the pinball loss for
    ``pinball``; NaN for the champion when there is none) and ``scale`` (the series' scale, > 0).
    """
    if metric not in ("wape", "pinball"):
        raise InvalidArgument(f"unknown metric {metric!r}; one of wape, pinball", field="metric")
    y = rows["y"].to_numpy(np.float64)
    new = rows["loss_challenger"].to_numpy(np.float64)
    m_new = _pooled(metric, new, y)
    per_origin: list[dict[str, Any]] = []
    for origin, part in rows.groupby("origin", sort=True):
        py = part["y"].to_numpy(np.float64)
        a = _pooled(metric, part["loss_challenger"].to_numpy(np.float64), py)
        b = (
            _pooled(metric, part["loss_champion"].to_numpy(np.float64), py)
            if has_champion
            else math.nan
        )
        per_origin.append(
            {
                "origin": str(origin),
                "rows": len(part),
                "actual": _r(float(py.sum()), 2),
                "challenger": _r(a),
                "champion": _r(b),
                "challenger_better": bool(math.isfinite(a) and math.isfinite(b) and a < b),
            }
        )
    rule_d = asdict(rule) | {"wins_needed": rule.wins_needed}
    if not has_champion:
        ok = math.isfinite(m_new)
        return Evidence(
            promoted=ok,
            reason="no served model yet" if ok else f"the challenger's {metric} is not finite",
            metric=metric,
            champion=None,
            challenger=_r(m_new) or math.nan,
            improvement=None,
            origins=per_origin,
            wins=0,
            wins_needed=rule.wins_needed,
            test={"name": "none (no champion)", "p_value": None},
            rule=rule_d,
        )
    old = rows["loss_champion"].to_numpy(np.float64)
    m_old = _pooled(metric, old, y)
    improvement = (m_old - m_new) / m_old if math.isfinite(m_old) and m_old > 0 else math.nan
    work = rows.assign(_d=(old - new) / rows["scale"].to_numpy(np.float64))
    per_series = work.groupby("series", sort=True)["_d"].mean().to_numpy()
    test = paired_test(per_series, rule.alpha)
    wins = sum(1 for o in per_origin if o["challenger_better"])
    p = float(test["p_value"])
    why = []
    if wins < rule.wins_needed:
        why.append(f"better on {wins} of {len(per_origin)} origins, {rule.wins_needed} needed")
    if not p < rule.alpha:
        why.append(f"paired test p={p:.3g} not below {rule.alpha:g}")
    if not (math.isfinite(improvement) and improvement > 0 and improvement >= rule.margin):
        shown = "n/a" if not math.isfinite(improvement) else f"{improvement:.1%}"
        why.append(f"pooled {metric} improvement {shown} below the margin {rule.margin:.1%}")
    promoted = not why
    if promoted:
        reason = (
            f"{metric} {m_new:.4f} vs {m_old:.4f} ({improvement:.1%} better), better on {wins} "
            f"of {len(per_origin)} origins, paired test p={p:.3g} < {rule.alpha:g}"
        )
    else:
        reason = "; ".join(why) + f" ({metric} {m_new:.4f} vs {m_old:.4f}); candidate"
    return Evidence(
        promoted=promoted,
        reason=reason,
        metric=metric,
        champion=_r(m_old),
        challenger=_r(m_new) or math.nan,
        improvement=_r(improvement),
        origins=per_origin,
        wins=wins,
        wins_needed=rule.wins_needed,
        test=test,
        rule=rule_d,
    )


def pinball_rows(y: np.ndarray, q: np.ndarray, levels: Any) -> np.ndarray:
    """Per row: the mean over ``levels`` of the pinball loss of ``q`` (rows x levels)."""
    err = np.asarray(y, np.float64)[:, None] - np.asarray(q, np.float64)
    qs = np.asarray(levels, np.float64)[None, :]
    return np.asarray(np.mean(np.maximum(qs * err, (qs - 1.0) * err), axis=1))


def row_losses(metric: str, y: np.ndarray, q: np.ndarray, levels: Any) -> np.ndarray:
    """Per-row loss of quantile forecasts ``q`` (columns = ``levels``) for ``metric``."""
    levels = list(levels)
    if metric == "wape":
        return np.asarray(np.abs(np.asarray(y, np.float64) - q[:, _median(levels)]))
    return pinball_rows(y, q, levels)


def _median(levels: list[float]) -> int:
    return int(np.argmin(np.abs(np.asarray(levels) - 0.5)))
