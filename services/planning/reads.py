"""What a plan reads from the store, in memory bounded by the catalogue, not the order history.

The order history is the one table that grows without bound (1.3M rows in the ``large`` preset),
and a plan needs little of it:

- the demand features (:mod:`services.features.demand`) need weekly units per variant over the
  whole history (lags, 4/13/52-week means, the seasonal week a year back and the family's
  13 weeks around it, the first sale, weeks since the last one), of every variant (family and
  attribute levels pool all of them) - that is the :class:`DemandPanel`, at most variants x weeks
  numbers. :func:`read_store_view` builds it from the orders streamed in chunks
  (:func:`services.store.frames.frame_chunks`), each chunk cleaned by the row-wise rules of
  :func:`services.features.clean_frames` and summed per (variant, Monday), so no more than one
  chunk of order rows is ever in memory; the panel is the one the whole table gives (a test
  checks), and it is cached per store version by the Planner;
- the problem's firm orders: the custom orders of the planned variants, placed before the first
  planned week and due inside the horizon (:meth:`StoreView.plan_frames`, a filtered query).

The other tables (catalogue, lines, materials, production records, reviews, market, the price
and promotion calendar ``variant_weeks``, whose plan weeks the panel holds too) are read whole:
they grow with the catalogue, or like the production records and reviews much slower than the
orders (the cost features take medians over every production record); those two are streamed in
chunks too, so no row objects of a whole table are held at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from services.features import clean_frames
from services.features.demand import DemandPanel, build_panel
from services.features.tables import MAX_UNITS, monday
from services.store.frames import FRAME_COLUMNS, frame_chunks, load_frames, load_orders

WEEK = pd.Timedelta(days=7)
#: Order rows read (and held) at a time while the weekly units are summed.
ORDER_CHUNK_ROWS = 200_000
#: Tables read whole but streamed in chunks of ``ORDER_CHUNK_ROWS`` (they grow with history).
STREAMED = ("production", "reviews")
#: The order columns the panel's cleaning rules and sums need.
PANEL_ORDER_COLUMNS = ("variant_id", "quantity", "order_date", "due_date")


@dataclass(frozen=True)
class StoreView:
    """One store version as a plan reads it: every table but the orders (cleaned), the demand
    panel (None for a store without variants: the feature code says so when asked), and the
    Monday of the last order week (None: no orders)."""

    frames: Mapping[str, pd.DataFrame]
    panel: DemandPanel | None
    last_order_week: pd.Timestamp | None

    def plan_frames(
        self,
        engine: Engine,
        variant_ids: Collection[str],
        start: pd.Timestamp | None = None,
        horizon: int | None = None,
    ) -> dict[str, pd.DataFrame]:
        """The frames a plan of ``variant_ids`` from week ``start`` over ``horizon`` weeks
        needs: the cached tables, and as ``orders`` only the custom orders of those variants
        placed before ``start`` and due inside the horizon (the problem's firm orders); no
        orders at all without ``start``. The builder applies its own (same) filter again."""
        orders = load_orders(
            engine,
            variant_ids=variant_ids if start is not None else (),
            kind="custom",
            ordered_before=None if start is None else start.date(),
            due_from=None if start is None else start.date(),
            due_before=None if start is None else (start + (horizon or 0) * WEEK).date(),
        )
        cleaned, _ = clean_frames({"orders": orders})
        return {**self.frames, "orders": cleaned["orders"]}


def _weekly_chunk(chunk: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Units per (variant, Monday) of one chunk of orders, after the cleaning rules; and the rows
    those rules skipped (reason -> rows)."""
    cleaned, skipped = clean_frames({"orders": chunk})  # logs a chunk's skipped rows
    good = cleaned["orders"]
    weekly = (
        pd.DataFrame(
            {
                "variant_id": good["variant_id"].astype(str).to_numpy(),
                "order_date": monday(good["order_date"]).to_numpy(),
                "quantity": pd.to_numeric(good["quantity"]).to_numpy(dtype=np.float64),
            }
        )
        .groupby(["variant_id", "order_date"], as_index=False, sort=False)["quantity"]
        .sum()
    )
    return weekly, skipped.get("orders", {})


def weekly_orders(
    engine: Engine, rows: int = ORDER_CHUNK_ROWS
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The store's orders as units per (variant, Monday), streamed ``rows`` at a time: a frame
    with ``variant_id``, ``order_date`` (the Monday) and ``quantity``, one row per variant and
    week (a week above the per-order bound split into several, as the feature code skips an
    order above it and the sum is what counts), and the order rows the cleaning rules skipped."""
    parts: list[pd.DataFrame] = []
    skipped: dict[str, int] = {}
    for chunk in frame_chunks(engine, "orders", columns=PANEL_ORDER_COLUMNS, rows=rows):
        weekly, bad = _weekly_chunk(chunk)
        parts.append(weekly)
        for why, n in bad.items():
            skipped[why] = skipped.get(why, 0) + n
        if len(parts) > 1:  # keep at most variants x weeks rows between chunks
            both = pd.concat(parts, ignore_index=True)
            parts = [both.groupby(["variant_id", "order_date"], as_index=False)["quantity"].sum()]
    columns = ["variant_id", "order_date", "quantity"]
    if not parts or parts[0].empty:
        empty = pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip(columns, ("O", "M8[ns]", "f8"), strict=True)}
        )
        return empty, skipped
    good = parts[0].groupby(["variant_id", "order_date"], as_index=False)["quantity"].sum()
    pieces = np.ceil(good["quantity"].to_numpy() / MAX_UNITS).astype(int).clip(min=1)
    out = good.loc[good.index.repeat(pieces)].reset_index(drop=True)
    total = np.repeat(good["quantity"].to_numpy(), pieces)
    k = out.groupby(["variant_id", "order_date"]).cumcount().to_numpy()
    out["quantity"] = np.minimum(total - k * MAX_UNITS, MAX_UNITS).astype(np.float64)
    out = out.sort_values(["order_date", "variant_id"], kind="stable", ignore_index=True)
    return out[columns], skipped


def read_store_view(engine: Engine, rows: int = ORDER_CHUNK_ROWS) -> StoreView:
    """Read the store once for planning (see the module doc): the tables but the orders, cleaned;
    the demand panel from the orders streamed ``rows`` at a time."""
    small = [t for t in FRAME_COLUMNS if t not in ("orders", *STREAMED)]
    whole = load_frames(engine, small)
    for name in STREAMED:  # chunk by chunk: no row objects of the whole table at once
        parts = list(frame_chunks(engine, name, rows=rows))
        whole[name] = (
            pd.concat(parts, ignore_index=True) if parts else load_frames(engine, [name])[name]
        )
    frames, _ = clean_frames({t: whole[t] for t in FRAME_COLUMNS if t in whole})
    weekly, order_skips = weekly_orders(engine, rows)
    last = None if weekly.empty else pd.Timestamp(weekly["order_date"].max())
    no_orders = load_orders(engine, variant_ids=())
    if frames["variants"].empty:
        return StoreView(frames={**frames, "orders": no_orders}, panel=None, last_order_week=last)
    panel = build_panel({**frames, "orders": weekly})
    counts: dict[str, Any] = {t: dict(r) for t, r in panel.skipped.items() if t != "orders"}
    if order_skips:
        counts["orders"] = dict(order_skips)
    panel = replace(panel, skipped=counts)
    return StoreView(frames={**frames, "orders": no_orders}, panel=panel, last_order_week=last)


__all__ = ["ORDER_CHUNK_ROWS", "StoreView", "read_store_view", "weekly_orders"]
