"""Demand features on Ray Data, from a Parquet export of the store: the same rows as pandas.

The single-process path (``build_panel`` then ``build_training_frame``) stays the default; this
module is the path for an order history that outgrows one machine. It splits the work where it is
large and keeps the feature code itself in one place (:mod:`services.features.demand`):

1. **Orders -> weekly units** (the one table that grows with the business): Ray Data reads
   ``orders/`` of the export block by block; each block drops the rows the feature code skips
   (:func:`services.features.tables.clean_frames`, a row-wise rule, so per block is the same as
   on the whole table) and sums units per (variant, Monday); a distributed ``groupby`` adds the
   blocks up. What comes back is at most variants x weeks rows, whatever the number of orders.
2. **The panel**: ``build_panel`` on the weekly units (one "order" per variant and week, split
   where a week's units exceed the per-order bound) and the small tables; the arrays are the same
   as from the raw orders (integer sums are exact), and the skipped-row counts are those of the
   raw orders.
3. **Rows**: one Ray Data task per block of forecast origins runs ``build_training_frame`` for
   those origins on the shared panel (one object in the object store): the same function, so
   the same rows, in a Ray Dataset that Ray Train shards across its workers.

Reviews and the other tables are read with pandas (:func:`services.store.export.read_export`);
they are small next to the orders (a review per ~20 orders in the synthetic presets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from services.features import observed
from services.features.demand import DemandPanel, build_panel, build_training_frame
from services.features.tables import MAX_UNITS, clean_frames, monday
from services.store.export import manifest, read_export
from services.training.train import observed_rows

KEYS = ("origin_week", "variant_id", "target_week")
ORDER_COLUMNS = ["variant_id", "quantity", "order_date", "due_date"]
_EPOCH = np.datetime64("1970-01-01", "D")


def _weekly_block(batch: pd.DataFrame) -> pd.DataFrame:
    """One block of orders -> units per (variant_id, week day number) and skipped-row counts
    (rows with ``variant_id`` "" and the reason in ``skipped``)."""
    cleaned, skipped = clean_frames({"orders": batch})
    good = cleaned["orders"]
    days = monday(good["order_date"]).to_numpy().astype("datetime64[D]")
    weekly = (
        pd.DataFrame(
            {
                "variant_id": good["variant_id"].astype(str).to_numpy(),
                "week": (days - _EPOCH).astype(np.int64),
                "quantity": pd.to_numeric(good["quantity"]).to_numpy(dtype=np.float64),
            }
        )
        .groupby(["variant_id", "week"], as_index=False)["quantity"]
        .sum()
    )
    weekly["skipped"] = ""
    weekly["rows"] = 0
    extra = [
        {"variant_id": "", "week": 0, "quantity": 0.0, "skipped": why, "rows": n}
        for why, n in skipped.get("orders", {}).items()
    ]
    return pd.concat([weekly, pd.DataFrame(extra, columns=weekly.columns)], ignore_index=True)


def weekly_orders(folder: str | Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Units per (variant, Monday) from the export's orders on Ray Data, and the order rows the
    feature code skips (reason -> rows). ``order_date`` is the Monday of the week."""
    import ray.data

    empty = pd.DataFrame(
        {"variant_id": pd.Series(dtype=object), "quantity": pd.Series(dtype=float),
         "order_date": pd.Series(dtype="M8[ns]")}
    )  # fmt: skip
    if int(manifest(folder)["rows"]["orders"]) == 0:  # type: ignore[index]
        return empty, {}
    ds = ray.data.read_parquet(str(Path(folder) / "orders")).select_columns(ORDER_COLUMNS)
    summed = (
        ds.map_batches(_weekly_block, batch_format="pandas")
        .groupby(["variant_id", "week", "skipped"])
        .sum(["quantity", "rows"])
        .to_pandas()
    )
    summed = summed.rename(columns={"sum(quantity)": "quantity", "sum(rows)": "rows"})
    bad = summed[summed["skipped"] != ""]
    skipped = {str(k): int(v) for k, v in bad.groupby("skipped")["rows"].sum().items()}
    good = summed[summed["skipped"] == ""]
    if good.empty:
        return empty, skipped
    # one row per variant-week; a week above the per-order bound becomes several rows (the
    # feature code skips an "order" above it, the sum is what counts)
    parts = np.ceil(good["quantity"].to_numpy() / MAX_UNITS).astype(int).clip(min=1)
    rep = good.loc[good.index.repeat(parts)].reset_index(drop=True)
    total = np.repeat(good["quantity"].to_numpy(), parts)
    k = rep.groupby(["variant_id", "week"]).cumcount().to_numpy()
    rep["quantity"] = np.minimum(total - k * MAX_UNITS, MAX_UNITS).astype(np.float64)
    weeks = (_EPOCH + rep["week"].to_numpy().astype("timedelta64[D]")).astype("M8[ns]")
    out = pd.DataFrame(
        {"variant_id": rep["variant_id"].to_numpy(), "quantity": rep["quantity"].to_numpy(),
         "order_date": weeks}
    )  # fmt: skip
    return out.sort_values(["order_date", "variant_id"], kind="stable").reset_index(
        drop=True
    ), skipped


def panel_from_export(folder: str | Path) -> tuple[DemandPanel, dict[str, pd.DataFrame]]:
    """The demand panel (with its unobserved-week mask) from a Parquet export, the orders
    aggregated on Ray Data; and the small tables as frames (no orders) for the cost model."""
    tables = [t for t in manifest(folder)["rows"] if t != "orders"]  # type: ignore[attr-defined]
    frames = read_export(folder, tables)
    weekly, skipped = weekly_orders(folder)
    panel = build_panel({**frames, "orders": weekly})
    counts = {t: dict(r) for t, r in panel.skipped.items() if t != "orders"}
    if skipped:
        counts["orders"] = skipped
    panel = replace(panel, skipped=counts)
    return observed.attach(panel, {**frames, "orders": weekly}), frames


def _rows_for_origins(
    batch: pd.DataFrame, panel: Any, horizon: int, until_week: Any
) -> pd.DataFrame:
    import ray

    p: DemandPanel = ray.get(panel[0]) if not isinstance(panel[0], DemandPanel) else panel[0]
    origins = [p.week_at(int(t)) for t in batch["origin"]]
    frame = build_training_frame(p, horizon=horizon, until_week=until_week, origins=origins)
    return observed_rows(p, frame)


def origin_indices(panel: DemandPanel, until_idx: int, first: int, stride: int) -> list[int]:
    """The forecast origins ``build_training_frame`` uses for targets up to week ``until_idx``."""
    last = min(until_idx, panel.n_weeks - 1)
    return list(range(first, last, stride))


def training_dataset(
    panel: DemandPanel,
    *,
    horizon: int,
    until_idx: int,
    first_origin_weeks: int,
    origin_stride: int,
    blocks: int | None = None,
) -> Any:
    """The training rows of :func:`build_training_frame` (through ``observed_rows``) for targets
    up to week index ``until_idx``, as a materialised Ray Dataset, one task per block of origins.
    """
    import ray
    import ray.data

    origins = origin_indices(panel, until_idx, first_origin_weeks, origin_stride)
    if not origins:
        raise ValueError("no forecast origins before the cut-off")
    n = max(1, min(len(origins), blocks or 4 * max(1, int(ray.cluster_resources().get("CPU", 1)))))
    ref = ray.put(panel)
    ds = ray.data.from_items([{"origin": t} for t in origins], override_num_blocks=n)
    return ds.map_batches(
        _rows_for_origins,  # type: ignore[arg-type]
        batch_format="pandas",
        batch_size=None,
        fn_kwargs={"panel": [ref], "horizon": horizon, "until_week": panel.week_at(until_idx)},
    ).materialize()


def to_frame(ds: Any) -> pd.DataFrame:
    """A (small) Ray Dataset of feature rows as the pandas frame the single-process path gives:
    numpy dtypes (Ray Data hands Arrow-backed ones), rows in (origin, variant, target) order."""
    frame = ds.to_pandas()
    for col in frame.columns:
        dtype = frame[col].dtype
        if isinstance(dtype, pd.ArrowDtype) or str(dtype).endswith("[pyarrow]"):
            numpy_dtype = np.dtype(getattr(dtype, "numpy_dtype", object))
            plain = object if numpy_dtype.kind == "U" else numpy_dtype
            frame[col] = frame[col].to_numpy(dtype=plain)
    return sorted_frame(frame)


def sorted_frame(frame: pd.DataFrame, keys: Sequence[str] = KEYS) -> pd.DataFrame:
    """``frame`` in (origin, variant, target) order."""
    return frame.sort_values(list(keys), kind="stable").reset_index(drop=True)
