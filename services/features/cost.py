"""Cost features: one row per (variant, line), the same columns for training and serving.

Training rows are production records, each one run (lot): the targets are ``unit_cost`` =
cost / quantity (EUR per good unit of that lot, materials excluded, the run's fixed part
included), ``hours_per_unit`` = hours / quantity and ``run_setup_hours`` (the variant setup
before the run, NaN where not recorded). Serving rows are (variant, line) pairs, for stored
variants or for configurations given as attribute dicts. Inputs: the variant's family and
attributes, its list price, the line's id and process parameters, and the run's circumstances:
``lot_size`` (the record's quantity) and ``line_load`` (the line's hours that week: processing,
variant setups and family changeovers, over its regular capacity; above 1 it works overtime).
Serving rows carry the median lot of the family on the line and ``line_load`` 1 (regular time).

:func:`changeover_table` summarises the family changeovers per (family, line) from the
``changeovers`` records (falling back to the ``family_setups`` standards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument
from services.features.tables import attribute_columns, normalise_frames

LINE_FEATURES = ("capacity_hours", "setup_hours", "overtime_cost_per_hour")
COST_NUMERIC = ("list_price", *LINE_FEATURES)
#: The run's circumstances: its lot size and the line's load in its week (model inputs too).
RUN_FEATURES = ("lot_size", "line_load")
#: Serving: a week at regular capacity (no overtime premium in ``lot_unit_cost``).
REGULAR_LOAD = 1.0
#: The cost model's outputs, in the order of its output columns (docs/model-interface.md).
COST_OUTPUTS = (
    "unit_cost",
    "hours_per_unit",
    "run_cost",
    "setup_hours",
    "family_setup_hours",
    "family_setup_cost",
    "overtime_cost_per_hour",
    "lot_unit_cost",
)


def cost_string_features(variants: pd.DataFrame) -> list[str]:
    return ["family_id", "line_id", *attribute_columns(variants)]


def _join(pairs: pd.DataFrame, variants: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    attrs = attribute_columns(variants)
    v = variants[["variant_id", "family_id", "list_price", *attrs]]
    out = pairs.merge(v, on="variant_id", how="left", suffixes=("", "_v"))
    out = out.merge(lines[["line_id", *LINE_FEATURES]], on="line_id", how="left")
    for c in COST_NUMERIC:
        out[c] = pd.to_numeric(out[c], errors="coerce").fillna(0.0).astype(np.float32)
    for c in ["family_id", "line_id", *attrs]:
        out[c] = out[c].fillna("").astype(str)
    return out


def _week(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates).dt.normalize()
    return d - pd.to_timedelta(d.dt.weekday, unit="D")


def line_loads(f: Mapping[str, pd.DataFrame]) -> pd.Series:
    """The lines' hours per week (processing + recorded variant setups + changeovers) over their
    regular ``capacity_hours``, indexed by (line_id, week); 0 where the capacity is unknown."""
    p = f["production"]
    setup = p["setup_hours"] if "setup_hours" in p.columns else pd.Series(0.0, index=p.index)
    hours = pd.to_numeric(p["hours"], errors="coerce").fillna(0.0) + pd.to_numeric(
        setup, errors="coerce"
    ).fillna(0.0)
    parts = [pd.DataFrame({"line_id": p["line_id"], "week": _week(p["date"]), "h": hours})]
    co = f.get("changeovers")
    if co is not None and len(co):
        parts.append(
            pd.DataFrame(
                {
                    "line_id": co["line_id"],
                    "week": _week(co["date"]),
                    "h": pd.to_numeric(co["hours"], errors="coerce").fillna(0.0),
                }
            )
        )
    worked = pd.concat(parts, ignore_index=True).groupby(["line_id", "week"])["h"].sum()
    cap = pd.to_numeric(f["lines"].set_index("line_id")["capacity_hours"], errors="coerce")
    capacity = cap.reindex(worked.index.get_level_values("line_id")).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        load = np.where(capacity > 0, worked.to_numpy() / capacity, 0.0)
    return pd.Series(np.nan_to_num(load), index=worked.index, name="line_load")


def build_cost_training_frame(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Production records with their features and targets (rows with quantity <= 0 dropped)."""
    f = normalise_frames(dict(frames))
    p = f["production"]
    p = p[(p["quantity"] > 0) & p["hours"].notna() & p["cost"].notna()]
    pairs = p[["record_id", "variant_id", "line_id", "date", "quantity"]].copy()
    pairs["unit_cost"] = (p["cost"] / p["quantity"]).astype(np.float32)
    pairs["hours_per_unit"] = (p["hours"] / p["quantity"]).astype(np.float32)
    setup = p["setup_hours"] if "setup_hours" in p.columns else pd.Series(np.nan, index=p.index)
    pairs["run_setup_hours"] = pd.to_numeric(setup, errors="coerce").astype(np.float32)
    pairs["lot_size"] = p["quantity"].astype(np.float32)
    loads = line_loads(f)
    key = pd.MultiIndex.from_arrays([pairs["line_id"], _week(pairs["date"])])
    pairs["line_load"] = loads.reindex(key).fillna(0.0).to_numpy(np.float32)
    out = _join(pairs, f["variants"], f["lines"])
    return out[out["family_id"] != ""].reset_index(drop=True)


def changeover_table(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per (family_id, line_id): ``setup_hours`` and ``setup_cost`` of a family changeover and
    the ``records`` behind them. From the ``changeovers`` records (geometric means: the recorded
    hours and costs scatter multiplicatively), else the ``family_setups`` standard (records 0).
    Empty when the data set has neither: no family setups (every setup a variant setup)."""
    f = normalise_frames(dict(frames))
    cols = ["family_id", "line_id", "setup_hours", "setup_cost", "records"]
    parts = []
    std = f.get("family_setups")
    if std is not None and len(std):
        parts.append(std.assign(records=0)[cols])
    co = f.get("changeovers")
    if co is not None and len(co):
        co = co[(co["hours"] > 0) & (co["cost"] > 0)]
        logs = np.log(co[["hours", "cost"]].astype(float))
        g = logs.groupby([co["family_id"], co["line_id"]])
        learned = np.exp(g.mean()).rename(columns={"hours": "setup_hours", "cost": "setup_cost"})
        learned["records"] = g.size()
        parts.append(learned.reset_index()[cols])
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if "_id" in c else float) for c in cols})
    table = pd.concat(parts, ignore_index=True).sort_values("records", kind="stable")
    table = table.drop_duplicates(["family_id", "line_id"], keep="last")  # records win
    return table.sort_values(["family_id", "line_id"], ignore_index=True)


def cost_serving_frame(
    frames: Mapping[str, pd.DataFrame],
    variants: Sequence[Any],
    lines: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows for every (variant, line) pair; lines default to those eligible for the family."""
    f = normalise_frames(dict(frames))
    stored = f["variants"]
    known = set(stored["variant_id"])
    all_lines = f["lines"]
    eligible = f["line_eligibility"]
    new_rows = []
    ids = []
    for i, v in enumerate(variants):
        if isinstance(v, Mapping) and any(str(k).startswith("attr_") for k in v):
            rec: dict[str, Any] = {k: v.get(k) for k in ("family_id", "list_price")}
            rec["variant_id"] = str(v.get("variant_id") or f"NEW-{i + 1}")
            rec["family_id"] = str(rec["family_id"] or "").strip().upper()
            fam = stored[stored["family_id"] == rec["family_id"]]
            if fam.empty:
                raise InvalidArgument(f"unknown family {rec['family_id']!r}", field="family_id")
            rec["list_price"] = float(rec["list_price"] or fam["list_price"].median())
            for a in attribute_columns(stored):
                rec[a] = str(v.get(a, "")).strip().lower()
            new_rows.append(rec)
            ids.append(rec["variant_id"])
        else:
            vid = str(v["variant_id"] if isinstance(v, Mapping) else v).strip().upper()
            if vid not in known:
                raise InvalidArgument(f"unknown variant {vid!r}", field="variant_id")
            ids.append(vid)
    table = pd.concat([stored, pd.DataFrame(new_rows)], ignore_index=True) if new_rows else stored
    lots = _median_lots(f, table)
    fam_of = table.drop_duplicates("variant_id").set_index("variant_id")["family_id"]
    recs = []
    for vid in ids:
        if lines is not None:
            use = [str(x).strip().upper() for x in lines]
            unknown = sorted(set(use) - set(all_lines["line_id"]))
            if unknown:
                raise InvalidArgument(f"unknown line {unknown[0]!r}", field="line_id")
        elif len(eligible):
            use = sorted(eligible.loc[eligible["family_id"] == fam_of[vid], "line_id"])
        else:
            use = sorted(all_lines["line_id"])
        recs += [{"variant_id": vid, "line_id": line} for line in use]
    pairs = pd.DataFrame.from_records(recs, columns=["variant_id", "line_id"])
    out = _join(pairs, table.drop_duplicates("variant_id", keep="last"), all_lines)
    key = pd.MultiIndex.from_arrays([out["family_id"], out["line_id"]])
    fallback = float(lots.median()) if len(lots) else 1.0
    out["lot_size"] = lots.reindex(key).fillna(fallback).to_numpy(np.float32)
    out["line_load"] = np.float32(REGULAR_LOAD)
    return out


def _median_lots(f: Mapping[str, pd.DataFrame], variants: pd.DataFrame) -> pd.Series:
    """Median lot (production quantity) per (family_id, line_id) of the stored records."""
    p = f["production"]
    p = p[p["quantity"] > 0]
    if p.empty:
        return pd.Series(dtype=float)
    fam = variants.drop_duplicates("variant_id").set_index("variant_id")["family_id"]
    return p.groupby([p["variant_id"].map(fam), p["line_id"]])["quantity"].median().astype(float)
