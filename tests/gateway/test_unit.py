"""Pieces of the gateway that need no process: V2 tensor coding and the one status mapping."""

from __future__ import annotations

import time
from typing import Any

import grpc
import numpy as np
import pytest
from tailorline.v1 import planning_service_pb2 as pb

from optimizer.core.errors import Infeasible, ProblemInvalid
from optimizer.core.problem import Diagnosis
from optimizer.serving.client import RemoteError, TimedOut, Unreachable, call_with_retries
from services.common.errors import Unavailable
from services.gateway.downstream import (
    DownstreamError,
    decode_output,
    encode_bytes,
    optimizer_solvers,
)
from services.gateway.interceptors import status_of
from services.gateway.servicers.planning import plan_request, scenario
from services.planning.request import PlanRequest, Scenario


def test_v2_bytes_round_trip_keeps_utf8_and_empty_strings() -> None:
    values = np.array([b"wool", b"", "\u00e9t\u00e9".encode()], dtype=np.object_)
    decoded = decode_output("BYTES", [3], encode_bytes(values))
    assert list(decoded) == list(values)


def test_v2_fp32_output_is_read_little_endian_in_its_shape() -> None:
    raw = np.array([[1.5, 2.0, 3.25], [0.0, -1.0, 8.0]], dtype="<f4").tobytes()
    out = decode_output("FP32", [2, 3], raw)
    assert out.shape == (2, 3) and out[1, 2] == 8.0 and out[0, 0] == 1.5


def test_user_fixable_errors_map_to_their_codes_and_the_rest_to_internal() -> None:
    assert status_of(ProblemInvalid("problem.lines[0]", "negative capacity"))[:1] == (
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    code, details, field = status_of(ProblemInvalid("problem.lines[0]", "negative"))
    assert field == "problem.lines[0]" and "negative" in details
    assert status_of(Infeasible(Diagnosis(summary="too little capacity")))[0] == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    assert status_of(Unavailable("predictor down"))[0] == grpc.StatusCode.UNAVAILABLE
    code, details, _ = status_of(KeyError("bug"))
    assert code == grpc.StatusCode.INTERNAL and "bug" not in details  # no internals leak


def test_create_plan_request_carries_the_stock_on_hand_to_the_planner() -> None:
    spec = plan_request(pb.CreatePlanRequest(horizon=4, initial_inventory={"V0001": 12.5}))
    assert spec.initial_inventory == (("V0001", 12.5),)
    assert plan_request(pb.CreatePlanRequest()).initial_inventory == ()


def test_create_plan_request_absent_fields_take_the_plan_request_defaults() -> None:
    assert plan_request(pb.CreatePlanRequest()) == PlanRequest()
    request = plan_request(
        pb.CreatePlanRequest(
            horizon=3, service_level=0.7, holding_rate=0.0, allow_backlog=False, mip_rel_gap=0.0
        )
    )
    assert (request.horizon, request.service_level, request.holding_rate) == (3, 0.7, 0.0)
    assert request.allow_backlog is False and request.mip_rel_gap == 0.0


def test_a_replan_scenario_becomes_plain_data_with_its_unset_fields_none() -> None:
    msg = pb.Scenario(id="a", service_level=0.5, capacity_factors={"L2": 0.5, "L1": 2})
    assert scenario(msg) == Scenario("a", 0.5, None, (("L1", 2.0), ("L2", 0.5)))
    assert scenario(pb.Scenario()) == Scenario()


class _Status(grpc.RpcError):
    """What a blocking stub raises: a status code and details."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "connection refused"


def test_downstream_calls_retry_unavailable_only_and_never_past_the_deadline() -> None:
    calls: list[float | None] = []

    def flaky(failures: int, code: grpc.StatusCode) -> Any:
        def call(timeout: float | None) -> str:
            calls.append(timeout)
            if len(calls) <= failures:
                raise _Status(code)
            return "ok"

        return call

    def run(fn: Any, retries: int, deadline: float | None = None) -> str:
        calls.clear()
        return call_with_retries(
            fn, what="x", deadline=deadline, timeout_s=5.0, retries=retries, backoff_s=0.001
        )

    assert run(flaky(2, grpc.StatusCode.UNAVAILABLE), retries=2) == "ok"
    assert calls == [5.0, 5.0, 5.0]
    with pytest.raises(Unreachable, match="x is unreachable: connection refused"):
        run(flaky(2, grpc.StatusCode.UNAVAILABLE), retries=1)
    with pytest.raises(_Status):  # any other status is an answer: no retry
        run(flaky(1, grpc.StatusCode.INTERNAL), retries=3)
    assert len(calls) == 1
    with pytest.raises(TimedOut):
        run(flaky(0, grpc.StatusCode.OK), retries=0, deadline=time.monotonic() - 1)
    assert calls == []
    run(flaky(0, grpc.StatusCode.OK), retries=0, deadline=time.monotonic() + 1)
    assert calls[0] is not None and calls[0] <= 1.0  # the timeout is what is left of the deadline


def test_the_optimizer_clients_failures_become_the_gateways_errors() -> None:
    class Client:
        def solve(self, *_args: Any) -> Any:
            raise Unreachable("optimizer (x) is unreachable: down")

        def solve_batch(self, *_args: Any) -> Any:
            return [("a", RemoteError("solver error: boom")), ("b", Infeasible(Diagnosis("no")))]

    solve, solve_batch = optimizer_solvers(Client())  # type: ignore[arg-type]
    with pytest.raises(Unavailable, match="unreachable: down"):
        solve(None, None, None)  # type: ignore[arg-type]
    [(a, failed), (b, infeasible)] = solve_batch(None, [], None, None)  # type: ignore[arg-type]
    assert (a, b) == ("a", "b")
    assert (
        isinstance(failed, DownstreamError)
        and str(failed) == "optimizer failed: solver error: boom"
    )
    assert isinstance(infeasible, Infeasible)  # the optimizer's own errors pass as they are


def test_a_call_the_client_gave_up_on_is_still_counted() -> None:
    """gRPC cancels the handler of a call past its deadline: the metrics/log hook still hears of
    it, as DEADLINE_EXCEEDED (CANCELLED when the client cancelled with time left)."""
    import asyncio

    import grpc

    from services.gateway.interceptors.base import timed

    class Context:
        def __init__(self, left: float | None) -> None:
            self.left = left

        def time_remaining(self) -> float | None:
            return self.left

        def code(self) -> None:
            return None

    async def run(left: float | None) -> list[grpc.StatusCode]:
        seen: list[grpc.StatusCode] = []
        try:
            async with timed(Context(left), lambda code, _s, _d: seen.append(code)):  # type: ignore[arg-type]
                raise asyncio.CancelledError
        except asyncio.CancelledError:
            pass
        return seen

    assert asyncio.run(run(0.0)) == [grpc.StatusCode.DEADLINE_EXCEEDED]
    assert asyncio.run(run(5.0)) == [grpc.StatusCode.CANCELLED]


def test_a_stream_closed_after_grpc_released_its_call_is_counted_without_touching_the_call() -> (
    None
):
    """A client that cancels (or a deadline that passes) while gRPC sends a streamed message:
    the handler's generator is closed later at its ``yield``, the call already released. The
    hook still hears of it, and nothing reads the released call (that crashes the process)."""
    import asyncio

    import grpc

    from services.gateway.interceptors.base import timed

    class Released(Exception):
        pass

    class Context:
        def __init__(self, left: float | None) -> None:
            self.left = left
            self.released = False

        def time_remaining(self) -> float | None:
            if self.released:
                raise Released("time_remaining")
            return self.left

        def code(self) -> None:
            raise Released("code")

        def details(self) -> None:
            raise Released("details")

    async def run(left: float | None) -> list[tuple[grpc.StatusCode, str]]:
        seen: list[tuple[grpc.StatusCode, str]] = []
        context = Context(left)

        async def stream() -> Any:
            async with timed(context, lambda code, _s, text: seen.append((code, text))):  # type: ignore[arg-type]
                yield "plan"
                yield "another plan"

        messages = stream()
        assert await messages.__anext__() == "plan"
        context.released = True  # gRPC's handler task ended in its send
        await messages.aclose()  # what collecting the abandoned generator does
        return seen

    assert asyncio.run(run(5.0)) == [(grpc.StatusCode.CANCELLED, "")]
    assert asyncio.run(run(None)) == [(grpc.StatusCode.CANCELLED, "")]
    assert asyncio.run(run(0.0)) == [(grpc.StatusCode.DEADLINE_EXCEEDED, "")]
