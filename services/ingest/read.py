"""Finding and reading the files of a data set folder (CSV, CSV.gz, Parquet).

CSV cells are read as text (nothing is guessed), so validation sees exactly what the file holds
and can say which value was malformed. Column names are trimmed and lower-cased; direct
identifiers (see :data:`~services.ingest.spec.PRIVATE_COLUMNS`) are dropped here, before anything
else sees them.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from services.common.errors import InvalidArgument
from services.ingest.spec import PRIVATE_COLUMNS, PRIVATE_ON_EVENTS, SPECS

SUFFIXES = (".csv", ".csv.gz", ".parquet")


@dataclass(frozen=True)
class SourceFile:
    table: str
    path: Path

    @property
    def label(self) -> str:
        return self.path.name


def discover(folder: Path) -> tuple[list[SourceFile], list[str]]:
    """The table files in ``folder`` (in no particular order) and notes about other files."""
    if not folder.is_dir():
        raise InvalidArgument(f"not a folder: {folder}", field="DIR")
    found: dict[str, list[Path]] = {}
    notes: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            continue
        name = path.name
        suffix = next((s for s in SUFFIXES if name.lower().endswith(s)), None)
        stem = name[: -len(suffix)].lower() if suffix else None
        if stem in SPECS:
            found.setdefault(stem, []).append(path)
        else:
            notes.append(f"ignored file {name} (not a known table)")
    for table, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise InvalidArgument(f"table {table} is present in two formats: {names}", field="DIR")
    return [SourceFile(t, ps[0]) for t, ps in found.items()], notes


def _header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh), [])


def _read_csv(path: Path) -> pd.DataFrame:
    """Every cell as an Arrow string (empty stays empty), with Arrow's multi-threaded reader."""
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    names = _header(path)
    table = pa_csv.read_csv(
        path,
        convert_options=pa_csv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table.to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


def read_file(src: SourceFile) -> pd.DataFrame:
    """The file's cells (CSV: all text; Parquet: as typed), index 0..n-1, columns as written."""
    import pyarrow as pa

    try:
        if src.path.name.lower().endswith(".parquet"):
            frame = pd.read_parquet(src.path)
        else:
            frame = _read_csv(src.path)
    except (ValueError, OSError, UnicodeDecodeError, pa.ArrowException) as exc:
        raise InvalidArgument(f"cannot read {src.path.name}: {exc}", field="DIR") from exc
    return frame.reset_index(drop=True)


def normalise_columns(
    table: str, frame: pd.DataFrame, label: str
) -> tuple[pd.DataFrame, list[str]]:
    """Lower-case/trim names, drop direct identifiers, note unknown columns once per file."""
    spec = SPECS[table]
    notes: list[str] = []
    names = [str(c).strip().lower() for c in frame.columns]
    frame = frame.copy()
    frame.columns = names
    frame = frame.loc[:, ~frame.columns.duplicated()]
    private = set(PRIVATE_COLUMNS) | (set(PRIVATE_ON_EVENTS) if spec.event else set())
    dropped = [c for c in frame.columns if c in private]
    if dropped:
        frame = frame.drop(columns=dropped)
        notes.append(f"{label}: dropped direct identifiers {', '.join(dropped)} (never stored)")
    known = set(spec.column_names)
    unknown = [
        c
        for c in frame.columns
        if c not in known and not (spec.extra_prefix and c.startswith(spec.extra_prefix))
    ]
    if unknown:
        notes.append(f"{label}: ignored unknown columns {', '.join(unknown)}")
        frame = frame.drop(columns=unknown)
    return frame.reset_index(drop=True), notes
