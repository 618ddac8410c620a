"""Input tables as pandas DataFrames, normalised the one way every feature builder expects.

The store gives ``services.store.frames.load_frames(engine) -> dict[str, DataFrame]`` with the
column names of docs/data-format.md. :func:`read_dataset_folder` reads a ``tailorline datagen``
folder (CSV, CSV.gz or Parquet) into the same dict; tests and offline experiments use it.
:func:`normalise_frames` makes dates ``datetime64``, puts variant attributes into ``attr_<name>``
columns (the store keeps them in a long ``variant_attributes`` table) and fills missing tables
with empty frames, so the feature code never has to ask where the frames came from.

It also drops rows no feature can be built from (:func:`clean_frames`): a date outside the store's
calendar, a quantity or price that is not a finite number in its range. Ingest refuses such rows;
this is the second line of defence for rows that reached the store some other way (a hand-written
``INSERT``, an older version): one bad row must not stop forecasting for every other variant. The
skipped rows are counted and logged (logger ``tailorline.features``, WARNING, once per distinct
count in a process), and the counts travel with the panel (``DemandPanel.skipped``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("tailorline.features")

#: The store's calendar (docs/data-format.md, *Limits*): every stored date lies in it. The same
#: values as ingest's ``services.ingest.spec.Limits`` defaults and caps (a test checks), kept here
#: because the feature code depends on pandas only.
DATE_MIN = pd.Timestamp("1990-01-01")
DATE_MAX = pd.Timestamp("2100-12-31")
MAX_UNITS = 1_000_000  # product units of one order or production record
MAX_PRICE = 1_000_000.0  # EUR per unit
MAX_INDEX = 1_000.0  # market price_index / trend_index

TABLES = (
    "families",
    "family_attributes",
    "variants",
    "variant_attributes",
    "lines",
    "line_eligibility",
    "family_setups",
    "materials",
    "bom",
    "orders",
    "production",
    "changeovers",
    "material_arrivals",
    "reviews",
    "market",
    "variant_weeks",
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
    "changeovers": ("date",),
    "reviews": ("date",),
    "market": ("week",),
    "material_arrivals": ("date",),
    "variant_weeks": ("week",),
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
    for name in ("expected_demand", "unit_cost", "family_setups"):
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


def _dates(frame: pd.DataFrame, col: str) -> pd.Series:
    """``frame[col]`` as timestamps (anything unreadable, or beyond what pandas holds, NaT)."""
    s = frame[col]
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    return pd.to_datetime(s.replace("", None), format="ISO8601", errors="coerce")


def _outside(dates: pd.Series, missing_ok: bool = False) -> pd.Series:
    bad = (dates < DATE_MIN) | (dates > DATE_MAX)
    return bad if missing_ok else bad | dates.isna()


def _not_in(values: pd.Series, lo: float, hi: float, *, lo_open: bool = False) -> pd.Series:
    """Not a finite number in [lo, hi] (or (lo, hi] with ``lo_open``)."""
    x = pd.to_numeric(values, errors="coerce").astype("float64")
    low = x <= lo if lo_open else x < lo
    return ~np.isfinite(x) | low | (x > hi)


_DATE_COLUMNS = frozenset({"order_date", "due_date", "date", "week", "launch_date"})


class _View:
    """A frame's columns for the rules, date columns as timestamps (converted once, not copied)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.cache: dict[str, pd.Series] = {}

    def __getitem__(self, col: str) -> pd.Series:
        if col not in self.cache:
            self.cache[col] = _dates(self.frame, col) if col in _DATE_COLUMNS else self.frame[col]
        return self.cache[col]


Rule = tuple[str, tuple[str, ...], Callable[[_View], pd.Series]]

#: table -> (what is wrong, columns it needs, test giving True for a bad row); a rule whose
#: columns a frame lacks is not applied (hand-made frames may leave optional ones out).
_RULES: dict[str, tuple[Rule, ...]] = {
    "orders": (
        ("order_date outside the calendar", ("order_date",), lambda f: _outside(f["order_date"])),
        ("due_date outside the calendar", ("due_date",),
         lambda f: _outside(f["due_date"], missing_ok=True)),
        ("quantity not in 1..MAX_UNITS", ("quantity",),
         lambda f: _not_in(f["quantity"], 0, MAX_UNITS, lo_open=True)),
        ("no variant_id", ("variant_id",), lambda f: f["variant_id"].isna()),
    ),
    "production": (
        ("date outside the calendar", ("date",), lambda f: _outside(f["date"])),
        ("quantity not in 1..MAX_UNITS", ("quantity",),
         lambda f: _not_in(f["quantity"], 0, MAX_UNITS, lo_open=True)),
        ("hours not a finite number >= 0", ("hours",), lambda f: _not_in(f["hours"], 0, np.inf)),
        ("cost not a finite number >= 0", ("cost",), lambda f: _not_in(f["cost"], 0, np.inf)),
    ),
    "reviews": (
        ("date outside the calendar", ("date",), lambda f: _outside(f["date"])),
        ("rating not in 1..5", ("rating",), lambda f: _not_in(f["rating"], 1, 5)),
    ),
    "market": (
        ("week outside the calendar", ("week",), lambda f: _outside(f["week"])),
        ("price_index not in (0, MAX_INDEX]", ("price_index",),
         lambda f: _not_in(f["price_index"], 0, MAX_INDEX, lo_open=True)),
        ("trend_index not in (0, MAX_INDEX]", ("trend_index",),
         lambda f: _not_in(f["trend_index"], 0, MAX_INDEX, lo_open=True)),
    ),
    "variants": (
        ("launch_date outside the calendar", ("launch_date",),
         lambda f: _outside(f["launch_date"], missing_ok=True)),
        ("list_price not in (0, MAX_PRICE]", ("list_price",),
         lambda f: _not_in(f["list_price"], 0, MAX_PRICE, lo_open=True)),
    ),
    "families": (
        ("base_price not in (0, MAX_PRICE]", ("base_price",),
         lambda f: _not_in(f["base_price"], 0, MAX_PRICE, lo_open=True)),
    ),
}  # fmt: skip

_reported: set[tuple[tuple[str, str, int], ...]] = set()
_reported_lock = threading.Lock()


def _report(skipped: Mapping[str, Mapping[str, int]]) -> None:
    """One WARNING per distinct summary in this process (then DEBUG): every forecast request
    builds features, and an operator needs the news once, not once per request."""
    key = tuple(sorted((t, why, n) for t, reasons in skipped.items() for why, n in reasons.items()))
    if not key:
        return
    text = "; ".join(f"{t}: {n} rows ({why})" for t, why, n in key)
    with _reported_lock:
        new = key not in _reported
        _reported.add(key)
    log.log(
        logging.WARNING if new else logging.DEBUG,
        "skipped %d stored rows no feature can be built from (fix or delete them in the store): %s",
        sum(n for _, _, n in key),
        text,
    )


def clean_frames(
    frames: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]]]:
    """``frames`` without the rows no feature can be built from, and what was skipped
    (table -> reason -> rows). Dates outside the calendar (or unreadable), quantities, prices,
    ratings and market indices that are not finite numbers in range make a row bad. Logs the
    counts (see the module doc). The frames are not copied when nothing is skipped."""
    out = dict(frames)
    skipped: dict[str, dict[str, int]] = {}
    for table, rules in _RULES.items():
        frame = out.get(table)
        if frame is None or frame.empty:
            continue
        bad = pd.Series(False, index=frame.index)
        view = _View(frame)
        for why, cols, test in rules:
            if not set(cols) <= set(frame.columns):
                continue
            hit = test(view).fillna(True).astype(bool) & ~bad
            if hit.any():
                skipped.setdefault(table, {})[why] = int(hit.sum())
                bad |= hit
        if bad.any():
            out[table] = frame[~bad.to_numpy()]
    _report(skipped)
    return out, skipped


def normalise_frames(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A copy of ``frames`` with typed columns, ``attr_*`` columns on variants, no missing table,
    and without the rows :func:`clean_frames` skips."""
    return normalise_and_count(frames)[0]


def normalise_and_count(
    frames: Mapping[str, pd.DataFrame],
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, int]]]:
    """:func:`normalise_frames`, and the rows skipped (table -> reason -> rows)."""
    cleaned, skipped = clean_frames({k: v for k, v in frames.items() if v is not None})
    out = {k: v.copy() for k, v in cleaned.items()}
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
                    out[name][c] = _dates(out[name], c)
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
    _numeric(out["production"], ("quantity", "hours", "cost", "scrap", "setup_hours"))
    for name in ("family_setups", "changeovers"):
        if name in out:
            _numeric(out[name], ("setup_hours", "setup_cost", "hours", "cost"))
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
    return out, skipped


def attribute_columns(variants: pd.DataFrame) -> list[str]:
    """The ``attr_<name>`` columns of a variants frame, sorted."""
    return sorted(c for c in variants.columns if str(c).startswith("attr_"))
