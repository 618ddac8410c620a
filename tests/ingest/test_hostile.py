"""Hostile input (issue 13): nothing a file or a feedback batch holds makes ingest crash, leak or
store part of something it rejected.

Every case imports MINI's master data plus hostile orders into a fresh SQLite store and checks
what a user would notice: no exception but a one-line ``InvalidArgument`` for a file that cannot be
read as a whole; every problem message bounded (a value shows at most ``max_value_chars``
characters of the input); the dropped identifiers (names, e-mails) never in any message; no
``--report`` cell a spreadsheet would run as a formula; the store holds every good row exactly
once (a re-import adds nothing) and nothing of a rejected row or file; and forecasting still
builds its features from whatever was accepted.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from services.common.errors import InvalidArgument
from services.common.settings import CoreSettings
from services.features import build_panel, build_serving_frame
from services.ingest import IngestReport, ingest_dir, ingest_frames
from services.ingest.report import FORMULA_START
from services.ingest.spec import DEFAULT_LIMITS, Limits
from services.store import load_frames, make_engine, schema

from .conftest import MINI, write_mini

HOSTILE = settings(
    deadline=None,
    derandomize=True,  # the same cases on every run: CI never flakes on a new one
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
COLUMNS = [
    "order_id", "customer_id", "variant_id", "quantity", "unit_price", "order_date", "due_date",
    "kind", "promo",
]  # fmt: skip
REQUIRED = [c for c in COLUMNS if c != "promo"]
PII = ["customer_name", "customer_email", "email", "phone", "address", "name"]
MINI_ORDERS = {"O1", "O2", "O3", "O4"}
#: The longest a shown value may be: max_value_chars of input plus "...(N characters)".
VALUE_BOUND = DEFAULT_LIMITS.max_value_chars + 40
MESSAGE_BOUND = 1024


# --------------------------------------------------------------------------- stores


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding MINI's master data (no orders), copied for every case."""
    root = tmp_path_factory.mktemp("hostile-template")
    folder = write_mini(root / "mini")
    (folder / "orders.csv").unlink()
    db = root / "template.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        report = ingest_dir(folder, engine, CoreSettings())
        assert report.rejected_rows == 0
    finally:
        engine.dispose()
    return db


@contextmanager
def fresh_store(template: Path) -> Iterator[tuple[Path, Engine]]:
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp)
        shutil.copy(template, root / "store.db")
        engine = make_engine(f"sqlite:///{root / 'store.db'}")
        try:
            yield root, engine
        finally:
            engine.dispose()


def stored_orders(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(schema.orders.c.order_id)).scalars())


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (*schema.DATA_TABLES, schema.ingest_runs)
        }


def write_orders(folder: Path, rows: list[dict[str, str]], *, delimiter: str = ",") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(c for r in rows for c in r)) or COLUMNS
    with (folder / "orders.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, delimiter=delimiter, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def good_row(i: int) -> dict[str, str]:
    return {
        "order_id": f"G{i}", "customer_id": f"c-{i}", "variant_id": "V1", "quantity": "2",
        "unit_price": "40", "order_date": "2024-03-04", "due_date": "2024-03-18",
        "kind": "stock", "promo": "0",
    }  # fmt: skip


# --------------------------------------------------------------------------- what every case checks


def check_messages(report: IngestReport, secrets: tuple[str, ...] = ()) -> None:
    """Bounded problems, no dropped identifier anywhere, --report cells safe for spreadsheets."""
    for issue in report.issues:
        assert len(issue.value) <= VALUE_BOUND, issue.value[:80]
        assert len(issue.reason) <= 300 and len(issue.column) <= 200
    texts = [report.render(max_issues=10_000), json.dumps(report.to_dict())]
    for line in texts[0].splitlines():
        assert len(line) <= MESSAGE_BOUND + 200, line[:80]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.csv"
        report.write_issues_csv(path)
        text = path.read_text(encoding="utf-8")
        texts.append(text)
        rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == len(report.issues) + 1
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(FORMULA_START), cell[:80]
    for secret in secrets:
        assert all(secret not in t for t in texts), secret


def check_forecasting(engine: Engine) -> None:
    """The demand features build from the store and answer for a variant."""
    frames = load_frames(engine)
    panel = build_panel(frames)
    origin = panel.last_week
    served = build_serving_frame(panel, origin, ["V1", "V2"], 4)
    assert len(served) == 8 and served["lag_1"].notna().all()


def check_error(exc: InvalidArgument, secrets: tuple[str, ...] = ()) -> None:
    message = str(exc)
    assert "\n" not in message and len(message) <= MESSAGE_BOUND, message[:200]
    for secret in secrets:
        assert secret not in message


# --------------------------------------------------------------------------- hostile values

OUT_OF_WINDOW = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).filter(
    lambda d: not DEFAULT_LIMITS.date_min <= d <= DEFAULT_LIMITS.date_max
)
_BAD_DATE_TEXTS = [
    "1800-01-06", "2199-01-05", "1989-12-31", "2101-01-01", "9999-12-31", "0001-01-01",
    "2024-13-45", "24-03-04", "2024-03-04T12:00", "31/12/2024", "2024-02-30", "NaT", "nan",
]  # fmt: skip
BAD_DATES = st.one_of(st.sampled_from(_BAD_DATE_TEXTS), OUT_OF_WINDOW.map(date.isoformat))
_HUGE_TEXTS = [
    str(2**62), str(2**63), str(2**64), "1e308", "-1e308", "1.7976931348623157e308", "1000001",
    "1e7", "-1",
]  # fmt: skip
HUGE = st.one_of(
    st.sampled_from(_HUGE_TEXTS),
    st.integers(min_value=1_000_001, max_value=2**80).map(str),
    st.floats(min_value=1e6 + 1, allow_nan=False, allow_infinity=False).map(repr),
)
NONFINITE = st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "1e999"])
ID_COLUMNS = ("order_id", "customer_id", "variant_id")
CONTROL = st.sampled_from([chr(c) for c in range(32)] + ["\x7f"])
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=0, max_size=8)
_FORMULA_TEXTS = [
    '=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A9)",
    "=cmd|' /C calc'!A0", "\t=1", "\r=1", "=1+1",
]  # fmt: skip
FORMULAS = st.sampled_from(_FORMULA_TEXTS)


@st.composite
def hostile_row(draw: st.DrawFn, i: int) -> tuple[str, dict[str, str], str]:
    """(class, a row that must be rejected, a secret that must never be shown)."""
    row = good_row(i)
    row["order_id"] = f"H{i}"
    kind = draw(
        st.sampled_from(
            ["date", "magnitude", "nonfinite", "oversized", "control", "formula", "pii"]
        )
    )
    event(f"csv row: {kind}")
    secret = f"SECRET-{i}-{draw(st.integers(0, 10**6))}@example.com"
    if kind == "date":
        row[draw(st.sampled_from(["order_date", "due_date"]))] = draw(BAD_DATES)
    elif kind == "magnitude":
        row[draw(st.sampled_from(["quantity", "unit_price"]))] = draw(HUGE)
    elif kind == "nonfinite":
        row[draw(st.sampled_from(["quantity", "unit_price"]))] = draw(NONFINITE)
    elif kind == "oversized":
        col = draw(st.sampled_from(ID_COLUMNS))
        row[col] = f"H{i}-" + "X" * draw(st.integers(64, 200_000))
    elif kind == "control":
        col = draw(st.sampled_from([*ID_COLUMNS, "kind"]))
        # inside the value: a tab or newline at either end is trimmed like any white space
        row[col] = "A" + draw(TEXT) + draw(CONTROL) + draw(TEXT) + f"H{i}"
    elif kind == "formula":
        col = draw(st.sampled_from(["kind", "quantity", "unit_price", "order_date", "variant_id"]))
        row[col] = draw(FORMULAS)
    if kind == "pii" or draw(st.booleans()):
        for col in draw(st.lists(st.sampled_from(PII), min_size=1, max_size=3, unique=True)):
            row[col] = secret
        if kind == "pii":  # and a reason to reject it, so that its messages are made
            row["quantity"] = draw(st.sampled_from(["-3", "0", "many", "2.5"]))
    return kind, row, secret


@st.composite
def order_files(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[bool], tuple[str, ...]]:
    """Rows of an orders file: good ones and hostile ones mixed, and the secrets in them."""
    shape = draw(st.lists(st.booleans(), min_size=1, max_size=8))
    rows, good, secrets = [], [], []
    for i, is_good in enumerate(shape):
        if is_good:
            rows.append(good_row(i))
        else:
            _, row, secret = draw(hostile_row(i))
            rows.append(row)
            secrets.append(secret)
        good.append(is_good)
    return rows, good, tuple(secrets)


@settings(HOSTILE, max_examples=80)
@given(case=order_files())
def test_hostile_rows_in_a_csv_file(template: Path, case) -> None:
    rows, good, secrets = case
    with fresh_store(template) as (root, engine):
        folder = write_orders(root / "data", rows)
        report = ingest_dir(folder, engine, CoreSettings())
        counts = report.counts()["orders"]
        assert counts["read"] == len(rows)
        assert counts["loaded"] == sum(good) and counts["rejected"] == len(rows) - sum(good)
        rejected = {i.row for i in report.issues}
        assert rejected == {n + 1 for n, ok in enumerate(good) if not ok}
        expected = sorted(r["order_id"] for r, ok in zip(rows, good, strict=True) if ok)
        assert stored_orders(engine) == expected
        check_messages(report, secrets)
        again = ingest_dir(folder, engine, CoreSettings())  # every good row exactly once
        assert again.counts()["orders"]["loaded"] == 0
        assert again.counts()["orders"]["already_present"] == sum(good)
        assert stored_orders(engine) == expected
        if expected:
            check_forecasting(engine)


# --------------------------------------------------------------------------- feedback batches

PY_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "order_date": st.one_of(
        OUT_OF_WINDOW,
        st.just(pd.Timestamp("2199-01-05")),
        st.just(pd.Timestamp("1800-01-06")),
        st.just(float("nan")),
        st.just(None),
        BAD_DATES,
    ),
    "quantity": st.one_of(
        st.integers(min_value=1_000_001, max_value=2**70),
        st.integers(max_value=0),
        st.sampled_from([math.nan, math.inf, -math.inf, 1e308, 2.5, None, "2 units"]),
    ),
    "unit_price": st.one_of(
        st.floats(min_value=1e6 + 1, allow_nan=False),
        st.floats(max_value=-1e-9),
        st.sampled_from([math.nan, math.inf, -math.inf, None]),
    ),
    "order_id": st.one_of(
        st.text(min_size=65, max_size=400).filter(lambda t: len(t.strip()) > 64),
        st.builds(lambda a, c, b: f"{a}{c}{b}", TEXT, CONTROL, TEXT),
        st.builds(lambda a: f"H\ud800{a}", TEXT),  # a lone surrogate: not UTF-8 at all
        st.just("X" * 10_000_000),  # the issue's 10 MB order id
    ),
    "kind": FORMULAS,
}


@st.composite
def feedback_batches(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[bool]]:
    shape = draw(st.lists(st.booleans(), min_size=1, max_size=6))
    rows, good = [], []
    for i, is_good in enumerate(shape):
        row: dict[str, Any] = {
            "order_id": f"F{i}", "customer_id": f"c{i}", "variant_id": "V2", "quantity": 1,
            "unit_price": 45.0, "order_date": date(2024, 3, 5), "due_date": date(2024, 3, 19),
            "kind": "custom", "promo": 0,
        }  # fmt: skip
        if not is_good:
            col = draw(st.sampled_from(sorted(PY_VALUES)))
            row[col] = draw(PY_VALUES[col])
            event(f"feedback event: bad {col}")
            if col == "order_date":
                row["due_date"] = None  # only the order date is judged (due >= order)
        rows.append(row)
        good.append(is_good)
    return rows, good


@settings(HOSTILE, max_examples=50)
@given(case=feedback_batches())
def test_hostile_feedback_events(template: Path, case) -> None:
    """The gateway's RecordEvents path: typed Python values, one transaction per batch."""
    rows, good = case
    with fresh_store(template) as (_, engine):
        report = ingest_frames({"orders": pd.DataFrame(rows)}, engine, CoreSettings())
        counts = report.counts()["orders"]
        assert counts["loaded"] == sum(good) and counts["rejected"] == len(rows) - sum(good)
        assert {i.row for i in report.issues} == {n + 1 for n, ok in enumerate(good) if not ok}
        expected = sorted(r["order_id"] for r, ok in zip(rows, good, strict=True) if ok)
        assert stored_orders(engine) == expected
        check_messages(report)
        again = ingest_frames({"orders": pd.DataFrame(rows)}, engine, CoreSettings())
        assert again.counts()["orders"]["loaded"] == 0
        assert stored_orders(engine) == expected
        if expected:
            check_forecasting(engine)


# --------------------------------------------------------------------------- whole files


def _mini_with_orders(root: Path, text: str | bytes) -> Path:
    folder = write_mini(root / "data")
    path = folder / "orders.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_wrong_delimiter_rejects_every_row_of_that_file(template: Path, delimiter: str) -> None:
    rows = [good_row(i) for i in range(5)]
    rows[2]["unit_price"] = "40,5"  # a decimal comma: the row splits into two fields
    with fresh_store(template) as (root, engine):
        folder = write_orders(root / "data", rows, delimiter=delimiter)
        report = ingest_dir(folder, engine, CoreSettings())
        counts = report.counts()["orders"]
        assert counts["read"] == 5 and counts["rejected"] == 5 and counts["loaded"] == 0
        assert stored_orders(engine) == []
        reasons = {i.reason for i in report.issues}
        assert any("columns must be separated by ','" in r for r in reasons), reasons
        check_messages(report)


@settings(HOSTILE, max_examples=15)
@given(drop=st.lists(st.sampled_from(REQUIRED), min_size=1, max_size=4, unique=True))
def test_a_missing_required_column_rejects_every_row(template: Path, drop: list[str]) -> None:
    rows = [{k: v for k, v in good_row(i).items() if k not in drop} for i in range(4)]
    with fresh_store(template) as (root, engine):
        report = ingest_dir(write_orders(root / "data", rows), engine, CoreSettings())
        counts = report.counts()["orders"]
        assert counts["rejected"] == 4 and counts["loaded"] == 0
        assert {i.reason for i in report.issues} == {"missing column"}
        assert any("required columns missing" in n for n in report.notes)
        assert stored_orders(engine) == []


def _whole_file_cases(root: Path) -> Iterator[tuple[str, Path, Limits, tuple[str, ...]]]:
    """(name, data set folder, limits, secrets) of files that cannot be read as a whole."""
    secret = "SECRET-ROOT-PASSWORD-hunter2"
    outside = root / "outside.csv"
    outside.write_text(f"order_id\n{secret}\n")
    header = ",".join(COLUMNS)
    line = ",".join(good_row(1).values())

    folder = _mini_with_orders(root / "link", "")
    (folder / "orders.csv").unlink()
    os.symlink(outside, folder / "orders.csv")
    yield "symlink out of the folder", folder, DEFAULT_LIMITS, (secret,)
    folder = _mini_with_orders(root / "link-up", "")
    (folder / "orders.csv").unlink()
    os.symlink(Path("..") / ".." / "outside.csv", folder / "orders.csv")
    yield "relative symlink out of the folder", folder, DEFAULT_LIMITS, (secret,)
    folder = _mini_with_orders(root / "wide", ",".join(f"c{i}" for i in range(1001)) + "\n1\n")
    yield "1001 columns", folder, DEFAULT_LIMITS, ()
    folder = _mini_with_orders(root / "wide-small", header + ",x" * 60 + "\n")
    yield "60 columns over a limit of 50", folder, Limits(max_columns=50), ()
    long = f"{header},customer_email\n{line},{secret}{'y' * 9000}\n"
    folder = _mini_with_orders(root / "long", long)
    yield "a line over the limit", folder, Limits(max_line_bytes=4096), (secret,)
    folder = _mini_with_orders(root / "long-header", "x" * 5000 + "\n")
    yield "a header over the limit", folder, Limits(max_line_bytes=4096), ()
    latin1 = f"{header},name\n{line},{secret}\n{line[:-1]}1,Müller\n".encode("latin-1")
    yield "latin-1", _mini_with_orders(root / "latin1", latin1), DEFAULT_LIMITS, (secret,)
    yield "empty file", _mini_with_orders(root / "empty", ""), DEFAULT_LIMITS, ()
    yield "only a BOM", _mini_with_orders(root / "bom", "\ufeff\n"), DEFAULT_LIMITS, ()
    folder = _mini_with_orders(root / "gz", "")
    (folder / "orders.csv").unlink()
    (folder / "orders.csv.gz").write_bytes(b"\x1f\x8b\x08\x00" + secret.encode() * 20)
    yield "broken gzip", folder, DEFAULT_LIMITS, (secret,)
    folder = _mini_with_orders(root / "pq", "")
    (folder / "orders.csv").unlink()
    (folder / "orders.parquet").write_bytes(b"PAR1" + secret.encode() * 20)
    yield "broken parquet", folder, DEFAULT_LIMITS, (secret,)
    folder = _mini_with_orders(root / "fifo", "")
    (folder / "orders.csv").unlink()
    os.mkfifo(folder / "orders.csv")
    yield "a FIFO (would block forever)", folder, DEFAULT_LIMITS, ()


def test_files_that_cannot_be_read_stop_the_import_with_one_line(template: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        seen = 0
        for name, folder, limits, secrets in _whole_file_cases(Path(tmp)):
            with fresh_store(template) as (_, engine):
                before = table_counts(engine)
                with pytest.raises(InvalidArgument) as err:
                    ingest_dir(folder, engine, CoreSettings(), limits=limits)
                check_error(err.value, secrets)
                assert table_counts(engine) == before, name  # nothing of the import was kept
                seen += 1
        assert seen == 12


def test_a_symlink_inside_the_folder_is_read(template: Path) -> None:
    with fresh_store(template) as (root, engine):
        folder = write_orders(root / "data", [good_row(1)])
        (folder / "real").mkdir()
        (folder / "orders.csv").rename(folder / "real" / "orders-2024.csv")
        os.symlink(Path("real") / "orders-2024.csv", folder / "orders.csv")
        report = ingest_dir(folder, engine, CoreSettings())
        assert report.counts()["orders"]["loaded"] == 1


def test_rows_with_the_wrong_number_of_fields_are_rejected_without_echo(template: Path) -> None:
    """pyarrow's own message quotes the row (names, e-mails): ours says only what is wrong."""
    secret = "ann.secret@example.com"
    header = ",".join([*COLUMNS, "customer_name", "email"])
    good = [",".join([*good_row(i).values(), "Ann-Sentinel", "a@x.example"]) for i in range(3)]
    text = "\n".join([header, good[0], f"{good[1]},{secret},extra", "short,row," + secret, good[2]])
    with fresh_store(template) as (root, engine):
        report = ingest_dir(_mini_with_orders(root, text + "\n"), engine, CoreSettings())
        counts = report.counts()["orders"]
        assert (counts["read"], counts["loaded"], counts["rejected"]) == (4, 2, 2)
        assert {(i.row, i.reason) for i in report.issues} == {
            (2, "has 13 fields, the header has 11"),
            (3, "has 3 fields, the header has 11"),
        }
        assert stored_orders(engine) == ["G0", "G2"]
        check_messages(report, (secret, "Ann-Sentinel", "a@x.example"))


def test_big_files_stream_in_chunks_with_the_same_outcome(template: Path) -> None:
    """Chunks of 3 rows: row numbers, duplicates and bad rows across chunk boundaries."""
    # file rows: 1 G0, 2 G1, 3 broken, 4 G2 | 5 G3, 6 G1 again, 7 G5 (1800) | 8 G6, 9 G7,
    # 10 G7 again | 11 G8, 12 G10   (| = where the chunks of 3 parsed rows end)
    rows = [good_row(i) for i in (0, 1, 2, 3)]
    rows += [{**good_row(1), "quantity": "5"}, {**good_row(5), "order_date": "1800-01-06"}]
    rows += [good_row(i) for i in (6, 7, 7, 8, 10)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    body = text.getvalue().splitlines()
    body.insert(3, "broken,row")  # row 3 has the wrong number of fields
    with fresh_store(template) as (root, engine):
        folder = _mini_with_orders(root, "\n".join(body) + "\n")
        report = ingest_dir(folder, engine, CoreSettings(), limits=Limits(chunk_rows=3))
        counts = report.counts()["orders"]
        assert counts["read"] == 12
        issues = {(i.row, i.column, i.reason) for i in report.issues}
        assert issues == {
            (3, "", "has 2 fields, the header has 9"),
            (7, "order_date", "outside 1990-01-01..2100-12-31"),
            (10, "order_id", "duplicate order_id (first at row 9)"),
        }
        # the duplicate in a later chunk finds the first one stored: counted, not stored twice
        assert counts["loaded"] == 8 and counts["already_present"] == 1
        assert counts["rejected"] == 3
        stored = load_frames(engine, ["orders"])["orders"].set_index("order_id")
        assert stored.loc["G1", "quantity"] == 2  # the first occurrence won
        assert sorted(stored.index) == sorted(f"G{i}" for i in (0, 1, 2, 3, 6, 7, 8, 10))
        again = ingest_dir(folder, engine, CoreSettings(), limits=Limits(chunk_rows=3))
        assert again.counts()["orders"]["loaded"] == 0


def test_issues_beyond_the_limit_are_counted_not_kept(template: Path) -> None:
    rows = [{**good_row(i), "quantity": "-1"} for i in range(30)]
    with fresh_store(template) as (root, engine):
        folder = write_orders(root / "data", rows)
        report = ingest_dir(folder, engine, CoreSettings(), limits=Limits(max_issues=10))
        assert report.rejected_rows == 30
        assert len(report.issues) == 10 and report.issues_left_out == 20
        assert "20 further problems" in report.render()


def test_report_cells_that_look_like_formulas_are_escaped(tmp_path: Path) -> None:
    from services.ingest.report import RowIssue

    report = IngestReport(
        run_id="r", source="s", tables=(), notes=(), seconds=0.0,
        issues=tuple(
            RowIssue("orders.csv", 1, "kind", "must be one of", v)
            for v in ("=HYPERLINK(1)", "+1", "-1", "@A1", "\t=1", "\r=1", "ok")
        ),
    )  # fmt: skip
    report.write_issues_csv(tmp_path / "r.csv")
    with (tmp_path / "r.csv").open(newline="") as fh:
        values = [r["value"] for r in csv.DictReader(fh)]
    assert values == ["'=HYPERLINK(1)", "'+1", "'-1", "'@A1", "'\t=1", "'\r=1", "ok"]


def test_gzip_input_streams_like_plain_csv(template: Path) -> None:
    rows = [good_row(i) for i in range(7)]
    with fresh_store(template) as (root, engine):
        folder = write_orders(root / "data", rows)
        raw = (folder / "orders.csv").read_bytes()
        (folder / "orders.csv").unlink()
        with gzip.open(folder / "orders.csv.gz", "wb") as gz:
            gz.write(raw)
        report = ingest_dir(folder, engine, CoreSettings(), limits=Limits(chunk_rows=2))
        assert report.counts()["orders"]["loaded"] == 7


# --------------------------------------------------------------------------- the real command


@pytest.mark.parametrize(
    "case", ["symlink", "wide", "semicolon-strict", "missing-folder", "formula-report"]
)
def test_the_command_prints_one_line_never_a_traceback(case: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    folder = write_mini(tmp_path / "data")
    secret = "SECRET-SHADOW-LINE"
    args = [str(folder), "--quiet"]
    want_rc = 2
    if case == "symlink":
        (tmp_path / "shadow").write_text(f"order_id\n{secret}\n")
        (folder / "orders.csv").unlink()
        os.symlink(tmp_path / "shadow", folder / "orders.csv")
    elif case == "wide":
        (folder / "orders.csv").write_text(",".join(f"c{i}" for i in range(100_000)) + "\n")
    elif case == "semicolon-strict":
        (folder / "orders.csv").write_text(MINI["orders.csv"].replace(",", ";"))
        args.append("--strict")
        want_rc = 1
    elif case == "missing-folder":
        args[0] = str(tmp_path / "nope")
    else:
        text = MINI["orders.csv"] + 'O9,c9,n,e,V1,1,40,2024-03-01,2024-03-15,"=HYPERLINK(1)",0\n'
        (folder / "orders.csv").write_text(text)
        args += ["--report", str(tmp_path / "bad.csv")]
        want_rc = 0
    cmd = [sys.executable, "-m", "services.cli", "--db", f"sqlite:///{tmp_path / 's.db'}"]
    done = subprocess.run(
        [*cmd, "ingest", *args], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == want_rc, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and secret not in done.stderr + done.stdout
    if want_rc:
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 1024
    if case == "formula-report":
        assert "'=HYPERLINK(1)" in (tmp_path / "bad.csv").read_text()


def test_every_control_character_is_rejected_in_ids_and_codes(template: Path) -> None:
    """All 33 of them, inside an id or a code, through a file and through a feedback batch."""
    rows = []
    for ch in [chr(c) for c in range(32)] + ["\x7f"]:
        for col in ("order_id", "customer_id", "variant_id", "kind"):
            row = good_row(len(rows))
            row[col] = f"{row[col]}{ch}X"
            rows.append(row)
    rows.append(good_row(999))
    for via in ("file", "frames"):
        with fresh_store(template) as (root, engine):
            if via == "file":
                report = ingest_dir(write_orders(root / "data", rows), engine, CoreSettings())
            else:
                report = ingest_frames({"orders": pd.DataFrame(rows)}, engine, CoreSettings())
            counts = report.counts()["orders"]
            assert (counts["loaded"], counts["rejected"]) == (1, len(rows) - 1), via
            assert {i.reason for i in report.issues} == {
                "contains a control character (NUL, tab, newline, ...) or invalid Unicode"
            }
            assert stored_orders(engine) == ["G999"]
            check_messages(report)
