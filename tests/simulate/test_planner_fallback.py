"""The gateway planner's fallback when the optimizer fails while explaining a plan."""

from __future__ import annotations

from typing import Any

import pytest

from optimizer import SolveOptions
from services.common.errors import FailedPrecondition
from services.gateway.clients import DownstreamError
from services.gateway.planner import Planner


def _planner(errors: list[Exception]) -> tuple[Planner, list[Any]]:
    calls: list[Any] = []

    def solve(problem: Any, options: Any, deadline: float | None) -> Any:
        calls.append(options)
        if errors:
            raise errors.pop(0)
        return "plan"

    planner = Planner(None, predict=None, inputs=None, solve=solve)  # type: ignore[arg-type]
    return planner, calls


def test_an_internal_optimizer_error_is_solved_again_without_the_explanation() -> None:
    planner, calls = _planner([DownstreamError("optimizer failed: NoDualsError")])
    assert planner.solve("problem", SolveOptions(time_limit_s=5)) == "plan"
    assert [c.explain if c else None for c in calls] == [True, False]
    assert calls[1].time_limit_s == 5


def test_an_infeasible_request_or_a_second_failure_is_not_retried() -> None:
    planner, calls = _planner([FailedPrecondition("infeasible")])
    with pytest.raises(FailedPrecondition):
        planner.solve("problem", None)
    assert len(calls) == 1
    planner, calls = _planner([DownstreamError("a"), DownstreamError("b")])
    with pytest.raises(DownstreamError):
        planner.solve("problem", None)
    assert len(calls) == 2
