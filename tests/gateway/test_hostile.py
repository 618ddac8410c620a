"""Hostile input at the gateway, class by class (issue 13, classes 1-2 on the RPC side).

Every case is a caller's mistake sent to the running stack (tests/gateway/conftest.py): a date
with a timezone, a price of 1e308, NaN or inf in any number, counts above the limits, a string of
megabytes or with NUL/control characters in any id, week or name. Each must end
INVALID_ARGUMENT (NOT_FOUND where the thing asked for does not exist) naming the field, with short
details and trailing metadata (never the value echoed whole), never INTERNAL, UNKNOWN or
RESOURCE_EXHAUSTED; a hostile feedback event is rejected on its own (an ``EventError`` naming the
field) while good events in the same stream are stored exactly once. Afterwards ForecastDemand and
CreatePlan still answer, and no gateway log line carries a caller's megabytes.

The strings of "megabytes" are 1.5 MB here: the test stack's message limit is 2 MB
(``MAX_MESSAGE_BYTES``), which plays the part of the default 64 MB limit a 10 MB string sits under.
Every planning case fails a check before anything is forecast or solved.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pytest
from sqlalchemy import func, select
from tailorline.v1 import feedback_service_pb2 as fb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from tailorline.v1 import model_service_pb2 as mp
from tailorline.v1 import model_service_pb2_grpc as mp_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from services.common.settings import CoreSettings
from services.local.stack import LocalStack
from services.store import make_engine, schema
from tests.gateway.helpers import AUTH, MAX_MESSAGE_BYTES, MAX_VARIANTS

pytestmark = pytest.mark.integration

NEVER = (
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)
#: Longest details and trailing metadata (all values together) a hostile call may get back.
MAX_DETAILS = 600
MAX_TRAILERS = 1024
#: The longest run of a sent value an answer may repeat (80 characters and a cut mark).
MAX_ECHO = 100
#: The longest gateway log line after the suite.
MAX_LOG_LINE = 2048

BIG = "x" * 1_500_000
STRINGS = {
    "megabytes": BIG,
    "5000 chars": "y" * 5000,
    "NUL": "V\x00001",
    "escape": "V\x1b[2J",
    "newline": "V1\nV2",
}
NUMBERS = {
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "1e308": 1e308,
    "-1e308": -1e308,
    "-1": -1.0,
}
T = 60


@dataclass(frozen=True)
class World:
    """What the cases take from the stack's store."""

    variant: str
    family: str
    attribute: str
    line: str
    last_order: pd.Timestamp
    list_price: float


@dataclass(frozen=True)
class Stubs:
    planning: pb_grpc.PlanningServiceStub
    models: mp_grpc.ModelServiceStub
    feedback: fb_grpc.FeedbackServiceStub


@dataclass(frozen=True)
class Case:
    """One hostile call: ``call(stubs, world)`` returns what the call answered (or raises);
    ``field`` is the field the error must name (a prefix); ``codes`` the codes allowed."""

    name: str
    call: Callable[[Stubs, World], Any]
    field: str
    codes: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.INVALID_ARGUMENT,)


# --------------------------------------------------------------------------- the cases


def _forecast(**fields: Any) -> Callable[[Stubs, World], Any]:
    def call(s: Stubs, w: World) -> Any:
        request = pb.ForecastDemandRequest(horizon=2, **fields)
        if not request.variants:
            request.variants.add(variant_id=w.variant)
        return s.planning.ForecastDemand(request, metadata=AUTH, timeout=T)

    return call


def _config(w: World, **fields: Any) -> pb.NewVariant:
    base: dict[str, Any] = {
        "variant_id": "NEW-HOSTILE",
        "family_id": w.family,
        "list_price": w.list_price,
    }
    return pb.NewVariant(**{**base, **fields})


def _plan(build: Callable[[World], pb.CreatePlanRequest]) -> Callable[[Stubs, World], Any]:
    def call(s: Stubs, w: World) -> Any:
        request = build(w)
        request.time_limit_s = request.time_limit_s if request.HasField("time_limit_s") else 5.0
        return s.planning.CreatePlan(request, metadata=AUTH, timeout=T)

    return call


def _replan(scenarios: Callable[[World], list[pb.Scenario]]) -> Callable[[Stubs, World], Any]:
    def call(s: Stubs, w: World) -> Any:
        request = pb.ReplanBatchRequest(
            base=pb.CreatePlanRequest(horizon=2, variant_ids=[w.variant], time_limit_s=5.0),
            scenarios=scenarios(w),
        )
        return list(s.planning.ReplanBatch(request, metadata=AUTH, timeout=T))

    return call


def _string_cases() -> Iterator[Case]:
    for label, bad in STRINGS.items():
        yield Case(
            f"ForecastDemand variant_id {label}",
            _forecast(variants=[pb.VariantRef(variant_id=bad)]),
            "variants[0]",
        )
        for part in ("variant_id", "family_id"):
            yield Case(
                f"ForecastDemand configuration.{part} {label}",
                lambda s, w, part=part, bad=bad: _forecast(
                    variants=[pb.VariantRef(configuration=_config(w, **{part: bad}))]
                )(s, w),
                f"variants[0].{part}",
            )
        for side in ("name", "value"):
            yield Case(
                f"ForecastDemand configuration attribute {side} {label}",
                lambda s, w, side=side, bad=bad: _forecast(
                    variants=[
                        pb.VariantRef(
                            configuration=_config(
                                w,
                                attributes={bad: "x"} if side == "name" else {w.attribute: bad},
                            )
                        )
                    ]
                )(s, w),
                "variants[0].attributes",
            )
        yield Case(f"ForecastDemand origin_week {label}", _forecast(origin_week=bad), "origin_week")
        yield Case(
            f"EstimateCost variant_id {label}",
            lambda s, w, bad=bad: s.planning.EstimateCost(
                pb.EstimateCostRequest(variants=[pb.VariantRef(variant_id=bad)]),
                metadata=AUTH,
                timeout=T,
            ),
            "variants[0]",
        )
        yield Case(
            f"EstimateCost configuration.family_id {label}",
            lambda s, w, bad=bad: s.planning.EstimateCost(
                pb.EstimateCostRequest(
                    variants=[pb.VariantRef(configuration=_config(w, family_id=bad))]
                ),
                metadata=AUTH,
                timeout=T,
            ),
            "variants[0].family_id",
        )
        plan_strings: dict[str, tuple[Callable[[World], pb.CreatePlanRequest], str]] = {
            "start_week": (
                lambda w, bad=bad: pb.CreatePlanRequest(horizon=2, start_week=bad),
                "start_week",
            ),
            "variant_ids": (
                lambda w, bad=bad: pb.CreatePlanRequest(horizon=2, variant_ids=[w.variant, bad]),
                "variant_ids[1]",
            ),
            "name": (lambda w, bad=bad: pb.CreatePlanRequest(horizon=2, name=bad), "name"),
            "new_variants.variant_id": (
                lambda w, bad=bad: pb.CreatePlanRequest(
                    horizon=2, new_variants=[_config(w, variant_id=bad)]
                ),
                "new_variants[0].variant_id",
            ),
            "new_variants.family_id": (
                lambda w, bad=bad: pb.CreatePlanRequest(
                    horizon=2, new_variants=[_config(w, family_id=bad)]
                ),
                "new_variants[0].family_id",
            ),
            "new_variants.attributes": (
                lambda w, bad=bad: pb.CreatePlanRequest(
                    horizon=2, new_variants=[_config(w, attributes={w.attribute: bad})]
                ),
                "new_variants[0].attributes",
            ),
            "initial_inventory key": (
                lambda w, bad=bad: pb.CreatePlanRequest(
                    horizon=2, variant_ids=[w.variant], initial_inventory={bad: 1.0}
                ),
                "initial_inventory",
            ),
        }
        for what, (build, field) in plan_strings.items():
            yield Case(f"CreatePlan {what} {label}", _plan(build), field)
        yield Case(
            f"GetPlan plan_id {label}",
            lambda s, w, bad=bad: s.planning.GetPlan(
                pb.GetPlanRequest(plan_id=bad), metadata=AUTH, timeout=T
            ),
            "plan_id",
        )
        yield Case(
            f"ReplanBatch scenario id {label}",
            _replan(lambda w, bad=bad: [pb.Scenario(id=bad)]),
            "scenarios[0].id",
        )
        yield Case(
            f"ReplanBatch capacity_factors key {label}",
            _replan(lambda w, bad=bad: [pb.Scenario(capacity_factors={bad: 1.0})]),
            "scenarios[0].capacity_factors",
        )
        yield Case(
            f"ListModels name {label}",
            lambda s, w, bad=bad: s.models.ListModels(
                mp.ListModelsRequest(name=bad), metadata=AUTH, timeout=T
            ),
            "name",
        )
        yield Case(
            f"GetRetrainJob job_id {label}",
            lambda s, w, bad=bad: s.models.GetRetrainJob(
                mp.GetRetrainJobRequest(job_id=bad), metadata=AUTH, timeout=T
            ),
            "job_id",
            (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND),
        )


_PLAN_NUMBERS: dict[str, tuple[Callable[[World, float], pb.CreatePlanRequest], str]] = {
    "service_level": (lambda w, v: pb.CreatePlanRequest(service_level=v), "service_level"),
    "holding_rate": (lambda w, v: pb.CreatePlanRequest(holding_rate=v), "holding_rate"),
    "backlog_rate": (lambda w, v: pb.CreatePlanRequest(backlog_rate=v), "backlog_rate"),
    "lost_sale_rate": (lambda w, v: pb.CreatePlanRequest(lost_sale_rate=v), "lost_sale_rate"),
    "time_limit_s": (lambda w, v: pb.CreatePlanRequest(time_limit_s=v), "time_limit_s"),
    "mip_rel_gap": (lambda w, v: pb.CreatePlanRequest(mip_rel_gap=v), "mip_rel_gap"),
    "week_correlation": (lambda w, v: pb.CreatePlanRequest(week_correlation=v), "week_correlation"),
    "initial_inventory": (
        lambda w, v: pb.CreatePlanRequest(
            variant_ids=[w.variant], initial_inventory={w.variant: v}
        ),
        "initial_inventory[",
    ),
    "new_variants.list_price": (
        lambda w, v: pb.CreatePlanRequest(new_variants=[_config(w, list_price=v)]),
        "new_variants[0].list_price",
    ),
}


def _number_cases() -> Iterator[Case]:
    for label, bad in NUMBERS.items():
        for what, (build, field) in _PLAN_NUMBERS.items():

            def request(w: World, build: Any = build, bad: float = bad) -> pb.CreatePlanRequest:
                req = build(w, bad)
                req.horizon = 2
                return req

            yield Case(f"CreatePlan {what} {label}", _plan(request), field)
        yield Case(
            f"ForecastDemand configuration.list_price {label}",
            lambda s, w, bad=bad: _forecast(
                variants=[pb.VariantRef(configuration=_config(w, list_price=bad))]
            )(s, w),
            "variants[0].list_price",
        )
        for what in ("demand_factor", "capacity_factors", "service_level"):

            def scenarios(w: World, what: str = what, bad: float = bad) -> list[pb.Scenario]:
                if what == "capacity_factors":
                    return [pb.Scenario(capacity_factors={w.line: bad})]
                return [pb.Scenario(**{what: bad})]

            yield Case(f"ReplanBatch {what} {label}", _replan(scenarios), f"scenarios[0].{what}")
    for price in (1e7, 5e300):  # finite, but above the bound on list prices
        yield Case(
            f"CreatePlan new_variants.list_price {price:g}",
            _plan(
                lambda w, price=price: pb.CreatePlanRequest(
                    horizon=2, new_variants=[_config(w, list_price=price)]
                )
            ),
            "new_variants[0].list_price",
        )
    for horizon in (-1, 10**6, 2**31 - 1):
        yield Case(f"ForecastDemand horizon {horizon}", _forecast_horizon(horizon), "horizon")
        yield Case(
            f"CreatePlan horizon {horizon}",
            _plan(lambda w, h=horizon: pb.CreatePlanRequest(horizon=h)),
            "horizon",
        )


def _forecast_horizon(horizon: int) -> Callable[[Stubs, World], Any]:
    def call(s: Stubs, w: World) -> Any:
        request = pb.ForecastDemandRequest(
            variants=[pb.VariantRef(variant_id=w.variant)], horizon=horizon
        )
        return s.planning.ForecastDemand(request, metadata=AUTH, timeout=T)

    return call


def _count_cases() -> Iterator[Case]:
    yield Case(
        "ForecastDemand more variants than allowed",
        lambda s, w: s.planning.ForecastDemand(
            pb.ForecastDemandRequest(
                variants=[pb.VariantRef(variant_id=f"V{i}") for i in range(MAX_VARIANTS + 1)],
                horizon=2,
            ),
            metadata=AUTH,
            timeout=T,
        ),
        "variants",
    )
    yield Case(
        "CreatePlan 10,000 variant ids",
        _plan(lambda w: pb.CreatePlanRequest(variant_ids=[f"V{i}" for i in range(10_000)])),
        "variant_ids",
    )
    yield Case(
        "CreatePlan a configuration with 10,000 attributes",
        _plan(
            lambda w: pb.CreatePlanRequest(
                new_variants=[_config(w, attributes={f"a{i}": "v" for i in range(10_000)})]
            )
        ),
        "new_variants[0].attributes",
    )
    yield Case(
        "CreatePlan 10,000 stock entries for unplanned variants",
        _plan(
            lambda w: pb.CreatePlanRequest(
                horizon=2,
                variant_ids=[w.variant],
                initial_inventory={f"V{i}": 1.0 for i in range(10_000)},
            )
        ),
        "initial_inventory",
    )
    yield Case(
        "ReplanBatch 300 scenarios",
        _replan(lambda w: [pb.Scenario(id=str(i)) for i in range(300)]),
        "scenarios",
    )
    yield Case(
        "GetPlan a message just under gRPC's own limit (twice the gateway's)",
        lambda s, w: s.planning.GetPlan(
            pb.GetPlanRequest(plan_id="p" * (2 * MAX_MESSAGE_BYTES - 1000)),
            metadata=AUTH,
            timeout=T,
        ),
        "request",
    )


#: Event string fields and the kind they belong to.
EVENT_STRINGS = {
    "order": ("order_id", "customer_id", "variant_id", "order_date", "due_date", "kind"),
    "production": ("record_id", "line_id", "variant_id", "date"),
    "review": ("review_id", "variant_id", "customer_id", "date"),
    "market_signal": ("week", "family_id"),
}
EVENT_FLOATS = {
    "order": ("unit_price",),
    "production": ("hours", "cost"),
    "market_signal": ("price_index", "trend_index"),
}
_EVENT_TYPES = {
    "order": fb.Order,
    "production": fb.ProductionRecord,
    "review": fb.Review,
    "market_signal": fb.MarketSignal,
}


def _good_order(w: World, order_id: str) -> fb.RecordEventsRequest:
    day = str(w.last_order.date())
    return fb.RecordEventsRequest(
        order=fb.Order(
            order_id=order_id,
            customer_id="C-HOSTILE",
            variant_id=w.variant,
            quantity=1,
            unit_price=w.list_price,
            order_date=day,
            due_date=day,
            kind="stock",
        )
    )


def _event(kind: str, field: str, bad: Any, w: World) -> fb.RecordEventsRequest:
    body: dict[str, Any] = {
        "order": {"order_id": f"H-{uuid.uuid4().hex[:12]}", "variant_id": w.variant},
        "production": {"record_id": f"H-{uuid.uuid4().hex[:12]}", "variant_id": w.variant},
        "review": {"review_id": f"H-{uuid.uuid4().hex[:12]}", "variant_id": w.variant},
        "market_signal": {"week": str(w.last_order.date()), "family_id": w.family},
    }[kind]
    body[field] = bad
    return fb.RecordEventsRequest(**{kind: _EVENT_TYPES[kind](**body)})


def _event_cases() -> Iterator[Case]:
    def one(kind: str, field: str, bad: Any) -> Callable[[Stubs, World], Any]:
        def call(s: Stubs, w: World) -> Any:
            events = [_event(kind, field, bad, w)]
            return s.feedback.RecordEvents(iter(events), metadata=AUTH, timeout=T)

        return call

    for kind, fields in EVENT_STRINGS.items():
        for field in fields:
            for label, bad in STRINGS.items():
                yield Case(f"RecordEvents {kind}.{field} {label}", one(kind, field, bad), field)
    for kind, fields in EVENT_FLOATS.items():
        for field in fields:
            for label in ("nan", "inf", "-inf"):
                yield Case(
                    f"RecordEvents {kind}.{field} {label}",
                    one(kind, field, NUMBERS[label]),
                    field,
                )


CASES = [*_string_cases(), *_number_cases(), *_count_cases(), *_event_cases()]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(frames: dict[str, Any]) -> World:
    variants = frames["variants"]
    row = variants.iloc[0]
    attrs = [str(c)[5:] for c in variants.columns if str(c).startswith("attr_")]
    last = pd.to_datetime(frames["orders"]["order_date"]).max().normalize()
    return World(
        variant=str(row["variant_id"]),
        family=str(row["family_id"]),
        attribute=attrs[0],
        line=str(frames["lines"]["line_id"].iloc[0]),
        last_order=last,
        list_price=float(row["list_price"]),
    )


@pytest.fixture(scope="module")
def stubs(channel: grpc.Channel) -> Stubs:
    return Stubs(
        pb_grpc.PlanningServiceStub(channel),
        mp_grpc.ModelServiceStub(channel),
        fb_grpc.FeedbackServiceStub(channel),
    )


def _bounded(text: str, limit: int) -> None:
    assert len(text) <= limit, f"{len(text)} characters: {text[:200]!r}"
    for sent in ("x", "y", "p"):
        assert sent * MAX_ECHO not in text, "a sent value is repeated whole"


# --------------------------------------------------------------------------- the tests


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 150
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_call_is_a_clear_short_invalid_argument(
    case: Case, stubs: Stubs, world: World
) -> None:
    try:
        answer = case.call(stubs, world)
    except grpc.RpcError as exc:
        code = exc.code()
        details = exc.details() or ""
        trailers = dict(exc.trailing_metadata() or ())
        assert code not in NEVER, f"{code.name}: {details[:300]!r}"
        assert code in case.codes, f"{code.name}: {details[:300]!r}"
        _bounded(details, MAX_DETAILS)
        _bounded("".join(str(v) for v in trailers.values()), MAX_TRAILERS)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            assert str(trailers.get("tailorline-field", "")).startswith(case.field), (
                trailers,
                details[:300],
            )
        return
    # a feedback stream answers OK and rejects the event on its own
    assert isinstance(answer, fb.RecordEventsResponse), f"{case.name} was accepted: {answer}"
    assert (answer.received, answer.stored, answer.rejected) == (1, 0, 1), answer
    [error] = answer.errors
    assert error.field == case.field, error
    _bounded(error.reason, 400)
    _bounded(error.event_id, MAX_ECHO)


def test_a_date_with_a_timezone_is_its_calendar_date(stubs: Stubs, world: World) -> None:
    """Accepted and normalised: the calendar date as written, its UTC offset dropped."""
    monday = world.last_order - pd.Timedelta(days=world.last_order.weekday())
    for suffix in ("T00:00:00+05:00", "T23:30:00-11:00", "T12:00:00Z"):
        reply = stubs.planning.ForecastDemand(
            pb.ForecastDemandRequest(
                variants=[pb.VariantRef(variant_id=world.variant)],
                origin_week=f"{monday.date()}{suffix}",
                horizon=2,
            ),
            metadata=AUTH,
            timeout=T,
        )
        assert reply.origin_week == str(monday.date())
        assert len(reply.forecasts[0].weeks) == 2


def test_hostile_events_are_rejected_and_good_ones_stored_exactly_once(
    stubs: Stubs, world: World, gateway_home: Path
) -> None:
    ids = [f"GW-HOSTILE-{uuid.uuid4().hex[:8].upper()}-{i}" for i in range(3)]  # ids as stored
    bad = [
        _event("order", "order_id", BIG, world),
        _event("order", "customer_id", "C\x00", world),
        _event("order", "unit_price", math.nan, world),
        _event("market_signal", "price_index", math.inf, world),
    ]
    events = [bad[0], _good_order(world, ids[0]), bad[1], _good_order(world, ids[1]), *bad[2:]]
    events.append(_good_order(world, ids[2]))
    first = stubs.feedback.RecordEvents(iter(events), metadata=AUTH, timeout=T)
    assert (first.received, first.stored, first.rejected) == (7, 3, 4), first
    assert [e.index for e in first.errors] == [0, 2, 4, 5]
    assert [e.field for e in first.errors] == [
        "order_id",
        "customer_id",
        "unit_price",
        "price_index",
    ]
    assert len(first.SerializeToString()) < 4096
    again = stubs.feedback.RecordEvents(iter(events), metadata=AUTH, timeout=T)
    assert (again.stored, again.duplicates, again.rejected) == (0, 3, 4), again

    engine = make_engine(CoreSettings(home=gateway_home).resolved_db_url)
    try:
        with engine.connect() as conn:
            t = schema.orders
            rows = conn.execute(
                select(t.c.order_id, func.count())
                .where(t.c.order_id.in_(ids))
                .group_by(t.c.order_id)
            ).all()
    finally:
        engine.dispose()
    assert sorted(rows) == [(i, 1) for i in sorted(ids)]


def test_after_the_suite_forecasts_and_plans_still_answer(
    stubs: Stubs, world: World, stack: LocalStack
) -> None:
    start = world.last_order + pd.Timedelta(days=7 - world.last_order.weekday())
    reply = stubs.planning.ForecastDemand(
        pb.ForecastDemandRequest(variants=[pb.VariantRef(variant_id=world.variant)], horizon=2),
        metadata=AUTH,
        timeout=T,
    )
    assert reply.forecasts[0].variant_id == world.variant
    plan = stubs.planning.CreatePlan(
        pb.CreatePlanRequest(
            start_week=f"{start.date()}T00:00:00+05:00",  # a timezone: its calendar date
            horizon=2,
            variant_ids=[world.variant],
            time_limit_s=10.0,
            name="after the hostile suite",
        ),
        metadata=AUTH,
        timeout=T,
    )
    assert plan.result.periods[0] == str(start.date())
    # no log line of the gateway carries a caller's megabytes
    assert stack.log_dir is not None
    log = stack.log_dir / "gateway.log"
    longest = max((len(line) for line in log.read_text(errors="replace").splitlines()), default=0)
    assert longest <= MAX_LOG_LINE
