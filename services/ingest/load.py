"""Writing validated tables into the store, inside the caller's transaction, one chunk at a time.

Events are insert-only: keys already in the store (from earlier imports, or from earlier chunks of
this one: the transaction sees its own writes) are removed first with ``IN`` queries for the
chunk's keys, the rest is inserted in chunks with ``executemany`` (and ``ON CONFLICT DO NOTHING``
where the dialect has it, so a concurrent import of the same event cannot fail the transaction).
Master data is upserted: new keys inserted, changed rows updated, identical rows counted as already
present. Nothing here reads a whole table, so memory follows the chunk, not the store.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Table,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from services.ingest.outliers import QuantityStats, flag_outliers
from services.ingest.spec import TableSpec
from services.ingest.validate import Refs, Validated
from services.store import schema

CHUNK = 10_000
SMALL_BATCH = 2_000  # below this many rows, insert through SQLAlchemy instead of the fast path
IN_BATCH = 5_000  # values per IN (...) query (SQLite allows 32,766 parameters, PostgreSQL 65,535)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Written:
    loaded: int
    updated: int
    already_present: int
    flagged: int


def pseudonymise(ids: pd.Series, key: str) -> pd.Series:
    """HMAC-SHA256(key, id), hex, first 32 characters; missing ids stay missing."""
    secret = key.encode()
    uniq = ids.dropna().unique()
    table = {v: hmac.new(secret, str(v).encode(), hashlib.sha256).hexdigest()[:32] for v in uniq}
    return ids.map(table)


def fetch_refs(conn: Connection) -> Refs:
    """What the store already knows that validation needs (ids, allowed values, list prices)."""
    refs = Refs()
    for name, col in (
        ("families", "family_id"),
        ("lines", "line_id"),
        ("materials", "material_id"),
    ):
        table = schema.metadata.tables[name]
        refs.keys[name] = set(conn.execute(select(table.c[col])).scalars())
    v = schema.variants
    rows = conn.execute(select(v.c.variant_id, v.c.list_price)).all()
    refs.keys["variants"] = {r[0] for r in rows}
    refs.list_price = {r[0]: r[1] for r in rows}
    fa = schema.family_attributes
    allowed = conn.execute(select(fa.c.family_id, fa.c.attribute, fa.c.value)).all()
    refs.allowed = pd.DataFrame.from_records(allowed, columns=["family_id", "attribute", "value"])
    return refs


def _column_lists(
    frame: pd.DataFrame, table: Table, *, iso_dates: bool = False
) -> tuple[list[str], list[list[Any]]]:
    """Each column as a list of plain Python values (dates as ``date`` or ISO text, NaN as None)."""
    cols = [c for c in frame.columns if c in table.c]
    lists: list[list[Any]] = []
    for col in cols:
        kind = table.c[col].type.python_type
        s = frame[col]
        if kind is date:
            stamps = s if pd.api.types.is_datetime64_any_dtype(s) else pd.to_datetime(s)
            values = stamps.dt.strftime("%Y-%m-%d") if iso_dates else stamps.dt.date
            lists.append(values.astype(object).where(s.notna(), None).tolist())
        elif kind is int:
            lists.append(s.astype("int64").tolist())
        elif kind is float:
            f = s.astype("float64")
            lists.append(f.astype(object).where(f.notna(), None).tolist())
        elif kind is bool:
            b = s.fillna(False).astype(bool)
            lists.append(b.astype(int).tolist() if iso_dates else b.tolist())
        else:
            lists.append(s.astype(object).where(s.notna(), None).tolist())
    return cols, lists


def _records(frame: pd.DataFrame, table: Table) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values, for SQLAlchemy ``executemany``."""
    cols, lists = _column_lists(frame, table)
    return [dict(zip(cols, row, strict=True)) for row in zip(*lists, strict=True)]


def _insert_stmt(conn: Connection, table: Table, ignore_conflicts: bool) -> Any:
    if ignore_conflicts and conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    if ignore_conflicts and conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    return insert(table)


def _bulk_sqlite(conn: Connection, table: Table, chunk: pd.DataFrame, ignore: bool) -> None:
    """One driver-level executemany (SQLAlchemy's per-row bind processing skipped)."""
    cols, lists = _column_lists(chunk, table, iso_dates=True)
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT {'OR IGNORE ' if ignore else ''}INTO {quote(table.name)} "
        f"({', '.join(quote(c) for c in cols)}) VALUES ({', '.join('?' * len(cols))})"
    )
    conn.exec_driver_sql(sql, list(zip(*lists, strict=True)))


def _bulk_postgres(conn: Connection, table: Table, chunk: pd.DataFrame) -> None:
    """COPY ... FROM STDIN (CSV written by pandas) on the transaction's own connection.

    Keys were anti-joined before, so no conflict handling is needed; NULL is written as \\N so an
    empty string stays an empty string.
    """
    cols = [c for c in chunk.columns if c in table.c]
    frame = chunk[cols].copy()
    for col in cols:
        kind = table.c[col].type.python_type
        if kind is int:
            frame[col] = frame[col].astype("int64")
        elif kind is bool:
            frame[col] = frame[col].fillna(False).astype(bool)
    text = frame.to_csv(index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d")
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"COPY {quote(table.name)} ({', '.join(quote(c) for c in cols)}) "
        "FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(sql) as copy:
        copy.write(text)


def insert_frame(
    conn: Connection,
    table: Table,
    frame: pd.DataFrame,
    *,
    ignore_conflicts: bool = False,
    progress: Progress | None = None,
    label: str | None = None,
) -> int:
    """Insert ``frame`` in chunks of CHUNK rows; returns the number of rows sent.

    Big frames take the driver's fast path (SQLite: executemany of plain tuples; PostgreSQL:
    COPY); small ones (streamed events) go through SQLAlchemy with ON CONFLICT DO NOTHING.
    """
    total = len(frame)
    dialect = conn.dialect.name
    fast = total > SMALL_BATCH and dialect in ("sqlite", "postgresql")
    stmt = _insert_stmt(conn, table, ignore_conflicts)
    for start in range(0, total, CHUNK):
        part = frame.iloc[start : start + CHUNK]
        if fast and dialect == "sqlite":
            _bulk_sqlite(conn, table, part, ignore_conflicts)
        elif fast:
            _bulk_postgres(conn, table, part)
        else:
            conn.execute(stmt, _records(part, table))
        if progress:
            progress(label or table.name, min(start + CHUNK, total), total)
    return total


def _key_tuples(frame: pd.DataFrame, key: Iterable[str]) -> pd.Series:
    cols = list(key)
    if len(cols) == 1:
        return frame[cols[0]]
    parts = []
    for c in cols:
        s = frame[c]
        if pd.api.types.is_datetime64_any_dtype(s):
            s = s.dt.date
        parts.append(s.astype(object))
    return pd.Series(list(zip(*parts, strict=True)), index=frame.index, dtype=object)


def _select_in(
    conn: Connection, table: Table, cols: list[str], by: str, values: list[Any]
) -> list[tuple[Any, ...]]:
    """Rows (``cols``) of ``table`` whose text column ``by`` holds one of ``values``.

    In batches of IN_BATCH values, each one statement with plain parameters: SQLite through the
    driver (``IN (?, ...)``; SQLAlchemy's expanding IN costs more than the query), PostgreSQL with
    one array parameter (``= ANY(...)``). SQLite gives dates back as ISO text.
    """
    rows: list[tuple[Any, ...]] = []
    if conn.dialect.name == "sqlite":
        q = conn.dialect.identifier_preparer.quote
        head = f"SELECT {', '.join(q(c) for c in cols)} FROM {q(table.name)} WHERE {q(by)} IN "
        raw = conn.connection.driver_connection  # this transaction's connection
        assert raw is not None
        for i in range(0, len(values), IN_BATCH):
            part = tuple(values[i : i + IN_BATCH])
            rows += raw.execute(head + "(" + ",".join("?" * len(part)) + ")", part).fetchall()
        return rows
    picked = [table.c[c] for c in cols]
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        array = bindparam("values", type_=ARRAY(table.c[by].type))
        stmt = select(*picked).where(table.c[by] == any_(array))
        for i in range(0, len(values), IN_BATCH):
            rows += [tuple(r) for r in conn.execute(stmt, {"values": values[i : i + IN_BATCH]})]
        return rows
    for i in range(0, len(values), IN_BATCH):
        stmt = select(*picked).where(table.c[by].in_(values[i : i + IN_BATCH]))
        rows += [tuple(r) for r in conn.execute(stmt)]
    return rows


def existing_keys(conn: Connection, table: Table, key: tuple[str, ...], frame: pd.DataFrame) -> set:
    """Keys of ``frame`` the store already holds (values for one column, tuples for several;
    the first key column must be text, as every event id is)."""
    wanted = [str(v) for v in frame[key[0]].dropna().unique().tolist()]
    rows = _select_in(conn, table, list(key), key[0], wanted)
    if len(key) == 1:
        return {r[0] for r in rows}
    return set(rows)


def quantity_stats(conn: Connection, table: Table) -> QuantityStats:
    """Counts per (variant, quantity) of the stored rows: one aggregated query."""
    stats = QuantityStats()
    stmt = select(table.c.variant_id, table.c.quantity, func.count()).group_by(
        table.c.variant_id, table.c.quantity
    )
    for variant, quantity, count in conn.execute(stmt):
        stats.add_counts(str(variant), float(quantity), int(count))
    return stats


def write_events(
    conn: Connection,
    spec: TableSpec,
    valid: Validated,
    refs: Refs,
    pseudonym_key: str,
    progress: Progress | None = None,
    stats: QuantityStats | None = None,
) -> Written:
    """Insert the chunk's new events. ``stats`` (orders, production: the quantities counted so far
    in this import, see :func:`quantity_stats`) gets the new rows counted in."""
    table = schema.metadata.tables[spec.name]
    frame = valid.frame
    present = existing_keys(conn, table, spec.key, frame) if len(frame) else set()
    is_old = _key_tuples(frame, spec.key).isin(present) if present else None
    new = frame if is_old is None else frame[~is_old.to_numpy()]
    if "customer_id" in new.columns:
        new = new.assign(customer_id=pseudonymise(new["customer_id"], pseudonym_key))
    if spec.name in ("orders", "production"):
        if stats is None:
            stats = quantity_stats(conn, table)
        new = flag_outliers(spec.name, new, stats, refs.list_price)
        stats.add(new[["variant_id", "quantity"]])
    insert_frame(conn, table, new, ignore_conflicts=True, progress=progress)
    flagged = int(new["flagged"].sum()) if "flagged" in new.columns else 0
    return Written(len(new), 0, len(frame) - len(new), flagged)


def _changed(merged: pd.DataFrame, cols: list[str]) -> np.ndarray:
    diff = np.zeros(len(merged), dtype=bool)
    for c in cols:
        a, b = merged[c], merged[f"{c}__old"]
        both_missing = (a.isna() & b.isna()).to_numpy()
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            fa = pd.to_numeric(a, errors="coerce").to_numpy(dtype="float64")
            fb = pd.to_numeric(b, errors="coerce").to_numpy(dtype="float64")
            same = np.isclose(fa, fb, rtol=1e-9, atol=1e-12)
        else:
            same = (a.astype(object) == b.astype(object)).to_numpy()
        diff |= ~(same | both_missing)
    return diff


def _stored(
    conn: Connection, table: Table, cols: list[str], frame: pd.DataFrame, by: str
) -> pd.DataFrame:
    """The stored rows (``cols``) whose ``by`` column holds a value of ``frame[by]``."""
    wanted = [str(v) for v in frame[by].dropna().unique().tolist()] if by in frame else []
    frame = pd.DataFrame.from_records(_select_in(conn, table, cols, by, wanted), columns=cols)
    for c in cols:
        if table.c[c].type.python_type is date:
            frame[c] = pd.to_datetime(frame[c])
    return frame


def _attr_signature(attrs: pd.DataFrame) -> pd.Series:
    if attrs.empty:
        return pd.Series(dtype=object)
    pairs = (attrs["attribute"] + "=" + attrs["value"]).sort_values()
    return pairs.groupby(attrs.loc[pairs.index, "variant_id"]).agg(";".join)


def write_master(
    conn: Connection, spec: TableSpec, valid: Validated, progress: Progress | None = None
) -> Written:
    table = schema.metadata.tables[spec.name]
    frame = valid.frame[[c for c in valid.frame.columns if c in table.c]]
    key = list(spec.key)
    values = [c for c in frame.columns if c not in key and c not in ("flagged", "flag_reason")]
    by = next(k for k in key if table.c[k].type.python_type is str)  # an id, never a date
    stored = _stored(conn, table, key + values, frame, by)
    attrs = valid.attributes
    if spec.name == "variants":
        va = schema.variant_attributes
        old_attrs = _stored(conn, va, ["variant_id", "attribute", "value"], frame, "variant_id")
        frame = frame.assign(attrs=frame["variant_id"].map(_attr_signature(attrs)).fillna(""))
        sig = _attr_signature(old_attrs)
        stored = stored.assign(attrs=stored["variant_id"].map(sig).fillna(""))
        values = [*values, "attrs"]
    merged = frame.merge(stored, on=key, how="left", suffixes=("", "__old"), indicator=True)
    is_new = (merged["_merge"] == "left_only").to_numpy()
    changed = ~is_new & _changed(merged, values) if values else np.zeros(len(merged), dtype=bool)
    new_rows = frame[is_new]
    changed_rows = frame[changed]
    insert_frame(conn, table, new_rows, progress=progress)
    if len(changed_rows):
        real = [c for c in values if c in table.c]
        stmt = (
            update(table)
            .where(*(table.c[k] == bindparam(f"k_{k}") for k in key))
            .values({c: bindparam(f"v_{c}") for c in [*real, "flagged", "flag_reason"]
                     if c in changed_rows.columns})
        )  # fmt: skip
        recs = _records(changed_rows, table)
        params = [
            {**{f"k_{k}": r[k] for k in key}, **{f"v_{c}": v for c, v in r.items() if c not in key}}
            for r in recs
        ]
        conn.execute(stmt, params)
    if spec.name == "variants" and attrs is not None:
        va = schema.variant_attributes
        touched = set(new_rows["variant_id"]) | set(changed_rows["variant_id"])
        if len(changed_rows):
            ids = changed_rows["variant_id"].tolist()
            for i in range(0, len(ids), 500):
                conn.execute(delete(va).where(va.c.variant_id.in_(ids[i : i + 500])))
        insert_frame(conn, va, attrs[attrs["variant_id"].isin(touched)])
    written = is_new | changed
    flagged = int(frame.loc[written, "flagged"].sum()) if "flagged" in frame.columns else 0
    return Written(int(is_new.sum()), int(changed.sum()), int((~is_new & ~changed).sum()), flagged)
