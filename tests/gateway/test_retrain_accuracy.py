"""ModelService.GetAccuracy: demand and cost accuracy per family and week, and the same figures
as Prometheus gauges (the servicer called directly: no ports)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert
from tailorline.v1 import model_service_pb2 as model_pb

from services.common.errors import InvalidArgument
from services.gateway.servicers.models import ModelServicer
from services.store import schema
from services.store.db import make_engine, migrate

NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture()
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    migrate(url)
    engine = make_engine(url)
    with engine.begin() as c:
        c.execute(insert(schema.families), [{"family_id": "SHIRT", "name": "S", "base_price": 40}])
        c.execute(insert(schema.variants), [
            {"variant_id": v, "family_id": "SHIRT", "list_price": 40, "flagged": False}
            for v in ("V1", "V2")])  # fmt: skip
        c.execute(insert(schema.lines), [{"line_id": "L1", "capacity_hours": 80}])
        c.execute(insert(schema.model_versions), [
            {"name": "cost", "version": 1, "path": "x", "status": "served", "created_at": NOW,
             "data_end": dt.date(2024, 1, 7)},
            {"name": "demand", "version": 1, "path": "x", "status": "served", "created_at": NOW,
             "data_end": None},
        ])  # fmt: skip
        c.execute(insert(schema.cost_predictions), [
            {"model_version": 1, "variant_id": v, "line_id": "L1", "unit_cost": 10.0,
             "unit_cost_p10": 8.0, "unit_cost_p90": 12.0, "hours_per_unit": 0.5,
             "created_at": NOW} for v in ("V1", "V2")])  # fmt: skip
        # week of 2024-01-08: V1 10 units cost 110 (11/unit, inside the band), V2 5 units cost
        # 75 (15/unit, outside); 2024-01-15: a later record, the incomplete week
        c.execute(insert(schema.production), [
            {"record_id": "P1", "line_id": "L1", "variant_id": "V1", "date": dt.date(2024, 1, 9),
             "quantity": 10, "hours": 5, "cost": 110.0, "scrap": 0, "flagged": False},
            {"record_id": "P2", "line_id": "L1", "variant_id": "V2", "date": dt.date(2024, 1, 10),
             "quantity": 5, "hours": 2, "cost": 75.0, "scrap": 0, "flagged": False},
            {"record_id": "P3", "line_id": "L1", "variant_id": "V2", "date": dt.date(2024, 1, 16),
             "quantity": 5, "hours": 2, "cost": 50.0, "scrap": 0, "flagged": False},
        ])  # fmt: skip
        c.execute(insert(schema.forecasts_served), [
            {"variant_id": "V1", "week": dt.date(2024, 1, 8), "model_name": "demand",
             "model_version": 1, "p10": 2.0, "p50": 4.0, "p90": 6.0, "served_at": NOW},
        ])  # fmt: skip
        c.execute(insert(schema.orders), [
            {"order_id": f"O{i}", "customer_id": "C", "variant_id": "V1", "quantity": q,
             "unit_price": 40.0, "order_date": d, "due_date": d, "kind": "stock", "promo": 0,
             "flagged": False}
            for i, (q, d) in enumerate([(5, dt.date(2024, 1, 9)), (1, dt.date(2024, 1, 16))])
        ])  # fmt: skip
    yield engine
    engine.dispose()


def _call(servicer, **kw):
    return asyncio.run(servicer.GetAccuracy(model_pb.GetAccuracyRequest(**kw), None))


def test_cost_accuracy_per_family_and_week_and_its_gauges(store, tmp_path) -> None:
    registry = CollectorRegistry()
    servicer = ModelServicer(store, tmp_path / "models", registry=registry)
    out = _call(servicer, model="cost")
    assert out.model == "cost" and len(out.rows) == 1  # 2024-01-15 is not complete yet
    row = out.rows[0]
    assert (row.family_id, row.week) == ("SHIRT", "2024-01-08")
    assert row.actual == pytest.approx(185.0) and row.forecast == pytest.approx(150.0)
    assert row.wape == pytest.approx(35.0 / 185.0) and row.bias == pytest.approx(-35.0 / 185.0)
    assert row.coverage == pytest.approx(0.5) and row.model_versions == "1"
    value = registry.get_sample_value(
        "tailorline_model_wape_ratio", {"model": "cost", "family": "SHIRT"}
    )
    assert value == pytest.approx(35.0 / 185.0)


def test_a_filtered_call_answers_its_families_and_refreshes_every_familys_gauges(
    store, tmp_path
) -> None:
    registry = CollectorRegistry()
    servicer = ModelServicer(store, tmp_path / "models", registry=registry)

    def gauge(name: str) -> float | None:
        return registry.get_sample_value(name, {"model": "demand", "family": "SHIRT"})

    # a dashboard's only caller asks about JEANS: the answer is JEANS' (none), the gauges SHIRT's
    out = _call(servicer, families=["JEANS"])
    assert out.rows == [] and math.isnan(out.wape)
    assert gauge("tailorline_model_wape_ratio") == pytest.approx(0.2)  # |4 - 5| / 5
    assert gauge("tailorline_model_bias_ratio") == pytest.approx(-0.2)
    assert gauge("tailorline_model_interval_coverage_ratio") == pytest.approx(1.0)
    # a call filtered to SHIRT: its answer and every gauge move together
    with store.begin() as c:  # V1 sold 2 more in the week of 2024-01-08: WAPE 3/7
        c.execute(insert(schema.orders).values(
            order_id="O9", customer_id="C", variant_id="V1", quantity=2, unit_price=40.0,
            order_date=dt.date(2024, 1, 10), due_date=dt.date(2024, 1, 10), kind="stock",
            promo=0, flagged=False))  # fmt: skip
    out = _call(servicer, families=["shirt"])
    assert [(r.family_id, r.actual) for r in out.rows] == [("SHIRT", 7.0)]
    assert gauge("tailorline_model_wape_ratio") == pytest.approx(3.0 / 7.0)


def test_demand_accuracy_and_bad_requests(store, tmp_path) -> None:
    servicer = ModelServicer(store, tmp_path / "models")
    out = _call(servicer, families=["shirt"], weeks=4)
    assert [(r.week, r.actual, r.forecast) for r in out.rows] == [("2024-01-08", 5.0, 4.0)]
    assert out.wape == pytest.approx(0.2) and out.rows[0].coverage == 1.0
    assert _call(servicer, families=["JEANS"]).rows == []
    assert math.isnan(_call(servicer, families=["JEANS"]).wape)
    with pytest.raises(InvalidArgument) as err:
        _call(servicer, model="price")
    assert err.value.field == "model"
    with pytest.raises(InvalidArgument) as err:
        _call(servicer, weeks=1000)
    assert err.value.field == "weeks"


def test_an_unobserved_week_is_not_scored_as_zero_demand(store, tmp_path) -> None:
    with store.begin() as c:  # V1 forecast for 2024-01-08, but the shop was closed that week
        c.execute(insert(schema.orders).values(
            order_id="X", customer_id="C", variant_id="V1", quantity=1, unit_price=1.0,
            order_date=dt.date(2024, 1, 2), due_date=dt.date(2024, 1, 2), kind="stock", promo=0,
            flagged=False))  # fmt: skip
        c.execute(
            insert(schema.unobserved_weeks).values(
                week=dt.date(2024, 1, 8), family_id="SHIRT", variant_id="", reason="closed"
            )
        )
    servicer = ModelServicer(store, tmp_path / "models")
    assert _call(servicer).rows == []


def test_demand_bias_is_judged_by_the_forecast_mean_where_it_was_stored(store, tmp_path) -> None:
    """A skewed count's P50 sits below its mean: V2's distribution has P50 2 and mean 3, and 3
    units were ordered. WAPE stays on the P50 (|2 - 3|), the bias is the mean's (0, not -1/3);
    V1's row, recorded without a mean (before migration 0006), is judged by its P50 as before."""
    with store.begin() as c:
        c.execute(insert(schema.forecasts_served).values(
            variant_id="V2", week=dt.date(2024, 1, 8), model_name="demand", model_version=1,
            p10=0.0, p50=2.0, p90=7.0, mean=3.0, served_at=NOW))  # fmt: skip
        c.execute(insert(schema.orders).values(
            order_id="O7", customer_id="C", variant_id="V2", quantity=3, unit_price=40.0,
            order_date=dt.date(2024, 1, 11), due_date=dt.date(2024, 1, 11), kind="stock",
            promo=0, flagged=False))  # fmt: skip
    registry = CollectorRegistry()
    servicer = ModelServicer(store, tmp_path / "models", registry=registry)
    out = _call(servicer, families=["SHIRT"])
    row = out.rows[0]
    assert (row.actual, row.forecast) == (8.0, 6.0)  # V1 5 + V2 3 ordered; P50s 4 + 2
    assert row.wape == pytest.approx(2.0 / 8.0)  # |4 - 5| + |2 - 3|
    assert row.mean == 7.0  # V1's P50 4 (no mean stored), V2's mean 3
    assert row.bias == pytest.approx((7.0 - 8.0) / 8.0)
    assert out.bias == pytest.approx(-1.0 / 8.0)
    gauge = registry.get_sample_value(
        "tailorline_model_bias_ratio", {"model": "demand", "family": "SHIRT"}
    )
    assert gauge == pytest.approx(-1.0 / 8.0)
