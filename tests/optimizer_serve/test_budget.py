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
