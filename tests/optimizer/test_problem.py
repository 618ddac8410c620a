"""Malformed problems are rejected with the field that is wrong; types survive JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from optimizer import (
    FirmOrder,
    Line,
    Plan,
    PlanningProblem,
    ProblemInvalid,
    Route,
    SolveOptions,
    Variant,
    solve,
)
from optimizer.core.synthetic import synthetic_problem


def base() -> PlanningProblem:
    return PlanningProblem(
        periods=("w1", "w2"),
        variants=(Variant("A", price=(10.0, 10.0), demand=((5.0,), (5.0,))),),
        lines=(Line("L", capacity_hours=(8.0, 8.0)),),
        routes=(Route("A", "L"),),
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda p: replace(p, lines=(Line("L", capacity_hours=(8.0, -1.0)),)),
            "lines[0].capacity_hours[1]",
        ),
        (lambda p: replace(p, orders=(FirmOrder("o1", "ZZ", 3.0, 0),)), "orders[0].variant"),
        (lambda p: replace(p, periods=()), "periods"),
        (lambda p: replace(p, routes=(Route("A", "nope"),)), "routes[0].line"),
        (lambda p: replace(p, orders=(FirmOrder("o1", "A", 3.0, 7),)), "orders[0].due_period"),
        (
            lambda p: replace(p, variants=(Variant("A", (10.0,), ((5.0,), (5.0,))),)),
            "variants[0].price",
        ),
        (lambda p: replace(p, mode="clsp"), "allow_backlog"),
    ],
)
def test_validation_names_the_field(change, field: str) -> None:
    with pytest.raises(ProblemInvalid) as err:
        solve(change(base()), SolveOptions(time_limit_s=5))
    assert err.value.field == field
    assert err.value.reason


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ProblemInvalid) as err:
        solve(base(), SolveOptions(time_limit_s=0))
    assert err.value.field == "options.time_limit_s"


def test_problem_and_plan_round_trip_through_json() -> None:
    problem = synthetic_problem(4, 3, 2, seed=3)
    again = PlanningProblem.from_dict(json.loads(json.dumps(problem.to_dict())))
    assert again == problem
    plan = solve(problem, SolveOptions(time_limit_s=20))
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_from_dict_rejects_unknown_fields() -> None:
    data = base().to_dict()
    data["colour"] = "red"
    with pytest.raises(ProblemInvalid) as err:
        PlanningProblem.from_dict(data)
    assert "colour" in err.value.reason
