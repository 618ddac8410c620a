"""The cost model's accuracy: its predictions against the shop floor's production records.

Every served cost version has its predictions per (variant, line) in ``cost_predictions``
(written when it was trained: :mod:`services.training.cost_loop`). A production record of week
``w`` is compared with the prediction of the **latest served (or since retired) cost version
trained only on weeks before ``w``** (``model_versions.data_end`` < ``w``): the prediction the
planner had for that week. Records without such a version, or whose pair that version did not
predict, are left out. A week counts once it is complete (before the as-of week: the Monday of
``as_of``, else the newest production week).

Per record: actual = its cost (EUR), forecast = predicted unit cost x quantity; per family and
week (:func:`cost_errors`, the same columns as :data:`services.monitoring.FAMILY_COLUMNS`):
``wape`` = sum |forecast - actual| / sum actual, ``bias`` = (sum forecast - sum actual) / sum
actual, ``coverage`` = share of records whose actual unit cost lies in [P10, P90] (the band from
the hold-out's residual spread), ``n_variants`` = variants with records.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from services.features.tables import monday
from services.monitoring.accuracy import FAMILY_COLUMNS, WEEK, week_of
from services.store import schema


def _as_of(engine: Engine, as_of: date | datetime | str | None) -> date | None:
    if as_of is not None:
        return week_of(as_of)
    with engine.connect() as conn:
        last = conn.execute(select(func.max(schema.production.c.date))).scalar()
    return week_of(last) if last is not None else None


def cost_record_errors(
    engine: Engine,
    *,
    since: date | None = None,
    until: date | None = None,
    as_of: date | datetime | str | None = None,
) -> pd.DataFrame:
    """One row per production record of a complete week that a served cost version predicted:
    variant_id, family_id, line_id, week, quantity, actual, forecast, unit_actual, p10, p90,
    model_version."""
    cols = ["variant_id", "family_id", "line_id", "week", "quantity", "actual", "forecast",
            "unit_actual", "p10", "p90", "model_version"]  # fmt: skip
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    cutoff = _as_of(engine, as_of)
    if cutoff is None:
        return empty
    mv, p, v = schema.model_versions, schema.production, schema.variants
    with engine.connect() as conn:
        versions = pd.DataFrame.from_records(
            conn.execute(
                select(mv.c.version, mv.c.data_end).where(
                    (mv.c.name == "cost")
                    & mv.c.status.in_(("served", "retired"))
                    & mv.c.data_end.is_not(None)
                )
            ).all(),
            columns=["model_version", "data_end"],
        )
        stmt = select(p.c.variant_id, p.c.line_id, p.c.date, p.c.quantity, p.c.cost,
                      v.c.family_id).join(v, v.c.variant_id == p.c.variant_id)  # fmt: skip
        stmt = stmt.where(p.c.date < cutoff)
        if since is not None:
            stmt = stmt.where(p.c.date >= since)
        if until is not None:
            stmt = stmt.where(p.c.date < pd.Timestamp(until) + WEEK)
        records = pd.DataFrame.from_records(
            conn.execute(stmt).all(),
            columns=["variant_id", "line_id", "date", "quantity", "actual", "family_id"],
        )
    if versions.empty or records.empty:
        return empty
    records["week"] = monday(records["date"])
    versions["data_end"] = pd.to_datetime(versions["data_end"])
    # the newest version trained before the week: data_end < week  <=>  data_end + 1 day <= week
    versions["_from"] = versions["data_end"] + pd.Timedelta(days=1)
    versions = versions.sort_values(["_from", "model_version"]).drop_duplicates(
        "_from", keep="last"
    )
    records = records.sort_values("week")
    picked = pd.merge_asof(records, versions[["_from", "model_version"]],
                           left_on="week", right_on="_from", direction="backward")  # fmt: skip
    picked = picked.dropna(subset=["model_version"])
    if picked.empty:
        return empty
    picked["model_version"] = picked["model_version"].astype("int64")
    cp = schema.cost_predictions
    wanted = sorted(set(picked["model_version"]))
    with engine.connect() as conn:
        preds = pd.DataFrame.from_records(
            conn.execute(
                select(cp.c.model_version, cp.c.variant_id, cp.c.line_id, cp.c.unit_cost,
                       cp.c.unit_cost_p10, cp.c.unit_cost_p90)
                .where(cp.c.model_version.in_(wanted))
            ).all(),
            columns=["model_version", "variant_id", "line_id", "unit", "p10", "p90"],
        )  # fmt: skip
    preds = preds.drop_duplicates(["model_version", "variant_id", "line_id"], keep="last")
    out = picked.merge(preds, on=["model_version", "variant_id", "line_id"], how="inner")
    if out.empty:
        return empty
    out["quantity"] = out["quantity"].astype("float64")
    out["actual"] = out["actual"].astype("float64")
    out["forecast"] = out["unit"] * out["quantity"]
    out["unit_actual"] = out["actual"] / out["quantity"].where(out["quantity"] > 0)
    return out[cols].sort_values(["week", "variant_id", "line_id"]).reset_index(drop=True)


def cost_errors(
    engine: Engine,
    *,
    since: date | None = None,
    until: date | None = None,
    as_of: date | datetime | str | None = None,
) -> pd.DataFrame:
    """Cost-model error per family and complete week (module doc); EUR in ``actual``,
    ``forecast``, ``p10``/``p90`` (the band times the quantities), ``abs_error``."""
    rows = cost_record_errors(engine, since=since, until=until, as_of=as_of)
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FAMILY_COLUMNS})
    covered = (rows["unit_actual"] >= rows["p10"]) & (rows["unit_actual"] <= rows["p90"])
    work = rows.assign(
        abs_error=(rows["forecast"] - rows["actual"]).abs(),
        covered=covered.astype(float),
        p10_eur=rows["p10"] * rows["quantity"],
        p90_eur=rows["p90"] * rows["quantity"],
    )
    out = (
        work.groupby(["family_id", "week"], sort=True)
        .agg(
            actual=("actual", "sum"),
            forecast=("forecast", "sum"),
            p10=("p10_eur", "sum"),
            p90=("p90_eur", "sum"),
            abs_error=("abs_error", "sum"),
            coverage=("covered", "mean"),
            n_variants=("variant_id", "nunique"),
            model_versions=("model_version", lambda s: ",".join(str(v) for v in sorted(set(s)))),
        )
        .reset_index()
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = out["actual"].where(out["actual"] > 0)
        out["wape"] = out["abs_error"] / denom
        out["bias"] = (out["forecast"] - out["actual"]) / denom
    out["mean"] = out["forecast"]  # the cost model's forecast is one figure: bias is judged by it
    out["n_variants"] = out["n_variants"].astype("int64")
    return out[list(FAMILY_COLUMNS)]
