"""How a forecast's errors move together across its weeks: the evidence for ``week_correlation``.

The expected-profit planner draws each variant's demand paths from its forecast quantiles, its
weeks tied by an equicorrelated Gaussian copula: any two weeks of a variant have correlation
``week_correlation`` (docs/formulation.md, "Scenarios"). What that correlation sets is the
spread of a variant's demand summed over the horizon, which stock decisions and the plan's
profit band depend on. This module measures it from the feedback data: each forecast path
served (one ``served_at``, one variant, its weeks) against the units then ordered.

For a path of ``n`` weeks with errors ``e_t = actual_t - mean_t`` (the served mean),

    R = E[(sum_t e_t)^2] / E[sum_t e_t^2] = 1 + (n - 1) * rho

when the weeks' errors have equal variance and correlation ``rho`` between any two weeks.
:func:`estimate` pools the ratio over every path (uncentred: a variant's persistent bias is a
level error shared by its weeks, which is correlation the planner should see) and solves for
``rho``. Equicorrelation, not an AR(1) decay, because the errors' correlation does not fade with
the lag: 0.16 / 0.09 / 0.14, 0.22 / 0.22 / 0.23 and 0.19 / 0.22 / 0.20 at lags 1 / 2 / 3 in the
``small`` preset's simulated worlds, 0.48 / 0.44 / 0.42 for the demand model on real grocery
sales (docs/benchmarks.md, "The shape of the week correlation").

The planner reads it from its store for every expected-profit plan that does not set
``week_correlation`` (:meth:`services.planning.service.Planner.week_correlation`): the paths of
the last :data:`WINDOW_WEEKS` weeks, the default ``optimizer.core.problem.WEEK_CORRELATION``
while fewer than :data:`MIN_PATHS` of them, from :data:`MIN_ORIGINS` forecast origins, have two
complete weeks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from services.monitoring.accuracy import as_of_week, served_against_actuals

#: Fewer forecast paths than this (of two complete, observed weeks or more) give no estimate.
MIN_PATHS = 50
#: Nor paths from fewer forecast origins (a path's first week) than this: one origin's paths share
#: its weeks' shocks (a market that fell for every variant at once), so they are one observation
#: of those weeks, however many variants there are.
MIN_ORIGINS = 4
#: The highest estimate (1 would be one error repeated: every scenario path a level).
MAX_RHO = 0.95
#: The weeks of served forecasts :func:`measure` reads, back from the as-of week: the recent
#: models' errors, and a read bounded on a store with years of forecasts.
WINDOW_WEEKS = 26


@dataclass(frozen=True)
class Correlation:
    """The estimate, and what it rests on."""

    rho: float | None  # None: too few paths or origins (``min_paths``, ``min_origins``)
    ratio: float | None  # the pooled R above
    paths: int  # forecast paths of two weeks or more, complete and observed
    cells: int  # their (variant, week) cells
    origins: int | None = None  # their distinct forecast origins, where known


def ratio_of(rho: float, n: int) -> float:
    """R of an ``n``-week path whose weeks have correlation ``rho`` between any two of them."""
    return 1.0 + (n - 1) * rho


def estimate(
    paths: list[np.ndarray],
    min_paths: int = MIN_PATHS,
    *,
    origins: Sequence[Any] | None = None,
    min_origins: int = MIN_ORIGINS,
) -> Correlation:
    """``rho`` from error paths (each a 1-d array of one forecast's weekly errors; ``origins``,
    when given, each path's forecast origin: fewer than ``min_origins`` of them give none).

    The pooled ratio ``sum (sum e)^2 / sum sum e^2`` is matched with the same pool of
    :func:`ratio_of`, each path weighted by its ``sum e^2``: ``1 + rho * sum w (n - 1)``, solved
    for ``rho`` and kept in [0, 0.95]; a ratio at or below 1 (errors that cancel across weeks)
    gives 0."""
    keep = [i for i, p in enumerate(paths) if len(p) >= 2]
    usable = [np.asarray(paths[i], dtype=float) for i in keep]
    cells = sum(len(p) for p in usable)
    squares = np.array([float(np.sum(p * p)) for p in usable])
    n_origins = None if origins is None else len({origins[i] for i in keep})
    few_origins = n_origins is not None and n_origins < min_origins
    if len(usable) < min_paths or few_origins or squares.sum() <= 0.0:
        return Correlation(None, None, len(usable), cells, n_origins)
    sums = np.array([float(np.sum(p)) for p in usable])
    ratio = float(np.sum(sums * sums) / squares.sum())
    weights = squares / squares.sum()
    pairs = float(np.sum(weights * (np.array([len(p) for p in usable]) - 1.0)))
    rho = min(max((ratio - 1.0) / pairs, 0.0), MAX_RHO)
    return Correlation(round(rho, 4), ratio, len(usable), cells, n_origins)


def path_errors(
    engine: Engine,
    *,
    model_name: str = "demand",
    as_of: date | datetime | str | None = None,
    since: date | None = None,
) -> list[np.ndarray]:
    """Every served forecast path's errors (actual - served mean) over its complete, observed
    weeks (from ``since`` on, when given), in week order: one array per (first week, variant).
    Of the paths served for the same weeks (several plans or what-ifs for one start week) the
    latest counts, once: they are one forecast of those weeks, not several."""
    return _paths(engine, model_name, as_of, since)[0]


def _paths(
    engine: Engine, model_name: str, as_of: date | datetime | str | None, since: date | None
) -> tuple[list[np.ndarray], list[Any]]:
    """:func:`path_errors`, and each path's origin: its first week."""
    rows = served_against_actuals(
        engine, model_name=model_name, as_of=as_of, since=since, pick=False
    )
    if rows.empty:
        return [], []
    rows["error"] = rows["actual"] - rows["mean"]
    rows = rows.sort_values(["served_at", "variant_id", "week"])
    latest: dict[tuple[Any, str], np.ndarray] = {}
    # in served_at order: a later path for the same first week and variant replaces the earlier
    for (_served, variant), g in rows.groupby(["served_at", "variant_id"], sort=True):
        latest[(g["week"].iloc[0], str(variant))] = g["error"].to_numpy()
    return list(latest.values()), [week for week, _ in latest]


def measure(
    engine: Engine,
    *,
    model_name: str = "demand",
    min_paths: int = MIN_PATHS,
    min_origins: int = MIN_ORIGINS,
    weeks: int | None = WINDOW_WEEKS,
    as_of: date | datetime | str | None = None,
) -> Correlation:
    """:func:`estimate` over the store's served forecasts of the last ``weeks`` complete weeks
    (``None``: all of them), each path's origin its first week."""
    cutoff = as_of_week(engine, as_of)  # read once: the latest order week scans the orders
    if cutoff is None:
        return Correlation(None, None, 0, 0)
    since = None if weeks is None else cutoff - timedelta(weeks=weeks)
    errors, origins = _paths(engine, model_name, cutoff, since)
    return estimate(errors, min_paths=min_paths, origins=origins, min_origins=min_origins)
