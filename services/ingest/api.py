"""The import entry points: a data set folder, or DataFrames (the gateway's streamed events).

Both validate every table first against what the store holds, then write all good rows in ONE
transaction (the ``ingest_runs`` row included): a crash or a kill half-way leaves the store as it
was, and re-running the same input adds nothing (event ids already stored are skipped, master data
is upserted). Customer ids are pseudonymised before they are written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, insert

from services.common.errors import InvalidArgument
from services.common.settings import CoreSettings
from services.ingest.load import Progress, fetch_refs, write_events, write_master
from services.ingest.read import discover, normalise_columns, read_file
from services.ingest.report import IngestReport, RowIssue, TableCounts
from services.ingest.spec import SPECS, TABLE_ORDER
from services.ingest.validate import validate_table
from services.store import schema
from services.store.db import migrate, writer


def ingest_frames(
    tables: Mapping[str, pd.DataFrame],
    engine: Engine,
    settings: CoreSettings,
    *,
    source: str = "frames",
    labels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    notes: tuple[str, ...] = (),
) -> IngestReport:
    """Validate and load ``tables`` (name -> frame in the file format) in one transaction.

    The store must be migrated (``services.store.migrate``). ``labels`` names each table's source
    in the report (default ``<table>``); ``progress(table, done, total)`` is called after each
    written chunk, inside the transaction.
    """
    unknown = sorted(set(tables) - set(SPECS))
    if unknown:
        raise InvalidArgument(
            f"unknown tables {unknown}; known: {list(TABLE_ORDER)}", field="tables"
        )
    labels = dict(labels or {})
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    all_notes = list(notes)
    raws: dict[str, pd.DataFrame] = {}
    for name, frame in tables.items():
        label = labels.setdefault(name, f"<{name}>")
        raw, col_notes = normalise_columns(name, frame.reset_index(drop=True), label)
        raws[name] = raw
        all_notes += col_notes

    counts: list[TableCounts] = []
    issues: list[pd.DataFrame] = []
    run_id = uuid.uuid4().hex
    with writer(engine).begin() as conn:
        refs = fetch_refs(conn)
        for name in TABLE_ORDER:
            if name not in raws:
                continue
            spec = SPECS[name]
            valid = validate_table(spec, raws[name], refs, labels[name])
            all_notes += valid.notes
            if spec.event:
                written = write_events(conn, spec, valid, refs, settings.pseudonym_key, progress)
            else:
                written = write_master(conn, spec, valid, progress)
            counts.append(
                TableCounts(
                    table=name,
                    file=labels[name],
                    read=len(raws[name]),
                    loaded=written.loaded,
                    updated=written.updated,
                    already_present=written.already_present,
                    rejected=valid.rejected,
                    flagged=written.flagged,
                )
            )
            issues.append(valid.issues)
        report_counts = {
            c.table: {k: v for k, v in vars(c).items() if k not in ("table", "file")}
            for c in counts
        }
        conn.execute(
            insert(schema.ingest_runs).values(
                run_id=run_id,
                source=source[:500],
                started_at=started,
                finished_at=datetime.now(UTC),
                counts=report_counts,
                rejected_rows=sum(c.rejected for c in counts),
            )
        )
    issue_rows = pd.concat(issues, ignore_index=True) if issues else pd.DataFrame()
    return IngestReport(
        run_id=run_id,
        source=source,
        tables=tuple(counts),
        issues=tuple(
            RowIssue(str(f), int(r), str(c), str(why), str(v))
            for f, r, c, why, v in issue_rows.itertuples(index=False, name=None)
        ),
        notes=tuple(all_notes),
        seconds=time.perf_counter() - t0,
    )


def ingest_dir(
    path: Path | str,
    engine: Engine,
    settings: CoreSettings,
    *,
    progress: Progress | None = None,
) -> IngestReport:
    """Import every table file of the data set folder ``path`` (docs/data-format.md)."""
    folder = Path(path)
    sources, notes = discover(folder)
    if not sources:
        raise InvalidArgument(f"no table files (e.g. orders.csv) in {folder}", field="DIR")
    present = {s.table for s in sources}
    missing = [t for t in TABLE_ORDER if t not in present]
    if missing:
        notes.append(f"tables not present (skipped): {', '.join(missing)}")
    frames = {s.table: read_file(s) for s in sources}
    migrate(engine)
    return ingest_frames(
        frames,
        engine,
        settings,
        source=str(folder),
        labels={s.table: s.label for s in sources},
        progress=progress,
        notes=tuple(notes),
    )
