"""The import entry points: a data set folder, or DataFrames (the gateway's streamed events).

Both validate each table against what the store holds and write its good rows, a chunk of rows at
a time, all in ONE transaction (the ``ingest_runs`` row included): a crash or a kill half-way
leaves the store as it was, and re-running the same input adds nothing (event ids already stored
are skipped, master data is upserted). Files are streamed (``read.read_chunks``), so memory depends
on ``Limits.chunk_rows``, not on the size of the files. Customer ids are pseudonymised before they
are written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, insert

from services.common.errors import InvalidArgument
from services.common.settings import CoreSettings
from services.ingest.load import Progress, fetch_refs, quantity_stats, write_events, write_master
from services.ingest.read import (
    Chunk,
    SourceFile,
    delimiter_hint,
    discover,
    frame_chunks,
    normalise_columns,
    read_chunks,
)
from services.ingest.report import IngestReport, RowIssue, TableCounts
from services.ingest.spec import DEFAULT_LIMITS, SPECS, TABLE_ORDER, Limits
from services.ingest.validate import Refs, validate_table
from services.store import schema
from services.store.db import migrate, writer

ChunkSource = Callable[[], Iterable[Chunk]]


@dataclass
class _TableRun:
    """What one table's chunks added up to."""

    name: str
    label: str
    limits: Limits
    read: int = 0
    loaded: int = 0
    updated: int = 0
    already_present: int = 0
    rejected: int = 0
    flagged: int = 0
    notes: list[str] = field(default_factory=list)

    def counts(self) -> TableCounts:
        return TableCounts(
            table=self.name,
            file=self.label,
            read=self.read,
            loaded=self.loaded,
            updated=self.updated,
            already_present=self.already_present,
            rejected=self.rejected,
            flagged=self.flagged,
        )


class _Issues:
    """The problems of an import, the first ``limit`` of them kept, all of them counted."""

    def __init__(self, limit: int) -> None:
        self.kept: list[RowIssue] = []
        self.left_out = 0
        self.limit = limit

    def add(self, rows: Iterable[RowIssue]) -> None:
        for issue in rows:
            if len(self.kept) < self.limit:
                self.kept.append(issue)
            else:
                self.left_out += 1


def _load_table(
    conn: Connection,
    name: str,
    label: str,
    chunks: Iterable[Chunk],
    refs: Refs,
    settings: CoreSettings,
    limits: Limits,
    issues: _Issues,
    progress: Progress | None,
) -> _TableRun:
    spec = SPECS[name]
    run = _TableRun(name, label, limits)
    stats = quantity_stats(conn, schema.metadata.tables[name]) if name in (
        "orders", "production"
    ) else None  # fmt: skip
    for chunk in chunks:
        raw, col_notes = normalise_columns(name, chunk.frame, label, limits)
        hint = delimiter_hint(chunk.columns)
        for note in [*col_notes, *([f"{label}: {hint}"] if hint else [])]:
            if note not in run.notes:
                run.notes.append(note)
        offset = run.read

        def inner(table: str, done: int, total: int, offset: int = offset) -> None:
            if progress:
                progress(name, offset + done, 0)

        valid = validate_table(
            spec, raw, refs, label, limits,
            missing_reason=f"missing column ({hint})" if hint else "missing column",
        )  # fmt: skip
        for note in valid.notes:
            if note not in run.notes:
                run.notes.append(note)
        if spec.event:
            key = settings.require_pseudonym_key()
            written = write_events(conn, spec, valid, refs, key, inner, stats)
        else:
            written = write_master(conn, spec, valid, inner)
        issues.add(
            RowIssue(label, position + 1, "", reason, "") for position, reason in chunk.bad_rows
        )
        issues.add(
            RowIssue(str(f), int(r), str(c), str(why), str(v))
            for f, r, c, why, v in valid.issues.itertuples(index=False, name=None)
        )
        run.read += len(raw) + len(chunk.bad_rows)
        run.rejected += valid.rejected + len(chunk.bad_rows)
        run.loaded += written.loaded
        run.updated += written.updated
        run.already_present += written.already_present
        run.flagged += written.flagged
        if not spec.event and spec.reference and run.read > limits.max_master_rows:
            raise InvalidArgument(
                f"{label}: more than {limits.max_master_rows} rows (the limit for master data)",
                field=name,
            )
    if stats is not None and stats.full:
        run.notes.append(f"{label}: too many distinct quantities to flag outliers by median")
    return run


def _ingest(
    sources: Mapping[str, ChunkSource],
    engine: Engine,
    settings: CoreSettings,
    *,
    source: str,
    labels: Mapping[str, str],
    progress: Progress | None,
    notes: tuple[str, ...],
    limits: Limits,
) -> IngestReport:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    all_notes = list(notes)
    runs: list[_TableRun] = []
    issues = _Issues(limits.max_issues)
    run_id = uuid.uuid4().hex
    with writer(engine).begin() as conn:
        refs = fetch_refs(conn)
        for name in TABLE_ORDER:
            if name not in sources:
                continue
            run = _load_table(
                conn, name, labels[name], sources[name](), refs, settings, limits, issues, progress
            )
            runs.append(run)
            all_notes += run.notes
        counts = [r.counts() for r in runs]
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
    kept = sorted(issues.kept, key=lambda i: (TABLE_ORDER.index(_table_of(i, labels)), i.row))
    return IngestReport(
        run_id=run_id,
        source=source,
        tables=tuple(counts),
        issues=tuple(kept),
        notes=tuple(all_notes),
        seconds=time.perf_counter() - t0,
        issues_left_out=issues.left_out,
    )


def _table_of(issue: RowIssue, labels: Mapping[str, str]) -> str:
    return next((t for t, label in labels.items() if label == issue.file), TABLE_ORDER[0])


def ingest_frames(
    tables: Mapping[str, pd.DataFrame],
    engine: Engine,
    settings: CoreSettings,
    *,
    source: str = "frames",
    labels: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    notes: tuple[str, ...] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> IngestReport:
    """Validate and load ``tables`` (name -> frame in the file format) in one transaction.

    The store must be migrated (``services.store.migrate``). ``labels`` names each table's source
    in the report (default ``<table>``); ``progress(table, rows_done, 0)`` is called after each
    written chunk, inside the transaction.
    """
    unknown = sorted(set(tables) - set(SPECS))
    if unknown:
        shown = [str(u)[:64] for u in unknown[:10]]
        raise InvalidArgument(f"unknown tables {shown}; known: {list(TABLE_ORDER)}", field="tables")
    labels = dict(labels or {})
    for name in tables:
        labels.setdefault(name, f"<{name}>")

    def chunks_of(frame: pd.DataFrame) -> ChunkSource:
        return lambda: frame_chunks(frame, limits)

    sources = {name: chunks_of(frame) for name, frame in tables.items()}
    return _ingest(
        sources,
        engine,
        settings,
        source=source,
        labels=labels,
        progress=progress,
        notes=notes,
        limits=limits,
    )


def ingest_dir(
    path: Path | str,
    engine: Engine,
    settings: CoreSettings,
    *,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> IngestReport:
    """Import every table file of the data set folder ``path`` (docs/data-format.md).

    Files are read in chunks of ``limits.chunk_rows`` rows. A file that cannot be read as a whole
    (see :mod:`services.ingest.read`) stops the import with an :class:`InvalidArgument` and
    nothing is loaded.
    """
    folder = Path(path)
    found, notes = discover(folder)
    if not found:
        raise InvalidArgument(f"no table files (e.g. orders.csv) in {folder}", field="DIR")
    present = {s.table for s in found}
    missing = [t for t in TABLE_ORDER if t not in present]
    if missing:
        notes.append(f"tables not present (skipped): {', '.join(missing)}")

    def chunks_of(src: SourceFile) -> ChunkSource:
        def gen() -> Iterator[Chunk]:
            return read_chunks(src, limits)

        return gen

    migrate(engine)
    return _ingest(
        {s.table: chunks_of(s) for s in found},
        engine,
        settings,
        source=str(folder),
        labels={s.table: s.label for s in found},
        progress=progress,
        notes=tuple(notes),
        limits=limits,
    )
