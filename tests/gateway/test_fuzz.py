"""More than 1,000 malformed or extreme requests: none may end UNKNOWN, INTERNAL or
RESOURCE_EXHAUSTED (each is something the caller can fix, and no message here is above gRPC's own
receive limit), and the gateway still answers afterwards. tests/gateway/test_hostile.py tries each
class of hostile input field by field.

Every planning request carries at least one invalid field, so nothing here reaches the solver.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from tailorline.v1 import feedback_service_pb2 as fb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from tailorline.v1 import model_service_pb2 as mp
from tailorline.v1 import model_service_pb2_grpc as mp_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from tests.gateway.helpers import AUTH, MAX_VARIANTS, code_of

pytestmark = pytest.mark.integration
BAD_CODES = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.RESOURCE_EXHAUSTED)
UNARY = [
    "/tailorline.v1.PlanningService/ForecastDemand",
    "/tailorline.v1.PlanningService/EstimateCost",
    "/tailorline.v1.PlanningService/CreatePlan",
    "/tailorline.v1.PlanningService/GetPlan",
    "/tailorline.v1.ModelService/ListModels",
    "/tailorline.v1.ModelService/Retrain",
    "/tailorline.v1.ModelService/GetRetrainJob",
]
NUMBERS = [math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308, -1e-300, 2.0, 1.0]
INTS = [-(2**31), -1, 0, 53, 10**6, 2**31 - 1]
STRINGS = ["", " ", "NOPE", "x" * 5000, "\u00e9\u4e2d\U0001f600", "2026-13-45", "NaN", "0", "'; --"]
DATES = [
    "",
    "2026-13-45",
    "1800-01-01",
    "9999-12-31",
    "yesterday",
    "2026-02-30",
    "1e9",
    "2026-11-23",
]


def _choice(rng: random.Random, items: list[Any]) -> Any:
    return items[rng.randrange(len(items))]


def _new_variant(rng: random.Random, family: str) -> pb.NewVariant:
    return pb.NewVariant(
        variant_id=_choice(rng, STRINGS),
        family_id=_choice(rng, [family, *STRINGS]),
        list_price=_choice(rng, NUMBERS),
        attributes={_choice(rng, ["fabric", "nope", "", "x" * 300]): _choice(rng, STRINGS)},
    )


def _refs(rng: random.Random, ids: list[str], family: str) -> list[pb.VariantRef]:
    kind = rng.randrange(5)
    if kind == 0:
        return []
    if kind == 1:  # more than the gateway allows
        return [pb.VariantRef(variant_id=_choice(rng, ids)) for _ in range(MAX_VARIANTS + 1)]
    if kind == 2:
        return [pb.VariantRef()]
    if kind == 3:
        return [pb.VariantRef(variant_id=_choice(rng, STRINGS))]
    return [pb.VariantRef(configuration=_new_variant(rng, family))]


def _plan_request(rng: random.Random, ids: list[str], family: str) -> pb.CreatePlanRequest:
    """A CreatePlan request with at least one invalid field."""
    req = pb.CreatePlanRequest(
        start_week=_choice(rng, DATES),
        horizon=_choice(rng, [*INTS, 2]),
        variant_ids=_choice(rng, [[], ids[:1], ["NOPE"], ids[:1] * 2]),
    )
    invalid = [
        lambda: setattr(req, "service_level", _choice(rng, [math.nan, 0.0, 1.0, -1.0, math.inf])),
        lambda: setattr(req, "holding_rate", _choice(rng, [math.nan, -1.0, math.inf])),
        lambda: setattr(req, "lost_sale_rate", _choice(rng, [math.nan, -0.5])),
        lambda: setattr(req, "time_limit_s", _choice(rng, [0.0, -1.0, math.nan])),
        lambda: setattr(req, "mip_rel_gap", _choice(rng, [1.0, 2.0, -1.0, math.nan])),
        lambda: setattr(req, "horizon", _choice(rng, [-1, 53, 10**6])),
        lambda: req.new_variants.append(
            pb.NewVariant(family_id="NO-FAMILY", list_price=_choice(rng, NUMBERS))
        ),
        lambda: req.variant_ids.extend(["DOES-NOT-EXIST"]),
    ]
    _choice(rng, invalid)()
    return req


def _event(rng: random.Random, variant: str) -> fb.RecordEventsRequest:
    kind = rng.randrange(4)
    if kind == 0:
        return fb.RecordEventsRequest(
            order=fb.Order(
                order_id=_choice(rng, STRINGS),
                customer_id=_choice(rng, STRINGS),
                variant_id=_choice(rng, [variant, *STRINGS]),
                quantity=_choice(rng, [-(2**62), -1, 0, 2**62]),
                unit_price=_choice(rng, NUMBERS),
                order_date=_choice(rng, DATES),
                due_date=_choice(rng, DATES),
                kind=_choice(rng, ["stock", "custom", "", "other"]),
            )
        )
    if kind == 1:
        return fb.RecordEventsRequest(
            production=fb.ProductionRecord(
                record_id=_choice(rng, STRINGS),
                line_id=_choice(rng, STRINGS),
                variant_id=variant,
                date=_choice(rng, DATES),
                quantity=_choice(rng, INTS),
                hours=_choice(rng, NUMBERS),
                cost=_choice(rng, NUMBERS),
                scrap=_choice(rng, INTS),
            )
        )
    if kind == 2:
        return fb.RecordEventsRequest(
            review=fb.Review(review_id=_choice(rng, STRINGS), rating=_choice(rng, INTS))
        )
    return fb.RecordEventsRequest(
        market_signal=fb.MarketSignal(
            week=_choice(rng, DATES),
            family_id=_choice(rng, STRINGS),
            price_index=_choice(rng, NUMBERS),
            trend_index=_choice(rng, NUMBERS),
        )
    )


def _calls(channel: grpc.Channel, frames: dict[str, Any]) -> list[tuple[str, Callable[[], Any]]]:
    rng = random.Random(20261127)
    ids = sorted(frames["variants"]["variant_id"].astype(str))
    family = str(frames["variants"]["family_id"].iloc[0])
    planning = pb_grpc.PlanningServiceStub(channel)
    models = mp_grpc.ModelServiceStub(channel)
    feedback = fb_grpc.FeedbackServiceStub(channel)
    t = 30
    calls: list[tuple[str, Callable[[], Any]]] = []

    def add(name: str, fn: Callable[[], Any]) -> None:
        calls.append((name, fn))

    for i in range(350):  # raw bytes: random, truncated, or another message's encoding
        method = UNARY[i % len(UNARY)]
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(1, 200))
        elif kind == 1:
            data = _plan_request(rng, ids, family).SerializeToString()[: rng.randrange(1, 30)]
        elif kind == 2:
            data = bytes([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + rng.randbytes(8)
        else:
            data = fb.RecordEventsRequest(
                order=fb.Order(order_id="x", quantity=3)
            ).SerializeToString()
        raw = channel.unary_unary(method)
        add(f"raw {method}", lambda raw=raw, data=data: raw(data, metadata=AUTH, timeout=t))
    for _ in range(40):
        raw_stream = channel.unary_stream("/tailorline.v1.PlanningService/ReplanBatch")
        data = rng.randbytes(rng.randrange(1, 100))
        add(
            "raw ReplanBatch",
            lambda r=raw_stream, d=data: list(r(d, metadata=AUTH, timeout=t)),
        )
    for _ in range(40):
        raw_events = channel.stream_unary("/tailorline.v1.FeedbackService/RecordEvents")
        chunks = [rng.randbytes(rng.randrange(1, 60)) for _ in range(3)]
        add(
            "raw RecordEvents",
            lambda r=raw_events, c=chunks: r(iter(c), metadata=AUTH, timeout=t),
        )
    for _ in range(200):
        req = pb.ForecastDemandRequest(
            variants=_refs(rng, ids, family),
            origin_week=_choice(rng, DATES),
            horizon=_choice(rng, INTS),
        )
        add("ForecastDemand", lambda r=req: planning.ForecastDemand(r, metadata=AUTH, timeout=t))
    for _ in range(100):
        req = pb.EstimateCostRequest(variants=_refs(rng, ids, family))
        add("EstimateCost", lambda r=req: planning.EstimateCost(r, metadata=AUTH, timeout=t))
    for _ in range(150):
        req = _plan_request(rng, ids, family)
        add("CreatePlan", lambda r=req: planning.CreatePlan(r, metadata=AUTH, timeout=t))
    for _ in range(40):
        req = pb.ReplanBatchRequest(
            base=_plan_request(rng, ids, family),
            scenarios=_choice(
                rng,
                [[], [pb.Scenario(demand_factor=-1)], [pb.Scenario()] * 300],
            ),
        )
        add(
            "ReplanBatch",
            lambda r=req: list(planning.ReplanBatch(r, metadata=AUTH, timeout=t)),
        )
    for _ in range(40):
        req = pb.GetPlanRequest(plan_id=_choice(rng, STRINGS))
        add("GetPlan", lambda r=req: planning.GetPlan(r, metadata=AUTH, timeout=t))
    for _ in range(30):
        add(
            "ListModels",
            lambda n=_choice(rng, STRINGS): models.ListModels(
                mp.ListModelsRequest(name=n), metadata=AUTH, timeout=t
            ),
        )
        add(
            "GetRetrainJob",
            lambda n=_choice(rng, STRINGS): models.GetRetrainJob(
                mp.GetRetrainJobRequest(job_id=n), metadata=AUTH, timeout=t
            ),
        )
        add(
            "Retrain",
            lambda n=_choice(rng, STRINGS): models.Retrain(
                mp.RetrainRequest(models=[n]), metadata=AUTH, timeout=t
            ),
        )
    for _ in range(60):
        events = [_event(rng, ids[0]) for _ in range(rng.randrange(1, 6))]
        add(
            "RecordEvents",
            lambda e=events: feedback.RecordEvents(iter(e), metadata=AUTH, timeout=t),
        )
    # an oversized message: above the gateway's limit (2 MB here) is INVALID_ARGUMENT; only
    # above twice it (gRPC's own receive limit) would gRPC itself answer RESOURCE_EXHAUSTED
    add(
        "GetPlan 3 MB",
        lambda: planning.GetPlan(
            pb.GetPlanRequest(plan_id="p" * (3 << 20)), metadata=AUTH, timeout=t
        ),
    )
    return calls


def test_a_thousand_bad_requests_never_end_unknown_or_internal(
    channel: grpc.Channel, frames: dict[str, Any]
) -> None:
    calls = _calls(channel, frames)
    assert len(calls) >= 1000
    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(lambda c: (c[0], code_of(c[1])), calls))
    bad = [(name, code) for name, code in codes if code in BAD_CODES]
    assert not bad, f"{len(bad)} of {len(codes)} ended {BAD_CODES}, e.g. {bad[:10]}"
    seen = {code for _, code in codes}
    assert grpc.StatusCode.INVALID_ARGUMENT in seen
    # still answers afterwards
    planning = pb_grpc.PlanningServiceStub(channel)
    variant = str(frames["variants"]["variant_id"].iloc[0])
    reply = planning.ForecastDemand(
        pb.ForecastDemandRequest(variants=[pb.VariantRef(variant_id=variant)], horizon=2),
        metadata=AUTH,
        timeout=60,
    )
    assert reply.forecasts[0].variant_id == variant
