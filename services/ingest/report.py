"""What an import did: counts per table, the rejected rows, notes (frozen dataclasses).

Everything here that came from the input is bounded and made safe to show: a rejected value is cut
to a few hundred characters with its control characters escaped (:func:`shown_value`), and the
``--report`` CSV escapes cells a spreadsheet would run as a formula (:func:`csv_safe`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COUNT_FIELDS = ("read", "loaded", "updated", "already_present", "rejected", "flagged")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: First characters that make a spreadsheet treat a cell as a formula (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def shown_value(value: object, limit: int = 200) -> str:
    """``value`` as text to show in a message: at most ``limit`` characters of it (then its
    length), control characters as ``\\xNN``, anything UTF-8 cannot encode backslash-escaped."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = f"{text[:limit]}...({len(text)} characters)"
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def csv_safe(cell: object) -> str:
    """A cell for a CSV that people open in a spreadsheet: text starting with ``= + - @``, tab or
    carriage return gets a leading ``'`` so it is shown as text, never run as a formula (OWASP
    CSV injection guidance; the csv writer quotes the rest)."""
    text = str(cell)
    return "'" + text if text.startswith(FORMULA_START) else text


@dataclass(frozen=True)
class TableCounts:
    table: str
    file: str
    read: int
    loaded: int  # new rows inserted
    updated: int  # master data rows whose values changed
    already_present: int  # event ids / identical master rows the store had
    rejected: int
    flagged: int  # loaded (or updated) and marked suspicious


@dataclass(frozen=True)
class RowIssue:
    file: str
    row: int  # 1-based; the header is row 0
    column: str
    reason: str
    value: str


@dataclass(frozen=True)
class IngestReport:
    run_id: str
    source: str
    tables: tuple[TableCounts, ...]
    issues: tuple[RowIssue, ...]
    notes: tuple[str, ...]
    seconds: float
    issues_left_out: int = 0  # problems counted but not kept (beyond Limits.max_issues)

    @property
    def rejected_rows(self) -> int:
        return sum(t.rejected for t in self.tables)

    @property
    def loaded_rows(self) -> int:
        return sum(t.loaded for t in self.tables)

    def counts(self) -> dict[str, dict[str, int]]:
        return {t.table: {f: getattr(t, f) for f in COUNT_FIELDS} for t in self.tables}

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "seconds": round(self.seconds, 3),
            "tables": [asdict(t) for t in self.tables],
            "totals": {f: sum(getattr(t, f) for t in self.tables) for f in COUNT_FIELDS},
            "issues": [asdict(i) for i in self.issues],
            "issues_left_out": self.issues_left_out,
            "notes": list(self.notes),
        }

    def write_issues_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "row", "column", "reason", "value"])
            for i in self.issues:
                writer.writerow([csv_safe(c) for c in (i.file, i.row, i.column, i.reason, i.value)])

    def render(self, max_issues: int = 20) -> str:
        """The summary table, then the first ``max_issues`` bad rows and the notes."""
        head = ("table", "file", *COUNT_FIELDS)
        rows = [(t.table, t.file, *(str(getattr(t, f)) for f in COUNT_FIELDS)) for t in self.tables]
        totals = (
            "total",
            "",
            *(str(sum(getattr(t, f) for t in self.tables)) for f in COUNT_FIELDS),
        )
        widths = [max(len(r[i]) for r in [head, *rows, totals]) for i in range(len(head))]

        def fmt(r: tuple[str, ...]) -> str:
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])]
            cells += [c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)]
            return "  ".join(cells).rstrip()

        out = [fmt(head), "  ".join("-" * w for w in widths)]
        out += [fmt(r) for r in rows]
        out += ["  ".join("-" * w for w in widths), fmt(totals)]
        out.append(f"{self.loaded_rows} rows loaded in {self.seconds:.1f} s (run {self.run_id})")
        if self.issues:
            out.append("")
            total = len(self.issues) + self.issues_left_out
            out.append(f"{total} problems in {self.rejected_rows} rejected rows:")
            for i in self.issues[:max_issues]:
                value = f" (value {i.value!r})" if i.value not in ("", "nan", "None") else ""
                where = f"{i.file} row {i.row}" + (f", {i.column}" if i.column else "")
                out.append(f"  {where}: {i.reason}{value}")
            if len(self.issues) > max_issues:
                out.append(f"  ... and {len(self.issues) - max_issues} more (--report FILE)")
            if self.issues_left_out:
                out.append(
                    f"  ({self.issues_left_out} further problems were counted but not kept: "
                    "fix these and import again)"
                )
        if self.notes:
            out.append("")
            out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)
