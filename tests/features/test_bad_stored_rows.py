"""One bad row in the store does not stop the demand features for everyone else (issue 13).

Ingest refuses such rows; these are written straight into the store (a hand-made ``INSERT``),
the way the two orders dated 1800 and 2199 once got in and made every forecast fail. The panel
and the serving frame must still build, be exactly what they are without the bad row, and say
what they left out (``DemandPanel.skipped`` and a WARNING on ``tailorline.features``).
"""

from __future__ import annotations

import logging
import math
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from services.common.settings import CoreSettings
from services.features import build_panel, build_serving_frame, clean_frames
from services.features import tables as feature_tables
from services.ingest import ingest_frames
from services.planning.service import Planner
from services.store import load_frames, make_engine, migrate, schema

from .conftest import make_frames

ORDER = {
    "customer_id": "0" * 32, "variant_id": "V1", "quantity": 2, "unit_price": 59.0,
    "order_date": date(2026, 3, 2), "due_date": date(2026, 3, 16), "kind": "stock",
    "promo": 0, "flagged": False,
}  # fmt: skip
#: name -> (table, row written bypassing validation, what clean_frames reports)
BAD_ROWS: dict[str, list[tuple[str, dict[str, Any], str]]] = {
    "order dated 1800": [
        ("orders", {**ORDER, "order_id": "BAD-1800", "order_date": date(1800, 1, 6),
                    "due_date": date(1800, 1, 20)}, "order_date outside the calendar"),
    ],
    "order dated 2199": [
        ("orders", {**ORDER, "order_id": "BAD-2199", "order_date": date(2199, 1, 5),
                    "due_date": date(2199, 1, 19)}, "order_date outside the calendar"),
    ],
    "both (the reported incident)": [
        ("orders", {**ORDER, "order_id": "BAD-1800", "order_date": date(1800, 1, 6),
                    "due_date": date(1800, 1, 20)}, "order_date outside the calendar"),
        ("orders", {**ORDER, "order_id": "BAD-2199", "order_date": date(2199, 1, 5),
                    "due_date": date(2199, 1, 19)}, "order_date outside the calendar"),
    ],
    "due date in 2199": [
        ("orders", {**ORDER, "order_id": "BAD-DUE", "due_date": date(2199, 1, 5)},
         "due_date outside the calendar"),
    ],
    "quantity 2**62": [
        ("orders", {**ORDER, "order_id": "BAD-QTY", "quantity": 2**62},
         "quantity not in 1..MAX_UNITS"),
    ],
    "review in 2199": [
        ("reviews", {"review_id": "BAD-R", "variant_id": "V1", "date": date(2199, 1, 5),
                     "rating": 4}, "date outside the calendar"),
    ],
    "market week in 2199": [
        ("market", {"week": date(2199, 1, 5), "family_id": "SHR", "price_index": 1.0,
                    "trend_index": 1.0}, "week outside the calendar"),
    ],
    "market index inf": [
        ("market", {"week": date(2026, 3, 2) , "family_id": "TRS", "price_index": math.inf,
                    "trend_index": 1.0}, "price_index not in (0, MAX_INDEX]"),
    ],
    "variant launched in 2199": [
        ("variants", {"variant_id": "BAD-V", "family_id": "SHR", "list_price": 60.0,
                      "launch_date": date(2199, 1, 5), "flagged": False},
         "launch_date outside the calendar"),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conftest's frames loaded through ingest: the store as a sound import leaves it."""
    db = tmp_path_factory.mktemp("features-store") / "good.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        migrate(engine)
        frames = make_frames()
        frames["market"] = frames["market"][frames["market"]["week"] < "2026-03-02"]
        report = ingest_frames(frames, engine, CoreSettings())
        assert report.rejected_rows == 0, report.issues[:3]
    finally:
        engine.dispose()
    return db


@pytest.fixture
def fresh_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the warning (it is logged once per distinct summary in a process)."""
    monkeypatch.setattr(feature_tables, "_reported", set())


def _copy(db: Path, to: Path) -> Engine:
    to.write_bytes(db.read_bytes())
    return make_engine(f"sqlite:///{to}")


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_one_bad_stored_row_is_skipped_and_reported(
    case: str, good_store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, fresh_reports
) -> None:
    engine = _copy(good_store, tmp_path / "store.db")
    try:
        sound = load_frames(engine)
        with engine.begin() as conn:
            for table, row, _ in BAD_ROWS[case]:
                conn.execute(insert(schema.metadata.tables[table]).values(**row))
        stored = load_frames(engine)
    finally:
        engine.dispose()
    expected: dict[str, dict[str, int]] = {}
    for table, _, why in BAD_ROWS[case]:
        expected.setdefault(table, {})[why] = expected.get(table, {}).get(why, 0) + 1

    with caplog.at_level(logging.WARNING, logger="tailorline.features"):
        panel = build_panel(stored)
    assert panel.skipped == expected
    warned = [r for r in caplog.records if r.name == "tailorline.features"]
    total = sum(n for reasons in expected.values() for n in reasons.values())
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert f"skipped {total} stored rows" in warned[0].getMessage()

    # everyone else gets exactly the features they get without the bad row
    baseline = build_panel(sound)
    assert (panel.first_week, panel.n_weeks) == (baseline.first_week, baseline.n_weeks)
    origin = baseline.last_week
    variants = ["V1", "V2", "V4", {"family_id": "SHR", "attr_fabric": "linen", "attr_size": "s"}]
    got = build_serving_frame(stored, origin, variants, 8)
    want = build_serving_frame(sound, origin, variants, 8)
    pd.testing.assert_frame_equal(got, want)


def test_a_second_identical_summary_is_not_warned_again(
    good_store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, fresh_reports
) -> None:
    """Every forecast request builds features: the operator hears once per process."""
    engine = _copy(good_store, tmp_path / "store.db")
    try:
        with engine.begin() as conn:
            table, row, _ = BAD_ROWS["order dated 2199"][0]
            conn.execute(insert(schema.metadata.tables[table]).values(**row))
        stored = load_frames(engine)
    finally:
        engine.dispose()
    with caplog.at_level(logging.DEBUG, logger="tailorline.features"):
        build_panel(stored)
        build_panel(stored)
    levels = [r.levelno for r in caplog.records if r.name == "tailorline.features"]
    assert levels == [logging.WARNING, logging.DEBUG]


def test_unreadable_values_in_hand_made_frames_are_skipped_too(fresh_reports) -> None:
    frames = make_frames()
    orders = frames["orders"].astype({"order_date": object, "quantity": object})
    orders.loc[0, "order_date"] = "not a date"
    orders.loc[1, "quantity"] = float("nan")
    orders.loc[2, "quantity"] = -4
    frames["orders"] = orders
    cleaned, skipped = clean_frames(frames)
    assert skipped == {
        "orders": {"order_date outside the calendar": 1, "quantity not in 1..MAX_UNITS": 2}
    }
    assert len(cleaned["orders"]) == len(orders) - 3
    build_panel(frames)  # and the panel builds


def test_sound_frames_are_not_copied_or_reported(frames, caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="tailorline.features"):
        cleaned, skipped = clean_frames(frames)
    assert skipped == {} and not caplog.records
    assert all(cleaned[k] is frames[k] for k in frames)


def test_the_calendar_and_caps_are_ingests() -> None:
    """The feature code keeps its own copy (it depends on pandas only): the same numbers."""
    from services.ingest import spec

    assert feature_tables.DATE_MIN.date() == spec.DEFAULT_LIMITS.date_min
    assert feature_tables.DATE_MAX.date() == spec.DEFAULT_LIMITS.date_max
    assert feature_tables.MAX_UNITS == spec.MAX_UNITS
    assert feature_tables.MAX_PRICE == spec.MAX_PRICE
    assert feature_tables.MAX_INDEX == spec.MAX_INDEX


def test_the_planner_reads_the_store_without_its_bad_rows(
    good_store: Path, tmp_path: Path, fresh_reports
) -> None:
    """The planner's frames skip what the features skip: an order dated 2199 (or one pandas
    cannot even hold, 2300) neither fails planning nor moves the default plan's first week."""

    def unused(*_args: Any) -> Any:
        raise AssertionError("no downstream call here")

    engine = _copy(good_store, tmp_path / "store.db")
    try:
        sound = Planner(engine, predict=unused, inputs=unused, solve=unused)
        first = Planner.last_order_week(sound.frames())
        with engine.begin() as conn:
            for year in (2199, 2300):
                row = {**ORDER, "order_id": f"BAD-{year}", "order_date": date(year, 1, 5)}
                row["due_date"] = date(year, 1, 19)
                conn.execute(insert(schema.orders).values(**row))
        planner = Planner(engine, predict=unused, inputs=unused, solve=unused)
        frames = planner.frames()
    finally:
        engine.dispose()
    assert Planner.last_order_week(frames) == first
    assert not frames["orders"]["order_id"].str.startswith("BAD-").any()
