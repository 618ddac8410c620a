"""Pieces of the gateway that need no process: V2 tensor coding and the one status mapping."""

from __future__ import annotations

import grpc
import numpy as np

from optimizer.core.errors import Infeasible, ProblemInvalid
from optimizer.core.problem import Diagnosis
from services.common.errors import Unavailable
from services.gateway.downstream import decode_output, encode_bytes
from services.gateway.interceptors import status_of


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
    from tailorline.v1 import planning_service_pb2 as pb

    from services.gateway.servicers.planning import plan_spec

    spec = plan_spec(pb.CreatePlanRequest(horizon=4, initial_inventory={"V0001": 12.5}))
    assert spec.initial_inventory == (("V0001", 12.5),)
    assert plan_spec(pb.CreatePlanRequest()).initial_inventory == ()
