"""Forecast accuracy: what was served against what customers then ordered.

Definitions (docs/monitoring.md):

* **Actual** demand of a variant in week ``w`` = the units of its orders whose order date falls in
  ``w`` (Monday..Sunday), exactly as ``services.features.demand.build_panel`` counts the training
  target (same :func:`~services.features.tables.monday`, flagged orders included). A week counts
  only once it is **complete**: it lies before the *as-of week* (``as_of`` given: the Monday of
  ``as_of``; otherwise the latest order week in the store, the one still being filled). A
  forecast variant without orders in a complete week has an actual of 0.
* **The forecast** of ``(variant, week)``: of all rows in ``forecasts_served`` for it, the most
  recent one served before the week started (``served_at`` < the week's Monday 00:00 UTC), the one
  a plan for that week would have used. When none was served before the week started by the wall
  clock (a simulator replays past weeks, so every ``served_at`` is later than the data weeks) the
  most recently served one is taken: the planner only forecasts weeks after its origin, so that is
  still the last forecast made before the week in data time. Ties: the highest row id.
* Forecast variants that are not in ``variants`` (configurations never stored) have no family and
  no orders; they are left out.
* Weeks stated as not observed for a variant (``unobserved_weeks``: a store closed, a feed
  missing) are left out too: no orders there is not zero demand.
* **Bias** compares the forecast distribution's **mean** (``forecasts_served.mean``, the exact mean
  of the served quantiles' distribution) with the actual, not its P50: on skewed weekly counts
  the median sits below the mean (Poisson(1.5): median 1), so the P50s of a family summed fall
  short of the units ordered even when every quantile is right (10-20% for the world's true
  distribution, 21-29% for a trained model's wider one), and a P50-based bias fired a retrain
  at nearly every cooldown in the simulator (docs/monitoring.md). Rows recorded before the
  mean was stored are judged by their P50. WAPE stays on the P50 (the median minimises the
  absolute error).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from services.features.observed import unobserved_pairs
from services.features.tables import monday
from services.store import schema

WEEK = pd.Timedelta(days=7)

VARIANT_COLUMNS = (
    "variant_id",
    "family_id",
    "week",
    "actual",
    "p10",
    "p50",
    "p90",
    "mean",
    "model_version",
    "served_at",
)
FAMILY_COLUMNS = (
    "family_id",
    "week",
    "actual",
    "forecast",
    "mean",
    "p10",
    "p90",
    "abs_error",
    "wape",
    "bias",
    "coverage",
    "n_variants",
    "model_versions",
)


def week_of(value: Any) -> date:
    """The Monday of the ISO week of ``value`` (a date, datetime, string or Timestamp)."""

    return monday(pd.Series([pd.Timestamp(value)])).iloc[0].date()


def latest_order_week(engine: Engine) -> date | None:
    """The Monday of the newest order date in the store (None without orders)."""
    with engine.connect() as conn:
        last = conn.execute(select(func.max(schema.orders.c.order_date))).scalar()
    return week_of(last) if last is not None else None


def as_of_week(engine: Engine, as_of: date | datetime | str | None) -> date | None:
    """The first week that is not complete: the Monday of ``as_of``, else the latest order week."""
    return week_of(as_of) if as_of is not None else latest_order_week(engine)


def _served(
    engine: Engine, model_name: str, since: date | None, until: date | None
) -> pd.DataFrame:
    fs = schema.forecasts_served
    stmt = select(
        fs.c.id, fs.c.variant_id, fs.c.week, fs.c.model_version, fs.c.p10, fs.c.p50, fs.c.p90,
        fs.c.mean, fs.c.served_at,
    ).where(fs.c.model_name == model_name)  # fmt: skip
    if since is not None:
        stmt = stmt.where(fs.c.week >= since)
    if until is not None:
        stmt = stmt.where(fs.c.week <= until)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    cols = ["id", "variant_id", "week", "model_version", "p10", "p50", "p90", "mean", "served_at"]
    frame = pd.DataFrame.from_records(rows, columns=cols)
    frame["week"] = pd.to_datetime(frame["week"])
    # rows recorded without the mean (before migration 0006) are judged by their P50
    frame["mean"] = pd.to_numeric(frame["mean"], errors="coerce").fillna(frame["p50"])
    # SQLite gives naive datetimes (stored as UTC), PostgreSQL aware ones: both become UTC.
    frame["served_at"] = pd.to_datetime(frame["served_at"], utc=True)
    return frame


def select_forecasts(served: pd.DataFrame) -> pd.DataFrame:
    """One row per (variant_id, week): the forecast a plan for that week would have used.

    ``served`` has the columns of ``forecasts_served`` (``week`` as datetime64, ``served_at`` UTC).
    The rule is the module's: latest ``served_at`` before the week's Monday (UTC), else the latest
    served; ties go to the highest ``id``.
    """
    if served.empty:
        return served.copy()
    start = served["week"].dt.tz_localize(UTC)
    frame = served.assign(_before=served["served_at"] < start)
    frame = frame.sort_values(["variant_id", "week", "_before", "served_at", "id"])
    picked = frame.groupby(["variant_id", "week"], sort=True).tail(1)
    return picked.drop(columns="_before").sort_values(["week", "variant_id"]).reset_index(drop=True)


def _weekly_actuals(
    engine: Engine, variant_ids: list[str], first: pd.Timestamp, last: pd.Timestamp
) -> pd.DataFrame:
    """Units ordered per (variant_id, week) between the Mondays ``first`` and ``last``."""

    o = schema.orders
    stmt = (
        select(o.c.variant_id, o.c.order_date, func.sum(o.c.quantity))
        .where(o.c.order_date >= first.date(), o.c.order_date < (last + WEEK).date())
        .group_by(o.c.variant_id, o.c.order_date)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame.from_records(rows, columns=["variant_id", "order_date", "actual"])
    frame = frame[frame["variant_id"].isin(variant_ids)]
    frame["week"] = monday(frame["order_date"]) if len(frame) else pd.Series(dtype="M8[ns]")
    frame["actual"] = frame["actual"].astype("float64")
    return frame.groupby(["variant_id", "week"], as_index=False)["actual"].sum()


def _families(engine: Engine) -> pd.DataFrame:
    v = schema.variants
    with engine.connect() as conn:
        rows = conn.execute(select(v.c.variant_id, v.c.family_id)).all()
    return pd.DataFrame.from_records(rows, columns=["variant_id", "family_id"])


def variant_errors(
    engine: Engine,
    *,
    model_name: str = "demand",
    since: date | None = None,
    until: date | None = None,
    as_of: date | datetime | str | None = None,
) -> pd.DataFrame:
    """Per (variant, complete week) with a served forecast: the chosen forecast and the actual.

    Columns :data:`VARIANT_COLUMNS`; ``week`` is datetime64 (the Monday), sorted by week, variant.
    ``since``/``until`` bound the target week (inclusive).
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in VARIANT_COLUMNS})
    out = served_against_actuals(
        engine, model_name=model_name, since=since, until=until, as_of=as_of, pick=True
    )
    if out.empty:
        return empty
    out["model_version"] = out["model_version"].astype("int64")
    return out[list(VARIANT_COLUMNS)].sort_values(["week", "variant_id"]).reset_index(drop=True)


def served_against_actuals(
    engine: Engine,
    *,
    model_name: str = "demand",
    since: date | None = None,
    until: date | None = None,
    as_of: date | datetime | str | None = None,
    pick: bool = True,
) -> pd.DataFrame:
    """The served forecasts of complete, observed weeks of stored variants, each with its
    ``family_id`` and ``actual`` (units ordered; 0 without orders). ``pick``: only the forecast a
    plan for the week would have used (:func:`select_forecasts`); else every row served (each
    plan's whole path). Empty when there is nothing to judge."""
    cutoff = as_of_week(engine, as_of)
    if cutoff is None:
        return pd.DataFrame()
    last_complete = pd.Timestamp(cutoff) - WEEK
    until_ts = min(pd.Timestamp(until), last_complete) if until is not None else last_complete
    served = _served(engine, model_name, since, until_ts.date())
    served = served[served["week"] <= until_ts]
    rows = select_forecasts(served) if pick else served
    if rows.empty:
        return pd.DataFrame()
    rows = rows.merge(_families(engine), on="variant_id", how="inner")
    if rows.empty:
        return pd.DataFrame()
    actual = _weekly_actuals(
        engine, sorted(set(rows["variant_id"])), rows["week"].min(), rows["week"].max()
    )
    out = rows.merge(actual, on=["variant_id", "week"], how="left")
    out = _observed(engine, out)
    out["actual"] = out["actual"].fillna(0.0)
    return out


def _observed(engine: Engine, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without the (variant, week) cells stated as not observed (``unobserved_weeks``:
    a store closed, a feed missing), whose missing orders are not zero demand."""
    t = schema.unobserved_weeks
    with engine.connect() as conn:
        stated = pd.DataFrame.from_records(
            conn.execute(select(t.c.week, t.c.family_id, t.c.variant_id)).all(),
            columns=["week", "family_id", "variant_id"],
        )
    if stated.empty or rows.empty:
        return rows
    pairs = unobserved_pairs(stated, rows[["variant_id", "family_id"]])
    if pairs.empty:
        return rows
    pairs = pairs.assign(week=pd.to_datetime(pairs["week"]), _gone=True)
    out = rows.merge(pairs, on=["variant_id", "week"], how="left")
    return out[out["_gone"].isna()].drop(columns="_gone").reset_index(drop=True)


def _family_frame(rows: pd.DataFrame) -> pd.DataFrame:
    a, f = rows["actual"], rows["p50"]
    covered = (a >= rows["p10"]) & (a <= rows["p90"])
    work = rows.assign(abs_error=(a - f).abs(), covered=covered.astype(float))
    grouped = work.groupby(["family_id", "week"], sort=True)
    out = grouped.agg(
        actual=("actual", "sum"),
        forecast=("p50", "sum"),
        mean=("mean", "sum"),
        p10=("p10", "sum"),
        p90=("p90", "sum"),
        abs_error=("abs_error", "sum"),
        coverage=("covered", "mean"),
        n_variants=("variant_id", "nunique"),
        model_versions=("model_version", lambda s: ",".join(str(v) for v in sorted(set(s)))),
    ).reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = out["actual"].where(out["actual"] > 0)
        out["wape"] = out["abs_error"] / denom
        out["bias"] = (out["mean"] - out["actual"]) / denom
    out["n_variants"] = out["n_variants"].astype("int64")
    return out[list(FAMILY_COLUMNS)]


def forecast_errors(
    engine: Engine,
    *,
    model_name: str = "demand",
    since: date | None = None,
    until: date | None = None,
    as_of: date | datetime | str | None = None,
) -> pd.DataFrame:
    """Forecast error per family and complete week (see the module doc for the rules).

    Columns :data:`FAMILY_COLUMNS`: ``actual``, ``forecast`` (sum of P50) and ``mean`` (sum of
    the forecast distributions' means) in units, ``p10``/``p90`` the sums of the variants'
    quantiles (not the family's quantiles), ``abs_error`` = sum |actual - P50| over the variants,
    ``wape`` = abs_error / actual, ``bias`` = (mean - actual) / actual (both NaN when actual is
    0; the module doc says why the mean), ``coverage`` = share of
    the variants whose actual lies in [P10, P90], ``n_variants``, ``model_versions`` ("3" or
    "2,3"). Sum ``abs_error`` and ``actual`` over rows to get a unit-weighted WAPE of any window.
    """
    rows = variant_errors(engine, model_name=model_name, since=since, until=until, as_of=as_of)
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FAMILY_COLUMNS})
    return _family_frame(rows)


def segment_errors(
    engine: Engine, rows: pd.DataFrame, attributes: tuple[str, ...] = ("fabric",)
) -> pd.DataFrame:
    """Errors per (family, attribute, value) over the variant rows of :func:`variant_errors`.

    A shift that touches one attribute value (a fabric in fashion) shows here long before it
    moves a whole family: columns family_id, attribute, value, actual, forecast (sum of P50),
    mean (sum of the distributions' means), bias = (mean - actual) / actual (NaN when actual is
    0), n_variants.
    """
    cols = ["family_id", "attribute", "value", "actual", "forecast", "mean", "bias", "n_variants"]
    if rows.empty or not attributes:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    va = schema.variant_attributes
    stmt = select(va.c.variant_id, va.c.attribute, va.c.value).where(va.c.attribute.in_(attributes))
    with engine.connect() as conn:
        attrs = pd.DataFrame.from_records(
            conn.execute(stmt).all(), columns=["variant_id", "attribute", "value"]
        )
    cells = rows.merge(attrs, on="variant_id", how="inner")
    out = (
        cells.groupby(["family_id", "attribute", "value"], sort=True)
        .agg(
            actual=("actual", "sum"),
            forecast=("p50", "sum"),
            mean=("mean", "sum"),
            n_variants=("variant_id", "nunique"),
        )
        .reset_index()
    )
    out["bias"] = (out["mean"] - out["actual"]) / out["actual"].where(out["actual"] > 0)
    return out[cols]
