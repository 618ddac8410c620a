"""Finding and reading the files of a data set folder (CSV, CSV.gz, Parquet), in bounded memory.

A file is read as a stream of chunks of at most ``Limits.chunk_rows`` rows (:func:`read_chunks`),
so memory depends on the chunk size, never on the file's size. CSV cells are read as text (nothing
is guessed), so validation sees exactly what the file holds and can say which value was malformed.
A CSV row with more or fewer fields than the header is not a reason to stop: it is reported as a
rejected row (:class:`Chunk.bad_rows`) and the rest of the file is read. What stops an import with
a one-line :class:`InvalidArgument` (and loads nothing) is a file that cannot be read as a whole:
a header wider than ``Limits.max_columns``, a line longer than ``Limits.max_line_bytes``, text that
is not UTF-8, a broken gzip or Parquet file, a symbolic link out of the data set folder. Those
messages never quote the file's content.

Column names are trimmed and lower-cased; direct identifiers (see
:data:`~services.ingest.spec.PRIVATE_COLUMNS`) are dropped here, before anything else sees them.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument
from services.ingest.report import shown_value
from services.ingest.spec import DEFAULT_LIMITS, PRIVATE_COLUMNS, PRIVATE_ON_EVENTS, SPECS, Limits

SUFFIXES = (".csv", ".csv.gz", ".parquet")
#: Notes list at most this many names (files, columns); the rest is counted.
MAX_LISTED = 10


@dataclass(frozen=True)
class SourceFile:
    table: str
    path: Path

    @property
    def label(self) -> str:
        return shown_value(self.path.name, 100)


@dataclass
class Chunk:
    """Rows of one file: ``frame`` holds the cells (index: each row's 0-based position in the
    file, header excluded); ``bad_rows`` the (position, reason) of rows that could not be split
    into the header's columns (they are not in ``frame``)."""

    frame: pd.DataFrame
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    columns: tuple[str, ...] = ()  # the file's header as written


def _listed(names: list[str], width: int = 40) -> str:
    shown = ", ".join(shown_value(n, width) for n in names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def discover(folder: Path) -> tuple[list[SourceFile], list[str]]:
    """The table files in ``folder`` (in no particular order) and notes about other files.

    A table file must be a regular file; a symbolic link is followed only when its target is in
    ``folder`` too (a link out of the data set is refused, and its target is never opened).
    """
    if not folder.is_dir():
        raise InvalidArgument(f"not a folder: {shown_value(str(folder), 200)}", field="DIR")
    root = folder.resolve()
    found: dict[str, list[Path]] = {}
    ignored: list[str] = []
    for path in sorted(folder.iterdir()):
        name = path.name
        suffix = next((s for s in SUFFIXES if name.lower().endswith(s)), None)
        stem = name[: -len(suffix)].lower() if suffix else None
        if stem not in SPECS:
            if not path.is_dir():
                ignored.append(name)
            continue
        label = shown_value(name, 100)
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise InvalidArgument(
                f"{label} is a symbolic link to a file outside the data set folder; refused "
                "(copy the file into the folder)",
                field="DIR",
            )
        if path.is_dir():
            ignored.append(name)
            continue
        if not path.is_file():
            raise InvalidArgument(f"{label} is not a regular file", field="DIR")
        found.setdefault(stem, []).append(path)
    for table, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(shown_value(p.name, 100) for p in paths)
            raise InvalidArgument(f"table {table} is present in two formats: {names}", field="DIR")
    notes = [f"ignored files {_listed(ignored)} (not a known table)"] if ignored else []
    return [SourceFile(t, ps[0]) for t, ps in found.items()], notes


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _header(src: SourceFile, limits: Limits) -> list[str]:
    """The header's column names, read with bounded memory (one line of at most
    ``max_line_bytes``), at most ``max_columns`` of them."""
    label = src.label
    try:
        if _is_gzip(src.path):
            with gzip.open(src.path, "rb") as gz:
                line = gz.readline(limits.max_line_bytes + 1)
        else:
            with src.path.open("rb") as fh:
                line = fh.readline(limits.max_line_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidArgument(f"cannot read {label}: {_os_reason(exc)}", field="DIR") from exc
    if len(line) > limits.max_line_bytes:
        raise InvalidArgument(
            f"{label}: the header line is longer than {limits.max_line_bytes} bytes", field="DIR"
        )
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{label}: not UTF-8 text (header)", field="DIR") from exc
    if not text.strip():
        raise InvalidArgument(f"{label}: empty file (no header line)", field="DIR")
    try:
        names = next(csv.reader([text.rstrip("\r\n")]), [])
    except csv.Error as exc:  # e.g. a header cell over the csv module's field size limit
        raise InvalidArgument(f"{label}: malformed header line", field="DIR") from exc
    if len(names) > limits.max_columns:
        raise InvalidArgument(
            f"{label}: the header has {len(names)} columns (at most {limits.max_columns})",
            field="DIR",
        )
    return names


def _os_reason(exc: BaseException) -> str:
    """Why a file could not be opened, without quoting its content."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, EOFError | zlib.error) or "gzip" in str(exc).lower():
        return "not a valid gzip file"
    return type(exc).__name__


def _arrow_reason(exc: Exception, label: str, limits: Limits) -> str:
    """pyarrow's message quotes the offending row: say what is wrong in our own words."""
    text = str(exc)
    if "straddl" in text:
        return f"{label}: a line is longer than {limits.max_line_bytes} bytes (the limit)"
    if "UTF8" in text or "UTF-8" in text:
        row = re.search(r"Row #(\d+)", text)
        return f"{label}: not UTF-8 text" + (f" (row {int(row.group(1)) - 1})" if row else "")
    if "gzip" in text.lower() or "compress" in text.lower():
        return f"{label}: not a valid gzip file"
    return f"{label}: malformed CSV ({shown_value(text.split(':', 1)[0], 60)})"


class _Positions:
    """Gives each parsed row its position in the file around the rows the parser skipped.

    pyarrow reports a skipped row (wrong number of fields) through the handler while it parses
    the block the row is in, i.e. before the batch holding the rows around it is returned.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.pending: deque[tuple[int, str]] = deque()
        self.next = 0

    def handler(self, row: object) -> str:
        number = getattr(row, "number", None)
        actual = getattr(row, "actual_columns", 0)
        if number is not None:  # 1-based, the header is number 1
            why = f"has {actual} fields, the header has {self.expected}"
            self.pending.append((int(number) - 2, why))
        return "skip"

    def take(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Positions of the next ``n`` parsed rows, and the skipped rows among them."""
        skipped: list[tuple[int, str]] = []
        parts: list[np.ndarray] = []
        pos, need = self.next, n
        while need > 0:
            if self.pending and self.pending[0][0] <= pos:  # a skipped row takes this place
                skipped.append(self.pending.popleft())
                pos = max(pos, skipped[-1][0] + 1)
                continue
            upto = self.pending[0][0] if self.pending else pos + need
            run = min(need, upto - pos)
            parts.append(np.arange(pos, pos + run))
            pos += run
            need -= run
        self.next = pos
        return (np.concatenate(parts) if parts else np.arange(0)), skipped

    def rest(self) -> list[tuple[int, str]]:
        out = list(self.pending)
        self.pending.clear()
        return out


def _csv_chunks(src: SourceFile, limits: Limits) -> Iterator[Chunk]:
    import pyarrow as pa
    from pyarrow import csv as pa_csv

    names = _header(src, limits)
    label = src.label
    positions = _Positions(len(names))
    mapper = {pa.string(): pd.StringDtype("pyarrow")}.get
    try:
        reader = pa_csv.open_csv(
            src.path,
            read_options=pa_csv.ReadOptions(
                use_threads=False,  # row numbers for skipped rows need the serial parser
                block_size=limits.max_line_bytes,  # a longer line is an error: the line limit
                column_names=names,
                skip_rows=1,
            ),
            parse_options=pa_csv.ParseOptions(
                invalid_row_handler=positions.handler,
                newlines_in_values=True,  # a quoted value may hold a line break
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        pending: pa.Table | None = None  # parsed rows not yet handed out
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                batch = None
            if batch is not None:
                part = pa.Table.from_batches([batch])
                pending = part if pending is None else pa.concat_tables([pending, part])
            while pending is not None and (
                pending.num_rows >= limits.chunk_rows or (batch is None and pending.num_rows)
            ):
                table, rest = pending.slice(0, limits.chunk_rows), pending.slice(limits.chunk_rows)
                pending = rest if rest.num_rows else None
                frame = table.to_pandas(types_mapper=mapper)
                frame.columns = list(names)
                pos, bad = positions.take(len(frame))
                frame.index = pd.Index(pos)
                yield Chunk(frame, bad, tuple(names))
            if batch is None:
                break
    except (pa.ArrowException, ValueError) as exc:
        raise InvalidArgument(_arrow_reason(exc, label, limits), field="DIR") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidArgument(f"cannot read {label}: {_os_reason(exc)}", field="DIR") from exc
    rest = positions.rest()
    empty = pd.DataFrame({n: pd.Series(dtype="string[pyarrow]") for n in dict.fromkeys(names)})
    if rest or positions.next == 0:
        yield Chunk(empty, rest, tuple(names))


def _parquet_chunks(src: SourceFile, limits: Limits) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    label = src.label
    try:
        pf = pq.ParquetFile(src.path)
        names = list(pf.schema_arrow.names)
        if len(names) > limits.max_columns:
            raise InvalidArgument(
                f"{label}: {len(names)} columns (at most {limits.max_columns})", field="DIR"
            )
        start = 0
        for batch in pf.iter_batches(batch_size=limits.chunk_rows):
            frame = pa.Table.from_batches([batch]).to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield Chunk(frame, [], tuple(names))
        if start == 0:
            yield Chunk(pf.schema_arrow.empty_table().to_pandas(), [], tuple(names))
    except (pa.ArrowException, ValueError, OSError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(
            f"cannot read {label}: not a valid Parquet file ({type(exc).__name__})", field="DIR"
        ) from exc


def read_chunks(src: SourceFile, limits: Limits = DEFAULT_LIMITS) -> Iterator[Chunk]:
    """The file's rows, ``limits.chunk_rows`` at a time (CSV: every cell as text; Parquet: as
    typed), columns as written. An empty file yields one chunk without rows."""
    if src.path.name.lower().endswith(".parquet"):
        yield from _parquet_chunks(src, limits)
    else:
        yield from _csv_chunks(src, limits)


def frame_chunks(frame: pd.DataFrame, limits: Limits = DEFAULT_LIMITS) -> Iterator[Chunk]:
    """An in-memory table in chunks of ``limits.chunk_rows`` rows (index: row positions)."""
    frame = frame.reset_index(drop=True)
    names = tuple(str(c) for c in frame.columns)
    for start in range(0, max(len(frame), 1), limits.chunk_rows):
        yield Chunk(frame.iloc[start : start + limits.chunk_rows], [], names)


def delimiter_hint(columns: tuple[str, ...]) -> str | None:
    """Why a header has none of the required columns, when it looks like another delimiter."""
    if len(columns) != 1:
        return None
    for sep, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if sep in columns[0]:
            return f"the header is one column separated by {name}: columns must be separated by ','"
    return None


def read_file(src: SourceFile, limits: Limits = DEFAULT_LIMITS) -> pd.DataFrame:
    """The whole file in one frame (small files, tests); rows the parser skipped are left out."""
    return pd.concat([c.frame for c in read_chunks(src, limits)])


def normalise_columns(
    table: str, frame: pd.DataFrame, label: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[pd.DataFrame, list[str]]:
    """Lower-case/trim names, drop direct identifiers, note unknown columns once per file.

    The index is kept (row positions in the file)."""
    if frame.shape[1] > limits.max_columns:
        raise InvalidArgument(
            f"{label}: {frame.shape[1]} columns (at most {limits.max_columns})", field=table
        )
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
        notes.append(f"{label}: ignored unknown columns {_listed(unknown)}")
        frame = frame.drop(columns=unknown)
    return frame, notes
