"""How a forecast's errors move together across its weeks: the evidence for ``week_correlation``.

The expected-profit planner draws each variant's demand paths from its forecast quantiles, its
weeks tied by a Gaussian copula with AR(1) correlation ``week_correlation`` between consecutive
weeks (docs/formulation.md, "Scenarios"). What that correlation sets is the spread of a variant's
demand summed over the horizon, which stock decisions and the plan's profit band depend on. This
module measures it from the feedback data: each forecast path served (one ``served_at``, one
variant, its weeks) against the units then ordered.

For a path of ``n`` weeks with errors ``e_t = actual_t - mean_t`` (the served mean),

    R = E[(sum_t e_t)^2] / E[sum_t e_t^2] = 1 + (2/n) * sum_{k=1}^{n-1} (n - k) * rho^k

when the weeks' errors have equal variance and AR(1) correlation ``rho``. :func:`estimate` pools
the ratio over every path (uncentred: a variant's persistent bias is a level error shared by its
weeks, which is correlation the planner should see) and solves for ``rho``. In the ``small``
preset's simulated worlds the planner's own scenario paths at the estimate reproduce the measured
ratio within 2.2% (docs/benchmarks.md, "The scenarios' week correlation").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
from sqlalchemy import Engine

from services.monitoring.accuracy import served_against_actuals


@dataclass(frozen=True)
class Correlation:
    """The estimate, and what it rests on."""

    rho: float | None  # None: fewer than ``min_paths`` paths of two weeks or more
    ratio: float | None  # the pooled R above
    paths: int  # forecast paths of two weeks or more, complete and observed
    cells: int  # their (variant, week) cells


def ratio_of(rho: float, n: int) -> float:
    """R of an ``n``-week path whose weeks have AR(1) correlation ``rho``."""
    return 1.0 + 2.0 / n * sum((n - k) * rho**k for k in range(1, n))


def estimate(paths: list[np.ndarray], min_paths: int = 50) -> Correlation:
    """``rho`` from error paths (each a 1-d array of one forecast's weekly errors).

    The pooled ratio ``sum (sum e)^2 / sum sum e^2`` is matched with the same pool of
    :func:`ratio_of`, each path weighted by its ``sum e^2``, by bisection on [0, 0.95]; a ratio at
    or below 1 (errors that cancel across weeks) gives 0."""
    usable = [np.asarray(p, dtype=float) for p in paths if len(p) >= 2]
    cells = sum(len(p) for p in usable)
    squares = np.array([float(np.sum(p * p)) for p in usable])
    if len(usable) < min_paths or squares.sum() <= 0.0:
        return Correlation(None, None, len(usable), cells)
    sums = np.array([float(np.sum(p)) for p in usable])
    ratio = float(np.sum(sums * sums) / squares.sum())
    weights = squares / squares.sum()
    lengths = [len(p) for p in usable]

    def pooled(rho: float) -> float:
        return float(sum(w * ratio_of(rho, n) for w, n in zip(weights, lengths, strict=True)))

    lo, hi = 0.0, 0.95
    if ratio <= pooled(lo):
        return Correlation(0.0, ratio, len(usable), cells)
    if ratio >= pooled(hi):
        return Correlation(hi, ratio, len(usable), cells)
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if pooled(mid) < ratio else (lo, mid)
    return Correlation(round(0.5 * (lo + hi), 4), ratio, len(usable), cells)


def path_errors(
    engine: Engine, *, model_name: str = "demand", as_of: date | datetime | str | None = None
) -> list[np.ndarray]:
    """Every served forecast path's errors (actual - served mean) over its complete, observed
    weeks, in week order: one array per (``served_at``, variant)."""
    rows = served_against_actuals(engine, model_name=model_name, as_of=as_of, pick=False)
    if rows.empty:
        return []
    rows["error"] = rows["actual"] - rows["mean"]
    rows = rows.sort_values(["served_at", "variant_id", "week"])
    return [g["error"].to_numpy() for _, g in rows.groupby(["served_at", "variant_id"])]


def measure(engine: Engine, *, model_name: str = "demand", min_paths: int = 50) -> Correlation:
    """:func:`estimate` over the store's served forecasts."""
    return estimate(path_errors(engine, model_name=model_name), min_paths=min_paths)
