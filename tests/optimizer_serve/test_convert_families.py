"""Family changeovers on the wire: the problem's family setups and variant families, and the
plan's changeovers, groupings and changeover cost survive the proto round trip."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tailorline.optimizer.v1 import plan_pb2 as plan_pb
from tailorline.optimizer.v1 import problem_pb2 as pb

from optimizer.core.problem import (
    ChangeoverGroup,
    CostBreakdown,
    Explanation,
    FamilyChangeover,
    FamilySetup,
    Kpis,
    Plan,
)
from optimizer.serving import convert


def test_family_setups_round_trip(problems: dict[str, Any]) -> None:
    problem = problems["rich"]()
    problem = replace(
        problem,
        variants=tuple(replace(v, family=f"F{k % 2}") for k, v in enumerate(problem.variants)),
        family_setups=(
            FamilySetup(problem.lines[0].id, "F0", 4.5, 900.0),
            FamilySetup(problem.lines[0].id, "F1", 3.0, 0.0),
        ),
    )
    wire = pb.PlanningProblem.FromString(convert.problem_to_proto(problem).SerializeToString())
    back = convert.problem_from_proto(wire)
    assert back == problem
    assert back.family_setups[0].cost == 900.0 and back.variants[1].family == "F1"
    # an old client's problem (no families) reads as today's model
    assert convert.problem_from_proto(pb.PlanningProblem()).family_setups == ()


def test_plan_changeovers_round_trip() -> None:
    plan = Plan(
        status="optimal",
        objective=1000.0,
        best_bound=1000.0,
        gap=0.0,
        costs=CostBreakdown(revenue=2000.0, setup=700.0, family_setup=600.0),
        kpis=Kpis(family_setups=1),
        explanation=Explanation(
            notes=("1 family changeovers carry 3 variant setups",),
            groupings=(ChangeoverGroup("F0", "L1", 2, ("V1", "V2", "V3"), 1200.0, 9.0),),
        ),
        changeovers=(FamilyChangeover("F0", "L1", 2, ("V1", "V2", "V3"), 4.5, 600.0),),
    )
    wire = plan_pb.Plan.FromString(convert.plan_to_proto(plan).SerializeToString())
    assert convert.plan_from_proto(wire) == plan
