"""Streaming ReplanBatch through the real gateway, predictor and Ray Serve optimizer (the session
stack of conftest.py): 16 scenarios answer one by one, each within its time budget, and a call
cancelled mid-way stops the scenarios not solved yet."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from services.common.settings import CoreSettings
from services.store import make_engine, schema
from tests.gateway.helpers import AUTH, REQUEST_TIMEOUT_S

pytestmark = pytest.mark.integration

#: Seconds each scenario's solve may take in all (build, solve, explanation, rounding).
BUDGET_S = 12.0
N = 16
#: The call's deadline: the stack has one Solver replica, so the batch takes up to N x BUDGET_S
#: (one scenario after the other), plus the forecast and storing the plans. With less, the last
#: scenarios find too little of the deadline left and end DEADLINE_EXCEEDED (docs/scaling.md: a
#: deadline D holds floor(D / budget) scenarios per replica).
DEADLINE_S = N * BUDGET_S + 48.0


def _request(frames: dict[str, Any], name: str, n: int = N) -> pb.ReplanBatchRequest:
    ids = sorted(frames["variants"]["variant_id"])
    line = str(frames["lines"]["line_id"].iloc[0])
    scenarios = []
    for k in range(n):
        sc = pb.Scenario(id=f"s{k:02d}", service_level=0.5 + 0.4 * k / max(1, n - 1))
        if k % 4 == 3:
            sc.capacity_factors[line] = 0.8
        scenarios.append(sc)
    # a gap of 0 on the whole catalogue over half a year: every solve runs into its time limit,
    # so the queue is long enough to see the replicas share it and a cancellation cut it
    base = pb.CreatePlanRequest(horizon=26, variant_ids=ids, mip_rel_gap=0.0, name=name)
    return pb.ReplanBatchRequest(base=base, scenarios=scenarios, scenario_budget_s=BUDGET_S)


def _stored(home: Path, name: str) -> int:
    engine = make_engine(CoreSettings(home=home).resolved_db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(schema.plans.c.request)).scalars().all()
    finally:
        engine.dispose()
    return sum(1 for r in rows if (r or {}).get("name") == name)


def test_sixteen_scenarios_stream_back_each_within_its_budget(
    channel: grpc.Channel, frames: dict[str, Any], gateway_home: Path
) -> None:
    # the gateway caps a call's deadline at its request_timeout_s: the stack's must let it through
    assert DEADLINE_S <= REQUEST_TIMEOUT_S
    stub = pb_grpc.PlanningServiceStub(channel)
    name = f"stream-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    arrivals: list[float] = []
    results: dict[str, pb.ReplanBatchResponse] = {}
    for r in stub.ReplanBatch(_request(frames, name), metadata=AUTH, timeout=DEADLINE_S):
        arrivals.append(time.monotonic() - t0)
        results[r.scenario_id] = r
    assert sorted(results) == [f"s{k:02d}" for k in range(N)]
    errors = {k: r.error for k, r in results.items() if r.WhichOneof("outcome") != "result"}
    assert not errors
    plans = {k: r.result.plan for k, r in results.items()}
    # every scenario's whole solve (build, solve, explanation, rounding) within its budget
    over = {k: p.total_time_s for k, p in plans.items() if p.total_time_s > BUDGET_S}
    assert not over, f"over the {BUDGET_S} s budget: {over}"
    assert all(p.solve_time_s > 0 for p in plans.values())
    # streamed as solved: the first answer came long before the last
    assert arrivals[0] < arrivals[-1] / 2, arrivals
    # the scenarios are the plans asked for, stored once each, from one forecast
    assert results["s00"].result.service_level == pytest.approx(0.5)
    assert results[f"s{N - 1:02d}"].result.service_level == pytest.approx(0.9)
    assert len({r.result.plan_id for r in results.values()}) == N
    assert _stored(gateway_home, name) == N


def test_cancelling_the_call_stops_the_scenarios_not_solved_yet(
    channel: grpc.Channel, frames: dict[str, Any], gateway_home: Path
) -> None:
    stub = pb_grpc.PlanningServiceStub(channel)
    name = f"cancel-{uuid.uuid4().hex[:8]}"
    call = stub.ReplanBatch(_request(frames, name), metadata=AUTH, timeout=DEADLINE_S)
    received = []
    solve_times = []
    for r in call:
        received.append(r.scenario_id)
        solve_times.append(r.result.plan.total_time_s)
        if len(received) == 2:
            call.cancel()
            break
    cancelled_at = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    assert err.value.code() == grpc.StatusCode.CANCELLED

    # Had the other 14 scenarios gone on, the replicas would be busy for 14 solves; a fresh
    # one-scenario batch answers after at most the solves that were already running.
    solve_s = max(solve_times)
    follow = _request(frames, f"{name}-after", n=1)
    t0 = time.monotonic()
    (answer,) = list(stub.ReplanBatch(follow, metadata=AUTH, timeout=DEADLINE_S))
    waited = time.monotonic() - t0
    assert answer.WhichOneof("outcome") == "result"
    assert waited < 2 * solve_s + answer.result.plan.total_time_s + 10, (waited, solve_s)
    # nothing of the cancelled batch was stored after the cancellation, however long we wait
    time.sleep(max(0.0, cancelled_at + 2 * solve_s - time.monotonic()))
    assert _stored(gateway_home, name) <= len(received) + 1


def _cancelled_replans(stack: Any) -> float:
    """The gateway's count of ReplanBatch calls that ended CANCELLED (its /metrics)."""
    import urllib.request

    url = f"http://127.0.0.1:{stack.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if (
            line.startswith("tailorline_gateway_requests_total{")
            and 'code="CANCELLED"' in line
            and "/ReplanBatch" in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_cancelling_while_a_plan_waits_to_be_read_is_counted_and_stops_the_queue(
    stack: Any, frames: dict[str, Any], gateway_home: Path
) -> None:
    """A client slow to read (its flow-control window held at 1 KB) cancels while the gateway is
    sending it the next plan: gRPC ends the call in that send, and the gateway's generator is
    closed later at its ``yield``. The queue still stops (the call's done callback cancels the
    optimizer call), and the request metrics count the call as CANCELLED (they used not to
    hear of it at all)."""
    before = _cancelled_replans(stack)
    slow_reader = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.http2.lookahead_bytes", 1024),  # a plan is tens of KB: its send waits for reads
        ("grpc.http2.bdp_probe", 0),
    ]
    name = f"slow-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(stack.gateway_target, options=slow_reader) as slow:
        stub = pb_grpc.PlanningServiceStub(slow)
        call = stub.ReplanBatch(_request(frames, name), metadata=AUTH, timeout=DEADLINE_S)
        first = next(call)
        solve_s = first.result.plan.total_time_s
        time.sleep(2 * solve_s)  # the next plan is now in the gateway's send, unread
        call.cancel()
    cancelled_at = time.monotonic()

    counted = _cancelled_replans(stack)
    deadline = time.monotonic() + 30
    while counted < before + 1 and time.monotonic() < deadline:
        time.sleep(0.5)
        counted = _cancelled_replans(stack)
    assert counted == before + 1

    with grpc.insecure_channel(stack.gateway_target) as fresh:
        stub = pb_grpc.PlanningServiceStub(fresh)
        t0 = time.monotonic()
        follow = _request(frames, f"{name}-after", n=1)
        (answer,) = list(stub.ReplanBatch(follow, metadata=AUTH, timeout=DEADLINE_S))
        waited = time.monotonic() - t0
    assert answer.WhichOneof("outcome") == "result"
    assert waited < 2 * solve_s + answer.result.plan.total_time_s + 10, (waited, solve_s)
    time.sleep(max(0.0, cancelled_at + 2 * solve_s - time.monotonic()))
    assert _stored(gateway_home, name) <= 4  # the first, the one in the send, at most 2 running
