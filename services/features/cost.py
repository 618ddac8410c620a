"""Cost features: one row per (variant, line), the same columns for training and serving.

Training rows are production records: the targets are ``unit_cost`` = cost / quantity (EUR per
good unit, materials excluded) and ``hours_per_unit`` = hours / quantity, with the record's
``quantity`` as its weight. Serving rows are (variant, line) pairs, for stored variants or for
configurations given as attribute dicts. Inputs: the variant's family and attributes, its list
price, and the line's id and process parameters.
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


def build_cost_training_frame(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Production records with their features and targets (rows with quantity <= 0 dropped)."""
    f = normalise_frames(dict(frames))
    p = f["production"]
    p = p[(p["quantity"] > 0) & p["hours"].notna() & p["cost"].notna()]
    pairs = p[["record_id", "variant_id", "line_id", "date", "quantity"]].copy()
    pairs["unit_cost"] = (p["cost"] / p["quantity"]).astype(np.float32)
    pairs["hours_per_unit"] = (p["hours"] / p["quantity"]).astype(np.float32)
    out = _join(pairs, f["variants"], f["lines"])
    return out[out["family_id"] != ""].reset_index(drop=True)


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
    return _join(pairs, table.drop_duplicates("variant_id", keep="last"), all_lines)
