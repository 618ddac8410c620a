"""A scenario's time limit from its budget and its caller's deadline (SolverKnobs.time_limit):
the whole solve fits the budget, and a scenario that waited in the queue still ends in time."""

from __future__ import annotations

import pytest

from optimizer.serving.serve import BUDGET_SOLVE_SHARE, MIN_TIME_LIMIT_S, SolverKnobs

KNOBS = SolverKnobs(budget_reserve_s=2.0, deadline_margin_s=2.0)


def test_no_budget_and_no_deadline_keep_the_requested_limit() -> None:
    assert KNOBS.time_limit(60.0, None, None, now=0.0) == 60.0


def test_a_budget_leaves_room_for_building_explaining_and_rounding() -> None:
    limit = KNOBS.time_limit(60.0, 10.0, None, now=0.0)
    assert limit == pytest.approx((10.0 - 2.0) * BUDGET_SOLVE_SHARE)
    # a budget above what the limit needs changes nothing
    assert KNOBS.time_limit(3.0, 100.0, None, now=0.0) == 3.0
    # a budget shorter than the reserve still gets the shortest solve
    assert KNOBS.time_limit(60.0, 1.0, None, now=0.0) == MIN_TIME_LIMIT_S


def test_the_deadline_cuts_a_solve_that_starts_late() -> None:
    # 100 s budget, but the caller's deadline is 12 s away when a replica starts the scenario
    limit = KNOBS.time_limit(60.0, 100.0, expires_at=1012.0, now=1000.0)
    assert limit == pytest.approx((12.0 - 2.0 - 2.0) * BUDGET_SOLVE_SHARE)
    # too little left: not started at all
    assert KNOBS.time_limit(60.0, None, expires_at=1004.0, now=1000.0) is None


def test_reserve_and_margin_are_validated_knobs() -> None:
    knobs = SolverKnobs.from_user_config({"budget_reserve_s": 3, "deadline_margin_s": 1})
    assert (knobs.budget_reserve_s, knobs.deadline_margin_s) == (3.0, 1.0)
    with pytest.raises(ValueError, match="budget_reserve_s"):
        SolverKnobs.from_user_config({"budget_reserve_s": -1})


def test_a_scenario_left_unstarted_reads_deadline_exceeded_at_the_client() -> None:
    """A scenario the Solver did not start (too little of the deadline left) is the client's
    TimedOut, which the gateway reports as DEADLINE_EXCEEDED (docs/api.md), not INTERNAL."""
    import grpc
    from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb

    from optimizer.serving.client import RemoteError, TimedOut, Unreachable, _scenario_error
    from services.common.errors import Code, code_of
    from services.gateway.downstream import downstream_error

    def error(code: grpc.StatusCode, message: str) -> Exception:
        return _scenario_error(svc_pb.ScenarioError(code=code.value[0], message=message))

    late = error(grpc.StatusCode.DEADLINE_EXCEEDED, "too little of the call's deadline was left")
    assert isinstance(late, TimedOut)
    assert code_of(downstream_error(late, "optimizer")) == Code.DEADLINE_EXCEEDED
    assert isinstance(error(grpc.StatusCode.UNAVAILABLE, "no replica"), Unreachable)
    assert isinstance(error(grpc.StatusCode.INTERNAL, "Traceback ...\nboom"), RemoteError)
