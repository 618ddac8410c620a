"""RecordEvents as plain logic: streamed events -> ingest tables -> one transaction per batch.

Validation, de-duplication and pseudonymisation are the importer's (``services.ingest``): an
event id already stored, or repeated in the batch, is counted as a duplicate and ignored; a
rejected event is reported with its position in the stream, its id, the field and the reason.

What feedback sets off afterwards - the retrain trigger, launching and following retraining
jobs - is :class:`services.training.retraining.Retraining`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from services.common.settings import CoreSettings

#: table -> the column that is the event's id (market: built from week and family).
ID_COLUMNS = {"orders": "order_id", "production": "record_id", "reviews": "review_id"}


@dataclass(frozen=True)
class Event:
    """One streamed event: its position in the stream, its table and its row (file format)."""

    index: int
    table: str
    row: dict[str, Any]

    @property
    def event_id(self) -> str:
        if self.table == "market":
            return f"{self.row.get('week', '')}/{self.row.get('family_id', '')}"
        return str(self.row.get(ID_COLUMNS[self.table], ""))


@dataclass(frozen=True)
class EventIssue:
    index: int
    event_id: str
    field: str
    reason: str


@dataclass
class FeedbackSummary:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[EventIssue] = field(default_factory=list)

    def add(self, other: FeedbackSummary) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.errors.extend(other.errors)


def record_batch(
    events: Sequence[Event], engine: Engine, settings: CoreSettings
) -> FeedbackSummary:
    """Validate and store one batch in one transaction (the importer's)."""
    from services.ingest import ingest_frames

    summary = FeedbackSummary(received=len(events))
    if not events:
        return summary
    by_table: dict[str, list[Event]] = {}
    for ev in events:
        by_table.setdefault(ev.table, []).append(ev)
    frames = {t: pd.DataFrame([e.row for e in evs]) for t, evs in by_table.items()}
    report = ingest_frames(frames, engine, settings, source="feedback")
    label_to_table = {f"<{t}>": t for t in by_table}
    seen_rows: set[tuple[str, int]] = set()
    dup_rows: set[tuple[str, int]] = set()
    for issue in report.issues:
        table = label_to_table.get(issue.file, issue.file)
        key = (table, issue.row)
        if issue.reason.startswith("duplicate"):
            dup_rows.add(key)
            continue
        if key in seen_rows or table not in by_table or not 1 <= issue.row <= len(by_table[table]):
            continue
        seen_rows.add(key)
        ev = by_table[table][issue.row - 1]
        summary.errors.append(EventIssue(ev.index, ev.event_id, issue.column, issue.reason))
    for counts in report.tables:
        summary.stored += counts.loaded + counts.updated
        summary.duplicates += counts.already_present
    summary.duplicates += len(dup_rows - seen_rows)
    summary.rejected = len(summary.errors)
    summary.errors.sort(key=lambda e: e.index)
    return summary
