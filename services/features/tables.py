"""Input tables as pandas DataFrames, normalised the one way every feature builder expects.

The store gives ``services.store.frames.load_frames(engine) -> dict[str, DataFrame]`` with the
column names of docs/data-format.md. :func:`read_dataset_folder` reads a ``tailorline datagen``
folder (CSV, CSV.gz or Parquet) into the same dict; tests and offline experiments use it.
:func:`normalise_frames` makes dates ``datetime64``, puts variant attributes into ``attr_<name>``
columns (the store keeps them in a long ``variant_attributes`` table) and fills missing tables
with empty frames, so the feature code never has to ask where the frames came from.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TABLES = (
    "families",
    "family_attributes",
    "variants",
    "variant_attributes",
    "lines",
    "line_eligibility",
    "materials",
    "bom",
    "orders",
    "production",
    "material_arrivals",
    "reviews",
    "market",
)

_COLUMNS: dict[str, tuple[str, ...]] = {
    "families": ("family_id", "name", "category", "base_price"),
    "variants": ("variant_id", "family_id", "list_price", "launch_date"),
    "lines": ("line_id", "capacity_hours", "setup_hours", "setup_cost", "overtime_cost_per_hour"),
    "orders": ("order_id", "variant_id", "quantity", "unit_price", "order_date", "kind", "promo"),
    "production": ("record_id", "line_id", "variant_id", "date", "quantity", "hours", "cost"),
    "reviews": ("review_id", "variant_id", "date", "rating"),
    "market": ("week", "family_id", "price_index", "trend_index"),
    "line_eligibility": ("line_id", "family_id"),
}
_DATES = {
    "variants": ("launch_date",),
    "orders": ("order_date", "due_date"),
    "production": ("date",),
    "reviews": ("date",),
    "market": ("week",),
    "material_arrivals": ("date",),
}


def read_dataset_folder(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read every table file of a data-set folder (docs/data-format.md) into DataFrames."""
    folder = Path(path)
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        for suffix in (".parquet", ".csv", ".csv.gz"):
            file = folder / f"{name}{suffix}"
            if file.is_file():
                frame = (
                    pd.read_parquet(file)
                    if suffix == ".parquet"
                    else pd.read_csv(file, dtype=str, keep_default_na=False)
                )
                frame.columns = [str(c).strip().lower() for c in frame.columns]
                out[name] = frame
                break
    return out


def read_truth(path: str | Path) -> dict[str, pd.DataFrame]:
    """The ground truth datagen writes to ``DIR/truth/`` (empty dict when there is none)."""
    folder = Path(path) / "truth"
    out: dict[str, pd.DataFrame] = {}
    for name in ("expected_demand", "unit_cost"):
        for suffix in (".parquet", ".csv", ".csv.gz"):
            file = folder / f"{name}{suffix}"
            if file.is_file():
                out[name] = pd.read_parquet(file) if suffix == ".parquet" else pd.read_csv(file)
                break
    return out


def monday(values: pd.Series) -> pd.Series:
    """Dates -> the Monday of their ISO week, as ``datetime64[ns]`` without time."""
    d = pd.to_datetime(values).dt.normalize()
    return d - pd.to_timedelta(d.dt.weekday, unit="D")


def _numeric(frame: pd.DataFrame, cols: tuple[str, ...]) -> None:
    for c in cols:
        if c in frame.columns:
            frame[c] = pd.to_numeric(frame[c], errors="coerce")


def normalise_frames(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A copy of ``frames`` with typed columns, ``attr_*`` columns on variants, no missing table."""
    out = {k: v.copy() for k, v in frames.items() if v is not None}
    for name, cols in _COLUMNS.items():
        if name not in out:
            out[name] = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    for name, cols in _DATES.items():
        if name in out:
            for c in cols:
                column = out[name].get(c)
                # Frames from the store are typed already; parsing them again costs ~0.3 s
                # per plan on 100k orders.
                if column is not None and not pd.api.types.is_datetime64_any_dtype(column):
                    out[name][c] = pd.to_datetime(column.replace("", None))
    _numeric(out["families"], ("base_price",))
    _numeric(out["variants"], ("list_price",))
    _numeric(
        out["lines"],
        (
            "capacity_hours",
            "setup_hours",
            "setup_cost",
            "overtime_hours_max",
            "overtime_cost_per_hour",
        ),
    )
    _numeric(out["orders"], ("quantity", "unit_price", "promo"))
    _numeric(out["production"], ("quantity", "hours", "cost", "scrap"))
    _numeric(out["reviews"], ("rating",))
    _numeric(out["market"], ("price_index", "trend_index"))

    variants = out["variants"]
    long = out.get("variant_attributes")
    if long is not None and len(long) and not any(c.startswith("attr_") for c in variants):
        wide = long.pivot_table(
            index="variant_id", columns="attribute", values="value", aggfunc="first"
        )
        wide.columns = [f"attr_{c}" for c in wide.columns]
        variants = variants.merge(wide, left_on="variant_id", right_index=True, how="left")
    for c in attribute_columns(variants):
        variants[c] = variants[c].fillna("").astype(str).str.strip().str.lower()
    out["variants"] = variants
    return out


def attribute_columns(variants: pd.DataFrame) -> list[str]:
    """The ``attr_<name>`` columns of a variants frame, sorted."""
    return sorted(c for c in variants.columns if str(c).startswith("attr_"))
