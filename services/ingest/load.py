"""Writing validated tables into the store, inside the caller's transaction.

Events are insert-only: keys already in the store are removed first with one anti-join (a set of
the stored keys, or an ``IN`` query for small batches), the rest is inserted in chunks with
``executemany`` (and ``ON CONFLICT DO NOTHING`` where the dialect has it, so a concurrent import of
the same event cannot fail the transaction). Master data is upserted: new keys inserted, changed
rows updated, identical rows counted as already present.
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
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from services.ingest.spec import TableSpec
from services.ingest.validate import Refs, Validated, flag_outliers
from services.store import schema

CHUNK = 10_000
SMALL_BATCH = 2_000  # below this many rows, look keys up with IN (...) instead of reading all
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


def existing_keys(conn: Connection, table: Table, key: tuple[str, ...], frame: pd.DataFrame) -> set:
    """Keys of ``frame`` the store already holds (values for one column, tuples for several)."""
    cols = [table.c[k] for k in key]
    if len(key) == 1 and len(frame) <= SMALL_BATCH:
        wanted = frame[key[0]].dropna().unique().tolist()
        found: set = set()
        for i in range(0, len(wanted), 500):
            stmt = select(cols[0]).where(cols[0].in_(wanted[i : i + 500]))
            found.update(conn.execute(stmt).scalars())
        return found
    if len(key) == 1:
        return set(conn.execute(select(cols[0])).scalars())
    return {tuple(r) for r in conn.execute(select(*cols))}


def _history(conn: Connection, table: Table, variants: np.ndarray) -> pd.DataFrame:
    stmt = select(table.c.variant_id, table.c.quantity)
    if len(variants) <= 500:
        stmt = stmt.where(table.c.variant_id.in_(variants.tolist()))
    return pd.DataFrame.from_records(conn.execute(stmt).all(), columns=["variant_id", "quantity"])


def write_events(
    conn: Connection,
    spec: TableSpec,
    valid: Validated,
    refs: Refs,
    pseudonym_key: str,
    progress: Progress | None = None,
) -> Written:
    table = schema.metadata.tables[spec.name]
    frame = valid.frame
    present = existing_keys(conn, table, spec.key, frame)
    is_old = _key_tuples(frame, spec.key).isin(present) if present else None
    new = frame if is_old is None else frame[~is_old.to_numpy()]
    if "customer_id" in new.columns:
        new = new.assign(customer_id=pseudonymise(new["customer_id"], pseudonym_key))
    if spec.name in ("orders", "production"):
        history = _history(conn, table, new["variant_id"].unique())
        new = flag_outliers(spec.name, new, history, refs.list_price)
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


def _stored(conn: Connection, table: Table, cols: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(conn.execute(select(*(table.c[c] for c in cols))).all(),
                                      columns=cols)  # fmt: skip
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
    stored = _stored(conn, table, key + values)
    attrs = valid.attributes
    if spec.name == "variants":
        va = schema.variant_attributes
        old_attrs = _stored(conn, va, ["variant_id", "attribute", "value"])
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
