"""Weeks that were not observed: a store closed, a feed missing (the ``unobserved_weeks`` table).

A week with no orders is zero demand only if someone could have ordered and the orders would
have been recorded. The optional ``unobserved_weeks`` table (docs/data-format.md) names the weeks
for which that is not so, for one variant, one family, or everything:

    week (a Monday), family_id (optional), variant_id (optional), reason (optional)

A row with a ``variant_id`` covers that variant; with only a ``family_id`` every variant of the
family; with neither, every variant. Those (variant, week) cells are neither trained on nor
scored (``services.training.train.observed_rows``), and the monitoring leaves them out of the
actuals (``services.monitoring.accuracy``).

:func:`unobserved_mask` turns the table into a [variants x weeks] boolean array aligned with a
:class:`~services.features.demand.DemandPanel`; :func:`attach` puts it on the panel as
``panel.unobserved`` (the training code reads it from there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from services.features.tables import monday

COLUMNS = ("week", "family_id", "variant_id", "reason")
WEEK = pd.Timedelta(days=7)


def _ids(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.strip().str.upper()


def unobserved_mask(
    table: pd.DataFrame | None, variants: pd.DataFrame, first_week: Any, n_weeks: int
) -> np.ndarray:
    """[len(variants), n_weeks] True where the (variant, week) was not observed.

    ``variants`` needs ``variant_id`` and ``family_id`` in panel row order; weeks outside
    ``first_week .. first_week + n_weeks - 1`` are ignored.
    """
    mask = np.zeros((len(variants), n_weeks), dtype=bool)
    if table is None or table.empty or "week" not in table or not len(variants):
        return mask
    weeks = monday(pd.to_datetime(table["week"], errors="coerce"))
    widx = ((weeks - pd.Timestamp(first_week)) / WEEK).to_numpy()
    ok = np.isfinite(widx) & (widx >= 0) & (widx < n_weeks)
    if not ok.any():
        return mask
    empty = pd.Series("", index=table.index)
    fam = _ids(table["family_id"]) if "family_id" in table else empty
    var = _ids(table["variant_id"]) if "variant_id" in table else empty
    v_ids = _ids(variants["variant_id"]).to_numpy()
    v_fam = _ids(variants["family_id"]).to_numpy()
    row_of = {v: i for i, v in enumerate(v_ids)}
    for w, f, v in zip(widx[ok].astype(int), fam[ok], var[ok], strict=True):
        if v:
            i = row_of.get(v)
            if i is not None:
                mask[i, w] = True
        elif f:
            mask[v_fam == f, w] = True
        else:
            mask[:, w] = True
    return mask


def attach(panel: Any, frames: Mapping[str, pd.DataFrame]) -> Any:
    """``panel`` with ``panel.unobserved`` set from ``frames["unobserved_weeks"]`` (the same
    object; the panel is frozen, so the attribute is set the way a frozen dataclass allows)."""
    mask = unobserved_mask(
        frames.get("unobserved_weeks"), panel.variants, panel.first_week, panel.n_weeks
    )
    object.__setattr__(panel, "unobserved", mask)
    return panel


def unobserved_pairs(table: pd.DataFrame | None, variants: pd.DataFrame) -> pd.DataFrame:
    """(variant_id, week) pairs not observed, for the ``variants`` given (variant_id,
    family_id): the long form the monitoring joins its actuals with."""
    cols = ["variant_id", "week"]
    if table is None or table.empty or "week" not in table or variants.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    t = pd.DataFrame(
        {
            "week": monday(pd.to_datetime(table["week"], errors="coerce")),
            "family_id": _ids(table["family_id"]) if "family_id" in table else "",
            "variant_id": _ids(table["variant_id"]) if "variant_id" in table else "",
        }
    ).dropna(subset=["week"])
    v = pd.DataFrame(
        {"vid": _ids(variants["variant_id"]), "fam": _ids(variants["family_id"])}
    ).drop_duplicates()
    parts = [
        t[t["variant_id"] != ""][["variant_id", "week"]],
        t[(t["variant_id"] == "") & (t["family_id"] != "")]
        .merge(v, left_on="family_id", right_on="fam")[["vid", "week"]]
        .rename(columns={"vid": "variant_id"}),
    ]
    everything = t[(t["variant_id"] == "") & (t["family_id"] == "")]
    if len(everything):
        parts.append(
            everything[["week"]]
            .merge(v[["vid"]], how="cross")
            .rename(columns={"vid": "variant_id"})
        )
    return pd.concat(parts, ignore_index=True).drop_duplicates().reset_index(drop=True)
