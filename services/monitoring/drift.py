"""Input drift per family: do recent inputs still look like the served model's training data?

Two plain measures, each compared between the **recent window** (the ``window_weeks`` complete
weeks before the as-of week) and the **reference window** (the last ``reference_weeks`` weeks of
the served model's training data, ``model_versions.data_start .. data_end``; without a served
version the newest registered one):

* ``trend_shift`` = mean ``trend_index`` of the family in the recent window / its mean in the
  reference window - 1 (signed; +0.25 = the market's interest in the family is 25% higher than
  the model was trained on).
* ``mix_shift`` = for each variant attribute (fabric, colour, ...), the total variation distance
  between the shares of units ordered per attribute value in the two windows (0 = the same mix,
  1 = no overlap; 0.15 = 15% of the units moved to other values); the largest over attributes,
  with the value whose share grew most (e.g. ``fabric=linen``).

``drift`` = the larger of ``|trend_shift|`` and ``mix_shift`` (a missing one counts as 0; both
missing: NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from services.monitoring.accuracy import week_of
from services.store import schema

WEEK = pd.Timedelta(days=7)
DRIFT_COLUMNS = (
    "family_id",
    "trend_recent",
    "trend_reference",
    "trend_shift",
    "mix_shift",
    "mix_attribute",
    "mix_value",
    "share_recent",
    "share_reference",
    "recent_units",
    "drift",
)


@dataclass(frozen=True)
class ReferenceWindow:
    """The training window drift is measured against (Mondays, inclusive)."""

    model_name: str
    model_version: int
    start: date
    end: date


def reference_window(
    engine: Engine, model_name: str = "demand", reference_weeks: int = 52
) -> ReferenceWindow | None:
    """The last ``reference_weeks`` weeks of the served model's training data (None if unknown)."""

    mv = schema.model_versions
    stmt = (
        select(mv.c.version, mv.c.data_start, mv.c.data_end, mv.c.status)
        .where(mv.c.name == model_name, mv.c.data_end.is_not(None))
        .order_by(mv.c.version.desc())
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return None
    row = next((r for r in rows if r.status == "served"), rows[0])
    end = week_of(row.data_end)
    start = (pd.Timestamp(end) - (reference_weeks - 1) * WEEK).date()
    if row.data_start is not None:
        start = max(start, week_of(row.data_start))
    return ReferenceWindow(model_name, int(row.version), start, end)


def _trend(engine: Engine, first: date, last: date) -> pd.Series:
    m = schema.market
    stmt = select(m.c.family_id, m.c.trend_index).where(m.c.week >= first, m.c.week <= last)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame.from_records(rows, columns=["family_id", "trend_index"])
    return frame.groupby("family_id")["trend_index"].mean().astype("float64")


def _units_by_attribute(engine: Engine, first: date, last: date) -> pd.DataFrame:
    """Units ordered in [first, last + 6 days] per (family_id, attribute, value)."""
    o, v, va = schema.orders, schema.variants, schema.variant_attributes
    end = (pd.Timestamp(last) + WEEK).date()
    stmt = (
        select(v.c.family_id, va.c.attribute, va.c.value, func.sum(o.c.quantity))
        .select_from(o.join(v, o.c.variant_id == v.c.variant_id))
        .join(va, va.c.variant_id == o.c.variant_id)
        .where(o.c.order_date >= first, o.c.order_date < end)
        .group_by(v.c.family_id, va.c.attribute, va.c.value)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pd.DataFrame.from_records(rows, columns=["family_id", "attribute", "value", "units"])
    frame["units"] = frame["units"].astype("float64")
    return frame


def _mix(recent: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    cols = ["family_id", "mix_shift", "mix_attribute", "mix_value", "share_recent",
            "share_reference"]  # fmt: skip
    if recent.empty or reference.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    key = ["family_id", "attribute", "value"]
    both = recent.merge(reference, on=key, how="outer", suffixes=("_r", "_t")).fillna(
        {"units_r": 0.0, "units_t": 0.0}
    )
    per = ["family_id", "attribute"]
    both["share_recent"] = both["units_r"] / both.groupby(per)["units_r"].transform("sum")
    both["share_reference"] = both["units_t"] / both.groupby(per)["units_t"].transform("sum")
    both = both.dropna(subset=["share_recent", "share_reference"])  # a window without units
    both["gap"] = both["share_recent"] - both["share_reference"]
    tvd = both.assign(a=both["gap"].abs()).groupby(per)["a"].sum() / 2.0
    rows = []
    for family, per_attr in tvd.groupby(level=0):
        attribute = per_attr.droplevel(0).idxmax()
        sub = both[(both["family_id"] == family) & (both["attribute"] == attribute)]
        grown = sub.loc[sub["gap"].idxmax()]
        rows.append(
            (family, float(per_attr.max()), attribute, str(grown["value"]),
             float(grown["share_recent"]), float(grown["share_reference"]))
        )  # fmt: skip
    return pd.DataFrame.from_records(rows, columns=cols)


def input_drift(
    engine: Engine,
    as_of_week: date,
    *,
    model_name: str = "demand",
    window_weeks: int = 4,
    reference_weeks: int = 52,
) -> pd.DataFrame:
    """Drift per family (columns :data:`DRIFT_COLUMNS`, see the module doc); empty when the
    served model's training window is unknown (no ``data_end`` registered)."""
    ref = reference_window(engine, model_name, reference_weeks)
    if ref is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DRIFT_COLUMNS})
    last = (pd.Timestamp(as_of_week) - WEEK).date()
    first = (pd.Timestamp(as_of_week) - window_weeks * WEEK).date()
    trend_recent = _trend(engine, first, last)
    trend_ref = _trend(engine, ref.start, ref.end)
    recent = _units_by_attribute(engine, first, last)
    mix = _mix(recent, _units_by_attribute(engine, ref.start, ref.end))
    units = (
        recent.groupby(["family_id", "attribute"])["units"].sum().groupby(level=0).max()
        if len(recent)
        else pd.Series(dtype="float64")
    )
    families = sorted(set(trend_recent.index) | set(mix["family_id"]))
    out = pd.DataFrame({"family_id": families})
    out["trend_recent"] = out["family_id"].map(trend_recent)
    out["trend_reference"] = out["family_id"].map(trend_ref)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["trend_shift"] = out["trend_recent"] / out["trend_reference"] - 1.0
    out = out.merge(mix, on="family_id", how="left")
    out["recent_units"] = out["family_id"].map(units).fillna(0.0).astype("float64")
    parts = pd.concat([out["trend_shift"].abs(), out["mix_shift"].astype(float)], axis=1)
    out["drift"] = parts.max(axis=1, skipna=True)
    return out[list(DRIFT_COLUMNS)].reset_index(drop=True)
