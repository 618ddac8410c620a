"""Forecast errors per family and week against numbers computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from services.monitoring import forecast_errors, select_forecasts, variant_errors
from services.store import load_frames, schema

W1 = date(2026, 1, 12)
W2 = date(2026, 1, 19)


def _order(oid: str, variant: str, qty: int, day: date) -> dict[str, object]:
    return {"order_id": oid, "customer_id": "c" * 32, "variant_id": variant, "quantity": qty,
            "unit_price": 10.0, "order_date": day, "due_date": day + timedelta(days=7),
            "kind": "stock", "promo": 0, "flagged": False}  # fmt: skip


def _forecast(variant: str, wk: date, p10: float, p50: float, p90: float, served: datetime,
              model: str = "demand", version: int = 1) -> dict[str, object]:  # fmt: skip
    return {"variant_id": variant, "week": wk, "model_name": model, "model_version": version,
            "p10": p10, "p50": p50, "p90": p90, "served_at": served}  # fmt: skip


def _friday_before(wk: date) -> datetime:
    return datetime.combine(wk - timedelta(days=3), datetime.min.time(), UTC)


@pytest.fixture
def small(engine: Engine) -> Engine:
    """Week W1: A1 P50 10 / actual 12 (7 on Monday + 5 on Sunday), A2 P50 4 / actual 0,
    B1 P50 20 / actual 25. One B1 order in W2 makes W1 complete. Noise that must not count:
    a forecast of a configuration never stored, one of another model, older and later forecasts
    of A1 (the one a plan for W1 used is the latest served before W1 started)."""
    with engine.begin() as conn:
        for f in ("A", "B"):
            conn.execute(insert(schema.families).values(family_id=f, name=f, base_price=10.0))
        for v in ("A1", "A2", "B1"):
            conn.execute(
                insert(schema.variants).values(
                    variant_id=v, family_id=v[0], list_price=10.0, flagged=False
                )
            )
        conn.execute(
            insert(schema.orders),
            [
                _order("O1", "A1", 7, W1),
                _order("O2", "A1", 5, W1 + timedelta(days=6)),
                _order("O3", "B1", 25, W1 + timedelta(days=2)),
                _order("O4", "B1", 4, W2 + timedelta(days=1)),
                _order("O0", "A1", 3, W1 - timedelta(days=1)),  # the Sunday before W1
            ],
        )
        before = _friday_before(W1)
        conn.execute(
            insert(schema.forecasts_served),
            [
                _forecast("A1", W1, 1.0, 99.0, 150.0, before - timedelta(days=14), version=1),
                _forecast("A1", W1, 5.0, 10.0, 15.0, before, version=2),
                _forecast("A1", W1, 40.0, 50.0, 60.0, before + timedelta(days=4), version=2),
                _forecast("A2", W1, 2.0, 4.0, 6.0, before, version=2),
                _forecast("B1", W1, 15.0, 20.0, 30.0, before, version=2),
                _forecast("B1", W2, 1.0, 3.0, 5.0, _friday_before(W2), version=2),
                _forecast("NEW-1", W1, 1.0, 2.0, 3.0, before, version=2),
                _forecast("A1", W1, 0.0, 1000.0, 2000.0, before, model="cost"),
            ],
        )
    return engine


def test_family_errors_match_the_hand_computed_numbers(small: Engine) -> None:
    errors = forecast_errors(small)
    assert list(errors["family_id"]) == ["A", "B"]  # W2 is still being filled: not complete
    a = errors.iloc[0]
    assert a["week"] == pd.Timestamp(W1)
    assert a["actual"] == 12.0 and a["forecast"] == 14.0
    assert a["abs_error"] == pytest.approx(6.0)  # |12 - 10| + |0 - 4|
    assert a["wape"] == pytest.approx(0.5)
    assert a["bias"] == pytest.approx(2.0 / 12.0)
    assert a["coverage"] == pytest.approx(0.5)  # 12 in [5, 15]; 0 not in [2, 6]
    assert a["n_variants"] == 2 and a["model_versions"] == "2"
    b = errors.iloc[1]
    assert (b["actual"], b["forecast"], b["p10"], b["p90"]) == (25.0, 20.0, 15.0, 30.0)
    assert b["wape"] == pytest.approx(0.2)
    assert b["bias"] == pytest.approx(-0.2)
    assert b["coverage"] == 1.0


def test_as_of_completes_a_week_and_since_until_bound_it(small: Engine) -> None:
    errors = forecast_errors(small, as_of=W2 + timedelta(days=7))
    assert list(zip(errors["family_id"], errors["week"].dt.date, strict=True)) == [
        ("A", W1), ("B", W1), ("B", W2),
    ]  # fmt: skip
    b2 = errors.iloc[2]
    assert (b2["actual"], b2["forecast"], b2["wape"]) == (4.0, 3.0, pytest.approx(0.25))
    assert list(forecast_errors(small, as_of=W2 + timedelta(days=3), since=W2)["week"]) == []
    only = forecast_errors(small, as_of=date(2026, 2, 2), since=W2, until=W2)
    assert list(only["family_id"]) == ["B"]


def test_the_forecast_a_plan_used_is_the_latest_served_before_the_week(small: Engine) -> None:
    rows = variant_errors(small)
    a1 = rows[rows["variant_id"] == "A1"].iloc[0]
    assert (a1["p50"], a1["model_version"]) == (10.0, 2)  # not 99 (older), not 50 (after start)
    assert set(rows["variant_id"]) == {"A1", "A2", "B1"}  # NEW-1 has no family


def test_replayed_weeks_take_the_most_recently_served_forecast() -> None:
    """A simulator replays 2025 weeks in 2026: no forecast was served before its week started."""
    week = pd.Timestamp("2025-03-03")
    served = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "variant_id": ["V", "V", "V", "W"],
            "week": [week] * 4,
            "model_version": [1, 1, 2, 1],
            "p10": [0.0] * 4,
            "p50": [5.0, 7.0, 6.0, 1.0],
            "p90": [9.0] * 4,
            "served_at": pd.to_datetime(
                [
                    "2026-11-27 10:00:01",
                    "2026-11-27 10:00:03",
                    "2026-11-27 10:00:02",
                    "2026-11-27 10:00:00",
                ],
                utc=True,
            ),
        }
    )
    picked = select_forecasts(served)
    assert dict(zip(picked["variant_id"], picked["p50"], strict=True)) == {"V": 7.0, "W": 1.0}


def test_actuals_are_the_weekly_demand_the_features_train_on(small: Engine) -> None:
    from services.features import build_panel

    panel = build_panel(load_frames(small))
    rows = variant_errors(small)
    for v, wk, actual in zip(rows["variant_id"], rows["week"], rows["actual"], strict=True):
        r = int(panel.variants.set_index("variant_id").loc[v, "row"])
        assert panel.demand[r, panel.week_index(wk)] == actual


def test_an_empty_store_has_no_errors(engine: Engine) -> None:
    assert forecast_errors(engine).empty
    assert variant_errors(engine, as_of=W2).empty
