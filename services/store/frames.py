"""The frames contract: the store read back as pandas DataFrames in the ingest file format.

``load_frames(engine)`` returns one DataFrame per table of docs/data-format.md, with exactly the
column names (and order) documented there: variants carry one ``attr_<name>`` column per attribute
(pivoted back from ``variant_attributes``, sorted by name), ``customer_id`` is the stored pseudonym,
``bom.condition`` is ``""`` for "every variant". Dtypes: dates are ``datetime64[ns]``, counts
``int64``, amounts ``float64``, identifiers and codes ``object`` (str). Rows are sorted by key, so
two calls on the same store give identical frames. With ``include_flags=True`` the tables that
carry outlier flags (variants, orders, production) get two extra columns, ``flagged`` and
``flag_reason``.

For the tables that grow with the order history, two bounded reads: :func:`frame_chunks` (a table
in key order, some columns, ``rows`` at a time, typed the same way) and :func:`load_orders` (only
the orders of some variants, of a kind, in a date window: what a plan reads of them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import date

import pandas as pd
from sqlalchemy import ColumnElement, Engine, and_, select

from services.store import schema

#: Documented columns per table, in order (variants: plus attr_* columns after these).
FRAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "families": ("family_id", "name", "category", "base_price"),
    "family_attributes": ("family_id", "attribute", "value"),
    "variants": ("variant_id", "family_id", "list_price", "launch_date"),
    "lines": (
        "line_id",
        "name",
        "capacity_hours",
        "setup_hours",
        "setup_cost",
        "overtime_hours_max",
        "overtime_cost_per_hour",
    ),
    "line_eligibility": ("line_id", "family_id"),
    "family_setups": ("line_id", "family_id", "setup_hours", "setup_cost"),
    "materials": ("material_id", "name", "unit", "unit_cost", "stock", "lead_time_weeks"),
    "bom": ("family_id", "material_id", "quantity_per_unit", "condition"),
    "orders": (
        "order_id",
        "customer_id",
        "variant_id",
        "quantity",
        "unit_price",
        "order_date",
        "due_date",
        "kind",
        "promo",
    ),
    "production": (
        "record_id",
        "line_id",
        "variant_id",
        "date",
        "quantity",
        "hours",
        "cost",
        "scrap",
        "setup_hours",
    ),
    "changeovers": ("changeover_id", "line_id", "family_id", "date", "hours", "cost"),
    "material_arrivals": ("arrival_id", "material_id", "date", "quantity"),
    "reviews": ("review_id", "variant_id", "customer_id", "date", "rating"),
    "market": ("week", "family_id", "price_index", "trend_index"),
    "unobserved_weeks": ("week", "family_id", "variant_id", "reason"),
    "variant_weeks": ("variant_id", "week", "price", "promo"),
}

_KEYS: dict[str, tuple[str, ...]] = {
    "families": ("family_id",),
    "family_attributes": ("family_id", "attribute", "value"),
    "variants": ("variant_id",),
    "lines": ("line_id",),
    "line_eligibility": ("line_id", "family_id"),
    "family_setups": ("line_id", "family_id"),
    "materials": ("material_id",),
    "bom": ("family_id", "material_id", "condition"),
    "orders": ("order_id",),
    "production": ("record_id",),
    "changeovers": ("changeover_id",),
    "material_arrivals": ("arrival_id",),
    "reviews": ("review_id",),
    "market": ("week", "family_id"),
    "unobserved_weeks": ("week", "family_id", "variant_id"),
    "variant_weeks": ("variant_id", "week"),
}

_FLAGGED = {"variants", "orders", "production"}


def _read(engine: Engine, name: str, columns: Iterable[str]) -> pd.DataFrame:
    table = schema.metadata.tables[name]
    cols = list(columns)
    stmt = select(*(table.c[c] for c in cols)).order_by(*(table.c[k] for k in _KEYS[name]))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return pd.DataFrame.from_records(rows, columns=cols)


def _types(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Dtypes from the column types of the table: dates, int64, float64, bool. A stored date
    pandas cannot hold (before 1677 or after 2262) becomes NaT, which the feature code skips and
    reports (``services.features.clean_frames``) instead of failing every reader."""
    table = schema.metadata.tables[name]
    for col in frame.columns:
        kind = table.c[col].type.python_type
        if kind is date:
            frame[col] = pd.to_datetime(frame[col], errors="coerce")
        elif kind is int:
            frame[col] = frame[col].astype("int64")
        elif kind is float:
            frame[col] = frame[col].astype("float64")
        elif kind is bool:
            frame[col] = frame[col].astype(bool)
    return frame


def _variants(engine: Engine, include_flags: bool) -> pd.DataFrame:
    cols = list(FRAME_COLUMNS["variants"]) + (["flagged", "flag_reason"] if include_flags else [])
    frame = _types("variants", _read(engine, "variants", cols))
    va = schema.variant_attributes
    with engine.connect() as conn:
        rows = conn.execute(select(va.c.variant_id, va.c.attribute, va.c.value)).all()
    attrs = pd.DataFrame.from_records(rows, columns=["variant_id", "attribute", "value"])
    if attrs.empty:
        return frame
    wide = attrs.pivot(index="variant_id", columns="attribute", values="value")
    wide = wide[sorted(wide.columns)]
    wide.columns = [f"attr_{c}" for c in wide.columns]
    wide.columns.name = None
    frame = frame.merge(wide, how="left", left_on="variant_id", right_index=True)
    if include_flags:  # keep the documented columns first, the flags last
        frame = frame[[c for c in frame.columns if c not in ("flagged", "flag_reason")]
                      + ["flagged", "flag_reason"]]  # fmt: skip
    return frame.reset_index(drop=True)


def load_frames(
    engine: Engine, tables: Iterable[str] | None = None, *, include_flags: bool = False
) -> dict[str, pd.DataFrame]:
    """The store's data tables as DataFrames with the documented column names (see module doc)."""
    names = list(tables) if tables is not None else list(FRAME_COLUMNS)
    unknown = [n for n in names if n not in FRAME_COLUMNS]
    if unknown:
        raise KeyError(f"unknown tables {unknown}; known: {sorted(FRAME_COLUMNS)}")
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        if name == "variants":
            out[name] = _variants(engine, include_flags)
            continue
        cols = list(FRAME_COLUMNS[name])
        if include_flags and name in _FLAGGED:
            cols += ["flagged", "flag_reason"]
        out[name] = _types(name, _read(engine, name, cols))
    return out


def frame_chunks(
    engine: Engine, name: str, *, columns: Iterable[str] | None = None, rows: int = 200_000
) -> Iterator[pd.DataFrame]:
    """Table ``name`` in key order, ``rows`` rows at a time (streamed from the database, so only
    one chunk is in memory), typed like :func:`load_frames`; ``columns``: a subset of its frame
    columns (default all). No chunk at all for an empty table."""
    if name not in FRAME_COLUMNS:
        raise KeyError(f"unknown table {name!r}; known: {sorted(FRAME_COLUMNS)}")
    if rows < 1:
        raise ValueError("rows must be >= 1")
    cols = list(columns) if columns is not None else list(FRAME_COLUMNS[name])
    table = schema.metadata.tables[name]
    stmt = select(*(table.c[c] for c in cols)).order_by(*(table.c[k] for k in _KEYS[name]))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=rows).execute(stmt)
        for part in result.partitions(rows):
            yield _types(name, pd.DataFrame.from_records(part, columns=cols))


def load_orders(
    engine: Engine,
    *,
    variant_ids: Collection[str],
    kind: str | None = None,
    ordered_before: date | None = None,
    due_from: date | None = None,
    due_before: date | None = None,
) -> pd.DataFrame:
    """The ``orders`` frame (columns and types of :func:`load_frames`) of ``variant_ids`` only,
    of one ``kind``, ordered before ``ordered_before`` and due in ``[due_from, due_before)``
    (each bound optional): what the database selects, never the whole table."""
    orders = schema.orders
    cols = list(FRAME_COLUMNS["orders"])
    ids = sorted({str(v) for v in variant_ids})
    if not ids:
        return _types("orders", pd.DataFrame({c: [] for c in cols}))
    conds: list[ColumnElement[bool]] = [orders.c.variant_id.in_(ids)]
    if kind is not None:
        conds.append(orders.c.kind == kind)
    if ordered_before is not None:
        conds.append(orders.c.order_date < ordered_before)
    if due_from is not None:
        conds.append(orders.c.due_date >= due_from)
    if due_before is not None:
        conds.append(orders.c.due_date < due_before)
    stmt = select(*(orders.c[c] for c in cols)).where(and_(*conds)).order_by(orders.c.order_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return _types("orders", pd.DataFrame.from_records(rows, columns=cols))
