"""A downstream goes away and comes back: UNAVAILABLE within the deadline, health follows it.

Runs after test_api/test_fuzz (file order) because it stops the session's predictor.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from services.local.stack import LocalStack
from tests.gateway.helpers import AUTH

pytestmark = pytest.mark.integration
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _wait_for(status: Any, health: Any, limit_s: float = 60.0) -> list[Any]:
    """Poll the overall health until it reports ``status``; the statuses seen on the way."""
    seen = []
    stop = time.monotonic() + limit_s
    while time.monotonic() < stop:
        now = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        seen.append(now)
        if now == status:
            return seen
        time.sleep(0.3)
    return seen


def test_predictor_down_gives_unavailable_and_not_serving_then_recovers(
    stack: LocalStack, channel: grpc.Channel, frames: dict[str, Any]
) -> None:
    stub = pb_grpc.PlanningServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    variant = str(frames["variants"]["variant_id"].iloc[0])
    request = pb.ForecastDemandRequest(variants=[pb.VariantRef(variant_id=variant)], horizon=2)
    assert stub.ForecastDemand(request, metadata=AUTH, timeout=60).forecasts

    stack.stop_process("predictor")
    try:
        with pytest.raises(grpc.RpcError) as err:
            stub.ForecastDemand(request, metadata=AUTH, timeout=20)
        # the gateway's retries give up inside the client's deadline, with the cause
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "predictor" in err.value.details()
        assert _wait_for(NOT_SERVING, health)[-1] == NOT_SERVING
        # the service-level entries follow the overall status
        planning = health.Check(
            health_pb2.HealthCheckRequest(service="tailorline.v1.PlanningService"), timeout=5
        )
        assert planning.status == NOT_SERVING
    finally:
        stack.start_predictor()
        stack.wait_predictor()
    assert _wait_for(SERVING, health)[-1] == SERVING
    again = stub.ForecastDemand(request, metadata=AUTH, timeout=60)
    assert again.forecasts[0].variant_id == variant
