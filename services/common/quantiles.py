"""The demand quantile levels, and the distribution they describe: one definition for all.

The demand model's output columns are these levels in this order, the forecast table has one
column per level (``p05`` .. ``p95``), and the planning problem's ``quantiles`` are the same tuple,
so a forecast row enters the optimizer as it is. Changing the levels changes the model's output
contract (docs/model-interface.md); the served model names its levels in its metadata
(``outputs[0].quantiles``), and a caller should read them from there.

Between the served levels the distribution is piecewise linear in the level (the inverse CDF
through the points ``(level, value)``), extended to levels 0 and 1 with the slope of the outer
segments and clamped at 0: the same rule as ``optimizer.core.scenarios.inverse_cdf``, so the
planner's :func:`interpolate`/:func:`sample` and the optimizer's scenarios agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

#: Quantile levels of the demand forecast, ascending.
QUANTILES: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def column(level: float) -> str:
    """The forecast table's column of a level: 0.05 -> ``p05``, 0.975 -> ``p97.5``."""
    pct = round(float(level) * 100.0, 6)
    if not 0.0 < pct < 100.0:
        raise ValueError(f"a quantile level must lie strictly between 0 and 1: {level}")
    whole = int(pct)
    return f"p{whole:02d}" if pct == whole else f"p{pct:g}"


#: The forecast table's (and the model output's) column of each level, in the same order.
QUANTILE_COLUMNS: tuple[str, ...] = tuple(column(q) for q in QUANTILES)
#: Position of the median (P50) among QUANTILES: the point forecast.
MEDIAN: int = QUANTILES.index(0.5)


def index(level: float, levels: Sequence[float] = QUANTILES) -> int:
    """Position of ``level`` in ``levels`` (ValueError naming the levels when it is not served)."""
    for i, q in enumerate(levels):
        if abs(float(q) - float(level)) < 1e-9:
            return i
    raise ValueError(f"level {level} is not one of the served levels {tuple(levels)}")


def check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    """``levels`` as floats, strictly ascending and inside (0, 1), else ValueError."""
    out = tuple(float(q) for q in levels)
    if not out or any(not 0.0 < q < 1.0 for q in out):
        raise ValueError(f"quantile levels must lie strictly between 0 and 1: {out}")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ValueError(f"quantile levels must be strictly ascending: {out}")
    return out


def interpolate(
    q_table: np.ndarray, levels: Sequence[float], at: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Any level of the distribution: ``q_table [N, K]`` at ``levels`` -> values ``[N, len(at)]``.

    Piecewise linear in the level between the given quantiles; below the first and above the
    last level the outer segments' slopes continue to levels 0 and 1; never below 0. A level
    that is one of ``levels`` gives that column back exactly.
    """
    lv = np.asarray(check_levels(levels))
    q = np.atleast_2d(np.asarray(q_table, dtype=np.float64))
    if q.shape[1] != len(lv):
        raise ValueError(f"q_table has {q.shape[1]} columns for {len(lv)} levels")
    u = np.asarray(at, dtype=np.float64)
    if u.size and (u.min() < 0.0 or u.max() > 1.0):
        raise ValueError("levels to interpolate must lie in [0, 1]")
    if len(lv) == 1:
        return np.repeat(np.maximum(q, 0.0), u.size, axis=1).reshape(len(q), *u.shape)
    return _at(q, lv, np.broadcast_to(u.reshape(1, -1), (len(q), u.size))).reshape(len(q), *u.shape)


def _knots(q: np.ndarray, lv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse CDF's knots before clamping: levels ``xs [K+2]`` (0, the levels, 1) and the
    rows' values there ``ys [N, K+2]`` (the outer segments' slopes continued to 0 and 1)."""
    lo = (q[:, 1] - q[:, 0]) / (lv[1] - lv[0])
    hi = (q[:, -1] - q[:, -2]) / (lv[-1] - lv[-2])
    xs = np.concatenate([[0.0], lv, [1.0]])
    ys = np.concatenate(
        [(q[:, 0] - lv[0] * lo)[:, None], q, (q[:, -1] + (1.0 - lv[-1]) * hi)[:, None]], axis=1
    )
    return xs, ys


def _at(q: np.ndarray, lv: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Values of rows ``q [N, K]`` at per-row levels ``u [N, M]`` (see :func:`interpolate`)."""
    xs, ys = _knots(q, lv)
    seg = np.clip(np.searchsorted(xs, u, side="right") - 1, 0, len(xs) - 2)
    w = (u - xs[seg]) / (xs[seg + 1] - xs[seg])
    y0 = np.take_along_axis(ys, seg, axis=1)
    y1 = np.take_along_axis(ys, seg + 1, axis=1)
    return np.maximum(y0 * (1.0 - w) + y1 * w, 0.0)


def sample(
    q_table: np.ndarray,
    n: int,
    rng: np.random.Generator,
    levels: Sequence[float] = QUANTILES,
) -> np.ndarray:
    """``n`` independent draws per row from the distribution of :func:`interpolate`: ``[N, n]``.

    Inverse-CDF sampling (``u ~ U(0, 1)``, value at level ``u``); the share of draws at or
    below a served quantile tends to its level.
    """
    q = np.atleast_2d(np.asarray(q_table, dtype=np.float64))
    lv = np.asarray(check_levels(levels))
    if q.shape[1] != len(lv):
        raise ValueError(f"q_table has {q.shape[1]} columns for {len(lv)} levels")
    u = rng.random((len(q), int(n)))
    if len(lv) == 1:
        return np.repeat(np.maximum(q, 0.0), int(n), axis=1)
    return _at(q, lv, u)


def mean(q_table: np.ndarray, levels: Sequence[float] = QUANTILES) -> np.ndarray:
    """The mean of each row's distribution (:func:`interpolate`'s), exactly: ``[N]``.

    The integral of the inverse CDF over the levels 0..1, segment by segment; where a segment
    crosses 0 only its part above 0 counts (the distribution is clamped at 0). The point a
    forecast of total units is judged by: for skewed counts the median is below the mean
    (Poisson(1.5): median 1), so sums of P50s fall short of what is ordered even when every
    quantile is right (docs/monitoring.md, "bias")."""
    q = np.atleast_2d(np.asarray(q_table, dtype=np.float64))
    lv = np.asarray(check_levels(levels))
    if q.shape[1] != len(lv):
        raise ValueError(f"q_table has {q.shape[1]} columns for {len(lv)} levels")
    if len(lv) == 1:
        return np.maximum(q[:, 0], 0.0)
    xs, ys = _knots(q, lv)
    width = np.diff(xs)[None, :]
    y0, y1 = ys[:, :-1], ys[:, 1:]
    p0, p1 = np.maximum(y0, 0.0), np.maximum(y1, 0.0)
    whole = width * (p0 + p1) / 2.0  # right where the segment does not cross 0
    with np.errstate(divide="ignore", invalid="ignore"):
        part = width * np.maximum(p0, p1) ** 2 / (2.0 * np.abs(y1 - y0))
    crosses = (y0 < 0.0) != (y1 < 0.0)
    return np.where(crosses, part, whole).sum(axis=1)


def sort_rows(q_table: np.ndarray) -> np.ndarray:
    """Each row sorted ascending: quantiles from any source never cross after this."""
    return np.sort(np.asarray(q_table, dtype=np.float64), axis=1)


__all__ = [
    "MEDIAN",
    "QUANTILES",
    "QUANTILE_COLUMNS",
    "check_levels",
    "column",
    "index",
    "interpolate",
    "mean",
    "sample",
    "sort_rows",
]
