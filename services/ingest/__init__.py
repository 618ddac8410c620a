"""Ingestion: read, validate, clean and load a data set (docs/data-format.md) into the store.

Public surface::

    from services.ingest import ingest_dir, ingest_frames, IngestReport
"""

from __future__ import annotations

from services.ingest.api import ingest_dir, ingest_frames
from services.ingest.report import IngestReport, RowIssue, TableCounts

__all__ = ["IngestReport", "RowIssue", "TableCounts", "ingest_dir", "ingest_frames"]
