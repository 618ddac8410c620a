"""The weekly price and promotion calendar (``variant_weeks``): validated, stored, read back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from services.common.settings import CoreSettings
from services.ingest import ingest_dir
from services.ingest.spec import Limits
from services.store import make_engine, migrate
from services.store.frames import load_frames

CALENDAR = """variant_id,week,price,promo
v1 ,2024-03-06,36,1
V1,2024-03-11,,0
V2,2024-03-11,45,yes
NOPE,2024-03-11,10,1
V3,11/03/2024,70,1
V3,2024-03-18,-5,0
V3,2024-03-25,70,2
V1,2024-03-08,30,0
"""


@pytest.fixture()
def both(store_url: str) -> Iterator[Any]:
    """A migrated store on SQLite and on PostgreSQL."""
    migrate(store_url)
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def _rows(engine) -> list[tuple[str, str, float | None, int]]:
    frame = load_frames(engine, ["variant_weeks"])["variant_weeks"]
    return [
        (v, str(w.date()), None if pd.isna(p) else float(p), int(f))
        for v, w, p, f in frame.itertuples(index=False)
    ]


def test_the_calendar_is_validated_and_stored_by_variant_and_monday(
    mini_dir: Path, both: Any
) -> None:
    engine = both
    (mini_dir / "variant_weeks.csv").write_text(CALENDAR)
    report = ingest_dir(mini_dir, engine, CoreSettings())
    table = {t.table: t for t in report.tables}["variant_weeks"]
    assert (table.read, table.loaded, table.rejected) == (8, 3, 5)
    problems = {
        (i.row, i.column, i.reason, i.value) for i in report.issues if i.file.startswith("variant")
    }
    assert problems == {
        (4, "variant_id", "unknown variant_id (not in variants)", "NOPE"),
        (5, "week", "malformed date (want YYYY-MM-DD)", "11/03/2024"),
        (6, "price", "must be > 0", "-5"),
        (7, "promo", "must be 0 or 1", "2"),
        # 2024-03-08 is a Friday: its Monday is row 1's week, the first occurrence counts
        (8, "variant_id", "duplicate variant_id/week (first at row 1)", "V1"),
    }
    assert any("week dates moved to their Monday" in n for n in report.notes)
    assert _rows(engine) == [
        ("V1", "2024-03-04", 36.0, 1),  # trimmed, upper-cased, moved to its Monday
        ("V1", "2024-03-11", None, 0),  # no price: the list price (stored as NULL)
        ("V2", "2024-03-11", 45.0, 1),
    ]
    # idempotent, and a revised calendar updates the weeks it names (the later import wins)
    again = ingest_dir(mini_dir, engine, CoreSettings())
    counts = {t.table: t for t in again.tables}["variant_weeks"]
    assert (counts.loaded, counts.updated, counts.already_present) == (0, 0, 3)
    (mini_dir / "variant_weeks.csv").write_text(
        "variant_id,week,price,promo\nV1,2024-03-04,40,0\nV2,2024-03-18,39.5,1\n"
    )
    revised = {t.table: t for t in ingest_dir(mini_dir, engine, CoreSettings()).tables}
    assert (revised["variant_weeks"].loaded, revised["variant_weeks"].updated) == (1, 1)
    assert _rows(engine) == [
        ("V1", "2024-03-04", 40.0, 0),
        ("V1", "2024-03-11", None, 0),
        ("V2", "2024-03-11", 45.0, 1),
        ("V2", "2024-03-18", 39.5, 1),
    ]


def test_a_calendar_without_price_or_promo_columns_means_list_price_no_promotion(
    mini_dir: Path, engine
) -> None:
    (mini_dir / "variant_weeks.csv").write_text("variant_id,week\nV3,2024-03-18\n")
    report = ingest_dir(mini_dir, engine, CoreSettings())
    assert report.rejected_rows == 0
    assert _rows(engine) == [("V3", "2024-03-18", None, 0)]


def test_a_calendar_is_not_bounded_like_master_data(mini_dir: Path, engine) -> None:
    """It grows with variants x weeks and nothing refers to it: more rows than the master-data
    bound load (a variants file as long is refused)."""
    weeks = pd.date_range("2023-01-02", periods=12, freq="7D")
    rows = [f"{v},{w.date()},,0" for v in ("V1", "V2", "V3") for w in weeks]
    (mini_dir / "variant_weeks.csv").write_text("variant_id,week,price,promo\n" + "\n".join(rows))
    limits = Limits(max_master_rows=10, chunk_rows=7)
    report = ingest_dir(mini_dir, engine, CoreSettings(), limits=limits)
    assert {t.table: t.loaded for t in report.tables}["variant_weeks"] == 36
    assert len(_rows(engine)) == 36


@pytest.mark.parametrize("promo", ["1", "true", "YES"])
def test_promo_flags_in_words_are_ones(mini_dir: Path, engine, promo: str) -> None:
    (mini_dir / "variant_weeks.csv").write_text(f"variant_id,week,promo\nV2,2024-03-25,{promo}\n")
    ingest_dir(mini_dir, engine, CoreSettings())
    assert _rows(engine) == [("V2", "2024-03-25", None, 1)]
