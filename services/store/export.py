"""A Parquet export of the store: the input of distributed feature building and training.

``export_parquet(engine, folder)`` writes every table of the frames contract
(:mod:`services.store.frames`: the same columns, dtypes and row order as ``load_frames``) as
``<folder>/<table>/part-NNNNN.parquet``, plus ``<folder>/_export.json`` (the row count of each
table and the export format version). The tables that grow with history (orders, reviews,
production) are read in chunks of ``rows_per_file`` rows and written one file per chunk, so an
export never holds a whole table in memory and a Ray Data reader gets one block per file. On
Kubernetes the folder is a volume (or an object-store path mounted as one) that every Ray worker
reads; locally it is a folder under the data directory.

``read_export(folder)`` reads it back with pandas into exactly what ``load_frames`` returns (a
test checks), for the single-process path and for the small tables of the distributed one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, select

from services.common.errors import InvalidArgument
from services.store import schema
from services.store.frames import _KEYS, FRAME_COLUMNS, _types, load_frames

EXPORT_VERSION = 1
MANIFEST = "_export.json"
#: tables read and written in chunks (they grow with the order history); the rest are small
CHUNKED = ("orders", "reviews", "production")
ROWS_PER_FILE = 250_000


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _chunks(engine: Engine, name: str, rows: int) -> Iterable[pd.DataFrame]:
    """The table in key order, ``rows`` rows at a time, typed like ``load_frames``."""
    table = schema.metadata.tables[name]
    cols = list(FRAME_COLUMNS[name])
    stmt = select(*(table.c[c] for c in cols)).order_by(*(table.c[k] for k in _KEYS[name]))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=rows).execute(stmt)
        for part in result.partitions(rows):
            yield _types(name, pd.DataFrame.from_records(part, columns=cols))


def export_parquet(
    engine: Engine,
    folder: str | Path,
    *,
    tables: Iterable[str] | None = None,
    rows_per_file: int = ROWS_PER_FILE,
) -> dict[str, int]:
    """Write the store's tables under ``folder`` (replacing an earlier export); rows per table."""
    if rows_per_file < 1:
        raise InvalidArgument("rows_per_file must be >= 1", field="rows_per_file")
    names = list(tables) if tables is not None else list(FRAME_COLUMNS)
    unknown = sorted(set(names) - set(FRAME_COLUMNS))
    if unknown:
        raise InvalidArgument(f"unknown tables {unknown}", field="tables")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in names:
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        if name not in CHUNKED:
            frame = load_frames(engine, [name])[name]
            _write(frame, target / "part-00000.parquet")
            counts[name] = len(frame)
            continue
        n = 0
        for i, chunk in enumerate(_chunks(engine, name, rows_per_file)):
            _write(chunk, target / f"part-{i:05d}.parquet")
            n += len(chunk)
        if n == 0:  # an empty table still has its columns (and a reader finds a file)
            empty = _types(name, pd.DataFrame({c: [] for c in FRAME_COLUMNS[name]}))
            _write(empty, target / "part-00000.parquet")
        counts[name] = n
    manifest = {"version": EXPORT_VERSION, "rows": counts, "rows_per_file": rows_per_file}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return counts


def manifest(folder: str | Path) -> dict[str, object]:
    """The export's manifest; a folder that is not an export is an :class:`InvalidArgument`."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InvalidArgument(
            f"{folder} is not a Parquet export of the store (no {MANIFEST}); "
            "write one with services.store.export.export_parquet",
            field="parquet",
        )
    data = json.loads(path.read_text())
    if data.get("version") != EXPORT_VERSION:
        raise InvalidArgument(
            f"{folder}: export format {data.get('version')}, this release reads {EXPORT_VERSION}",
            field="parquet",
        )
    return dict(data)


def read_export(folder: str | Path, tables: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """The exported tables as ``load_frames`` gives them (all tables the export holds)."""
    rows = manifest(folder)["rows"]
    assert isinstance(rows, dict)
    names = list(tables) if tables is not None else list(rows)
    missing = [n for n in names if n not in rows]
    if missing:
        raise InvalidArgument(f"the export has no {missing}", field="tables")
    out: dict[str, pd.DataFrame] = {}
    for name in names:
        files = sorted((Path(folder) / name).glob("part-*.parquet"))
        frame = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
        # dtypes as load_frames gives them (variants: attr_* columns are plain strings)
        out[name] = frame if name == "variants" else _types(name, frame)
    return out
