"""The public API end to end, through the real gateway, predictor and optimizer processes."""

from __future__ import annotations

from typing import Any

import grpc
import pandas as pd
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tailorline.optimizer.v1 import plan_pb2
from tailorline.v1 import feedback_service_pb2 as fb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from tailorline.v1 import model_service_pb2 as mp
from tailorline.v1 import model_service_pb2_grpc as mp_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from tests.gateway.helpers import AUTH, MAX_MESSAGE_BYTES, code_of

pytestmark = pytest.mark.integration
SOLVED = (plan_pb2.PLAN_STATUS_OPTIMAL, plan_pb2.PLAN_STATUS_FEASIBLE)
FAST = {"time_limit_s": 5.0, "mip_rel_gap": 0.05}


def _planning(channel: grpc.Channel) -> Any:
    return pb_grpc.PlanningServiceStub(channel)


def _mondays(periods: Any) -> bool:
    return all(pd.Timestamp(p).weekday() == 0 for p in periods)


def test_create_plan_for_known_variants_is_stored_and_uses_the_served_models(
    channel: grpc.Channel, frames: dict[str, Any], gateway_home: Any
) -> None:
    ids = sorted(frames["variants"]["variant_id"])[:4]
    stub = _planning(channel)
    response = stub.CreatePlan(
        pb.CreatePlanRequest(horizon=4, service_level=0.8, variant_ids=ids, name="known", **FAST),
        metadata=AUTH,
        timeout=120,
    )
    result = response.result
    plan = result.plan
    assert plan.status in SOLVED
    assert len(result.periods) == 4 and _mondays(result.periods)
    # the plan covers exactly the requested variants, every week
    assert {v.variant for v in plan.variants} == set(ids)
    assert len(plan.variants) == 4 * len(ids)
    for lp in plan.line_periods:  # never more than regular capacity + the line's overtime limit
        assert lp.hours_used <= lp.capacity_hours + lp.overtime_hours + 1e-6
    assert plan.objective == pytest.approx(
        plan.costs.revenue
        + plan.costs.end_stock_value  # expected-profit mode: the stock left, at cost
        - plan.costs.production
        - plan.costs.setup
        - plan.costs.holding
        - plan.costs.backlog
        - plan.costs.lost_sales
        - plan.costs.overtime
        - plan.costs.material
        - plan.costs.change_penalty,
        rel=1e-6,
        abs=1e-3,
    )
    served = mp_grpc.ModelServiceStub(channel).ListModels(
        mp.ListModelsRequest(), metadata=AUTH, timeout=30
    )
    versions = {m.name: m.version for m in served.models if m.served}
    assert versions == {"demand": result.model_versions.demand, "cost": result.model_versions.cost}

    again = stub.GetPlan(pb.GetPlanRequest(plan_id=result.plan_id), metadata=AUTH, timeout=30)
    assert again.result.plan_id == result.plan_id
    assert again.result.plan.objective == pytest.approx(plan.objective)
    assert list(again.result.periods) == list(result.periods)
    assert len(again.result.plan.lines) == len(plan.lines)

    # the forecast the plan used is recorded, to be compared with actuals later
    from sqlalchemy import select

    from services.common.settings import CoreSettings
    from services.store import make_engine, schema

    engine = make_engine(CoreSettings(home=gateway_home).resolved_db_url)
    try:
        with engine.connect() as conn:
            t = schema.forecasts_served
            served = conn.execute(
                select(t.c.variant_id, t.c.week, t.c.model_version, t.c.mean).where(
                    t.c.variant_id.in_(ids)
                )
            ).all()
    finally:
        engine.dispose()
    weeks = {pd.Timestamp(p).date() for p in result.periods}
    recorded = {(r.variant_id, r.week) for r in served if r.model_version == versions["demand"]}
    assert {(v, w) for v in ids for w in weeks} <= recorded
    # with the distribution's mean, which the accuracy figures judge its bias by (its value:
    # tests/features/test_forecast_table.py)
    assert all(r.mean is not None and r.mean >= 0 for r in served)


def test_create_plan_for_a_never_seen_configuration(
    channel: grpc.Channel, frames: dict[str, Any]
) -> None:
    variants = frames["variants"]
    family = str(variants["family_id"].iloc[0])
    attrs = {
        c[5:]: str(variants.loc[variants["family_id"] == family, c].iloc[0])
        for c in variants.columns
        if c.startswith("attr_")
    }
    config = pb.NewVariant(
        variant_id="BRAND-NEW-1", family_id=family, list_price=75.0, attributes=attrs
    )
    stub = _planning(channel)
    fc = stub.ForecastDemand(
        pb.ForecastDemandRequest(variants=[pb.VariantRef(configuration=config)], horizon=3),
        metadata=AUTH,
        timeout=60,
    )
    [forecast] = fc.forecasts
    assert forecast.variant_id == "BRAND-NEW-1" and len(forecast.weeks) == 3
    for w in forecast.weeks:
        assert 0 <= w.p10 <= w.p50 <= w.p90
    costs = stub.EstimateCost(
        pb.EstimateCostRequest(variants=[pb.VariantRef(configuration=config)]),
        metadata=AUTH,
        timeout=60,
    )
    eligible = frames["line_eligibility"]
    lines = set(eligible.loc[eligible["family_id"] == family, "line_id"])
    assert {e.line_id for e in costs.estimates} == lines
    assert all(e.unit_cost > 0 and e.hours_per_unit > 0 for e in costs.estimates)

    ids = sorted(variants["variant_id"])[:2]
    response = stub.CreatePlan(
        pb.CreatePlanRequest(horizon=3, variant_ids=ids, new_variants=[config], **FAST),
        metadata=AUTH,
        timeout=120,
    )
    plan = response.result.plan
    assert plan.status in SOLVED
    assert {v.variant for v in plan.variants} == {*ids, "BRAND-NEW-1"}
    new_demand = [v.demand for v in plan.variants if v.variant == "BRAND-NEW-1"]
    assert len(new_demand) == 3 and all(d >= 0 for d in new_demand)


def test_replan_batch_streams_one_result_per_scenario(
    channel: grpc.Channel, frames: dict[str, Any]
) -> None:
    ids = sorted(frames["variants"]["variant_id"])[:3]
    line = str(frames["lines"]["line_id"].iloc[0])
    request = pb.ReplanBatchRequest(
        base=pb.CreatePlanRequest(horizon=3, variant_ids=ids, **FAST),
        scenarios=[
            pb.Scenario(id="low", service_level=0.5),
            pb.Scenario(id="high", service_level=0.95),
            pb.Scenario(id="half", service_level=0.5, demand_factor=0.5),
            pb.Scenario(id="line-down", capacity_factors={line: 0.0}),
        ],
    )
    results = {
        r.scenario_id: r
        for r in _planning(channel).ReplanBatch(request, metadata=AUTH, timeout=180)
    }
    assert set(results) == {"low", "high", "half", "line-down"}
    plans = {k: r.result for k, r in results.items() if r.WhichOneof("outcome") == "result"}
    assert set(plans) == set(results), {k: r.error for k, r in results.items()}
    assert plans["low"].service_level == 0.5 and plans["high"].service_level == 0.95
    assert len({p.plan_id for p in plans.values()}) == 4
    # planning at a higher quantile never plans for less demand
    demand = {k: sum(v.demand for v in p.plan.variants) for k, p in plans.items()}
    assert demand["high"] >= demand["low"]
    assert demand["half"] == pytest.approx(0.5 * demand["low"], rel=1e-6)
    # a line without capacity produces nothing
    assert not [
        ln for ln in plans["line-down"].plan.lines if ln.line == line and ln.quantity > 1e-6
    ]


def test_replan_batch_rejects_an_unknown_line_before_solving(
    channel: grpc.Channel, frames: dict[str, Any]
) -> None:
    ids = sorted(frames["variants"]["variant_id"])[:2]
    request = pb.ReplanBatchRequest(
        base=pb.CreatePlanRequest(horizon=2, variant_ids=ids, **FAST),
        scenarios=[pb.Scenario(id="x", capacity_factors={"NO-SUCH-LINE": 2.0})],
    )
    with pytest.raises(grpc.RpcError) as err:
        list(_planning(channel).ReplanBatch(request, metadata=AUTH, timeout=60))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "NO-SUCH-LINE" in err.value.details()


def _order(order_id: str, variant: str, quantity: int = 2) -> fb.RecordEventsRequest:
    return fb.RecordEventsRequest(
        order=fb.Order(
            order_id=order_id,
            customer_id="CUST-9",
            variant_id=variant,
            quantity=quantity,
            unit_price=60.0,
            order_date="2026-11-20",
            due_date="2026-12-04",
            kind="stock",
        )
    )


def test_record_events_good_bad_and_duplicated(
    channel: grpc.Channel, frames: dict[str, Any], gateway_home: Any
) -> None:
    from sqlalchemy import func, select

    from services.common.settings import CoreSettings
    from services.store import make_engine, schema

    variant = str(frames["variants"]["variant_id"].iloc[0])
    family = str(frames["variants"]["family_id"].iloc[0])
    events = [
        _order("GW-T-1", variant),  # good
        _order("GW-T-1", variant),  # repeated in the stream
        _order("GW-T-2", "NO-SUCH-VARIANT"),  # bad: unknown variant
        _order("GW-T-3", variant, quantity=-4),  # bad: quantity
        fb.RecordEventsRequest(
            review=fb.Review(
                review_id="GW-R-1", variant_id=variant, customer_id="C", date="2026-11-21", rating=4
            )
        ),  # good
        fb.RecordEventsRequest(
            market_signal=fb.MarketSignal(
                week="2026-11-23", family_id=family, price_index=1.02, trend_index=0.98
            )
        ),  # good
        fb.RecordEventsRequest(),  # bad: no event
    ]
    stub = fb_grpc.FeedbackServiceStub(channel)
    first = stub.RecordEvents(iter(events), metadata=AUTH, timeout=60)
    assert (first.received, first.stored, first.duplicates, first.rejected) == (7, 3, 1, 3)
    assert [(e.index, e.event_id, e.field) for e in first.errors] == [
        (2, "GW-T-2", "variant_id"),
        (3, "GW-T-3", "quantity"),
        (6, "", "event"),
    ]
    second = stub.RecordEvents(iter(events), metadata=AUTH, timeout=60)
    assert (second.stored, second.duplicates, second.rejected) == (0, 4, 3)

    engine = make_engine(CoreSettings(home=gateway_home).resolved_db_url)
    try:
        with engine.connect() as conn:
            t = schema.orders
            n = conn.execute(
                select(func.count()).where(t.c.order_id.in_(["GW-T-1", "GW-T-2", "GW-T-3"]))
            ).scalar()
    finally:
        engine.dispose()
    assert n == 1


def test_no_or_wrong_token_is_unauthenticated_but_health_is_open(channel: grpc.Channel) -> None:
    stub = _planning(channel)
    request = pb.GetPlanRequest(plan_id="whatever")
    assert code_of(lambda: stub.GetPlan(request, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
    wrong = (("authorization", "Bearer nope"),)
    assert (
        code_of(lambda: stub.GetPlan(request, metadata=wrong, timeout=10))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    events = fb_grpc.FeedbackServiceStub(channel)
    assert (
        code_of(lambda: events.RecordEvents(iter([_order("X", "Y")]), timeout=10))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    assert (
        code_of(lambda: stub.GetPlan(request, metadata=AUTH, timeout=10))
        == grpc.StatusCode.NOT_FOUND
    )
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(
        health_pb2.HealthCheckRequest(service="tailorline.v1.PlanningService"), timeout=10
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_user_errors_name_the_field(channel: grpc.Channel) -> None:
    stub = _planning(channel)
    with pytest.raises(grpc.RpcError) as err:  # over the gateway's message limit
        stub.GetPlan(
            pb.GetPlanRequest(plan_id="p" * (MAX_MESSAGE_BYTES + 1000)), metadata=AUTH, timeout=30
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"at most {MAX_MESSAGE_BYTES}" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.CreatePlan(
            pb.CreatePlanRequest(horizon=4, service_level=1.5), metadata=AUTH, timeout=30
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    meta = dict(err.value.trailing_metadata())
    assert meta["tailorline-field"] == "service_level" and meta["x-request-id"]
    with pytest.raises(grpc.RpcError) as err:
        stub.ForecastDemand(
            pb.ForecastDemandRequest(variants=[pb.VariantRef(variant_id="NOPE")], horizon=2),
            metadata=AUTH,
            timeout=30,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown variant 'NOPE'" in err.value.details()
    assert (
        code_of(
            lambda: mp_grpc.ModelServiceStub(channel).Retrain(
                mp.RetrainRequest(models=["price"]), metadata=AUTH, timeout=10
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT  # demand and cost are the retrainable models
    )
