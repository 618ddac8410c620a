"""Proto <-> dataclass conversion, scenarios, knobs and the serve config, without Ray."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import grpc
import pytest
from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
from tailorline.optimizer.v1 import problem_pb2 as pb

from optimizer.core.errors import Infeasible, ProblemInvalid
from optimizer.core.problem import (
    WEEK_CORRELATION,
    Bottleneck,
    CostBreakdown,
    Diagnosis,
    Explanation,
    Kpis,
    LinePeriod,
    Plan,
    PlanLine,
    Shortage,
    SolveOptions,
    VariantPeriod,
    Violation,
)
from optimizer.serving import convert
from optimizer.serving.status import Failure, describe, run_solve


def test_problem_round_trip_keeps_every_field(problems: dict[str, Any]) -> None:
    for name in ("tiny", "rich", "infeasible"):
        problem = problems[name]()
        wire = pb.PlanningProblem.FromString(convert.problem_to_proto(problem).SerializeToString())
        assert convert.problem_from_proto(wire) == problem


def test_expected_profit_fields_round_trip(problems: dict[str, Any]) -> None:
    problem = problems["tiny"]()
    paths = tuple((1.0 + k,) * len(problem.periods) for k in range(3))
    problem = replace(
        problem,
        demand_mode="expected_profit",
        scenario_count=3,
        scenario_seed=11,
        week_correlation=0.2,
        variants=(replace(problem.variants[0], demand_scenarios=paths), *problem.variants[1:]),
    )
    wire = pb.PlanningProblem.FromString(convert.problem_to_proto(problem).SerializeToString())
    assert convert.problem_from_proto(wire) == problem
    plan = replace(
        _plan(), kpis=replace(_plan().kpis, scenarios=3, profit_p10=-2.5, profit_p90=9.0)
    )
    assert convert.plan_from_proto(convert.plan_to_proto(plan)) == plan


def test_absent_optional_fields_take_the_python_defaults() -> None:
    msg = pb.PlanningProblem(
        periods=["w1"],
        variants=[pb.Variant(id="A", price=[1.0], demand=[pb.PeriodDemand(values=[2.0])])],
        lines=[pb.Line(id="L", capacity_hours=[8.0])],
        routes=[pb.Route(variant="A", line="L")],
        orders=[pb.FirmOrder(id="O", variant="A", quantity=1.0)],
    )
    problem = convert.problem_from_proto(msg)
    assert problem.variants[0].service_level == 0.5
    assert problem.routes[0].hours_per_unit == 1.0
    assert problem.routes[0].setup_hours is None and problem.routes[0].setup_cost is None
    assert problem.orders[0].price is None
    assert problem.allow_backlog is True
    assert problem.quantiles == (0.5,)
    assert problem.mode == "planning"
    assert problem.demand_mode == "quantile" and problem.scenario_count == 32
    assert problem.week_correlation == WEEK_CORRELATION == 0.3


def test_unknown_enum_value_names_the_field() -> None:
    msg = pb.PlanningProblem(periods=["w1"])
    msg.mode = 7  # type: ignore[assignment]  # a value a newer client might send
    with pytest.raises(ProblemInvalid) as err:
        convert.problem_from_proto(msg)
    assert err.value.field == "problem.mode"


def test_validation_errors_are_paths_into_the_request(problems: dict[str, Any]) -> None:
    msg = convert.problem_to_proto(problems["tiny"]())
    msg.lines[0].capacity_hours[2] = -1.0
    with pytest.raises(ProblemInvalid) as err:
        convert.validated_problem(convert.problem_from_proto(msg))
    assert err.value.field == "problem.lines[0].capacity_hours[2]"
    assert "must be >= 0" in err.value.reason


def _plan() -> Plan:
    return Plan(
        status="feasible",
        objective=123.5,
        best_bound=130.0,
        gap=0.05,
        method="relax_and_fix",
        mode="planning",
        sense="max",
        build_time_s=0.1,
        translate_time_s=0.2,
        solve_time_s=0.3,
        total_time_s=0.7,
        lines=(PlanLine(variant="A", line="L1", period=0, quantity=5.0, setup=True),),
        variants=(
            VariantPeriod(
                variant="A",
                period=0,
                demand=5.0,
                firm_due=1.0,
                sales=4.0,
                inventory=0.0,
                backlog=0.0,
                lost_sales=1.0,
            ),
        ),
        line_periods=(
            LinePeriod(
                line="L1",
                period=0,
                hours_used=6.0,
                capacity_hours=6.0,
                overtime_hours=0.0,
                utilisation=1.0,
                shadow_price=2.5,
            ),
        ),
        costs=CostBreakdown(revenue=200.0, production=40.0, setup=5.0, lost_sales=1.0),
        kpis=Kpis(fill_rate=0.8, setups=1, total_production=5.0, max_utilisation=1.0),
        explanation=Explanation(
            bottlenecks=(Bottleneck(line="L1", period=0, utilisation=1.0, shadow_price=2.5),),
            shortages=(
                Shortage(
                    variant="A", period=0, quantity=1.0, kind="lost", reason="capacity", detail="x"
                ),
                Shortage(
                    variant="A", period=1, quantity=2.0, kind="late", reason="due_date", detail=""
                ),
            ),
            notes=("time limit reached",),
        ),
        message="ok",
    )


def test_plan_round_trip() -> None:
    plan = _plan()
    assert convert.plan_from_proto(convert.plan_to_proto(plan)) == plan
    empty = Plan(status="no_solution", objective=None, best_bound=None, gap=None)
    back = convert.plan_from_proto(convert.plan_to_proto(empty))
    assert back == empty and back.objective is None


def test_diagnosis_round_trip_and_description() -> None:
    d = Diagnosis(
        summary="orders beyond capacity",
        violations=(
            Violation(constraint="capacity[L1,0]", amount=2.0, detail=""),
            Violation(constraint="due_date[B,0]", amount=98.0, detail="98 units late"),
        ),
    )
    assert convert.diagnosis_from_proto(convert.diagnosis_to_proto(d)) == d
    text = describe(d)
    assert text.startswith("infeasible: orders beyond capacity; violated: due_date[B,0] (98")
    assert "capacity[L1,0] (2)" in text


def test_run_solve_maps_user_errors_and_lets_bugs_through() -> None:
    def raise_invalid() -> Plan:
        raise ProblemInvalid("lines[0].capacity_hours[0]", "must be >= 0")

    def raise_infeasible() -> Plan:
        raise Infeasible(Diagnosis(summary="too much firm demand"))

    failure = run_solve(raise_invalid)
    assert isinstance(failure, Failure) and failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.field == "lines[0].capacity_hours[0]"
    failure = run_solve(raise_infeasible)
    assert isinstance(failure, Failure) and failure.code == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.diagnosis is not None and "too much firm demand" in failure.details
    with pytest.raises(ZeroDivisionError):
        run_solve(lambda: 1 / 0)  # type: ignore[arg-type,return-value]


def test_options_only_explicit_fields_override() -> None:
    msg = pb.SolveOptions(time_limit_s=5.0, method=pb.SOLVE_METHOD_FIX_AND_OPTIMIZE)
    overrides = convert.options_overrides_from_proto(msg)
    assert overrides == {"time_limit_s": 5.0, "method": "fix_and_optimize"}
    defaults = SolveOptions(time_limit_s=60.0, mip_rel_gap=0.01, threads=2)
    merged = convert.options_from_overrides(defaults, overrides)
    assert (merged.time_limit_s, merged.mip_rel_gap, merged.threads) == (5.0, 0.01, 2)
    with pytest.raises(ProblemInvalid) as err:
        convert.options_from_overrides(defaults, {"time_limit_s": -1.0})
    assert err.value.field == "options.time_limit_s"
    options = SolveOptions(time_limit_s=7.0, threads=3, method="relax_and_fix", window=4)
    again = convert.options_from_overrides(
        SolveOptions(), convert.options_overrides_from_proto(convert.options_to_proto(options))
    )
    assert again == options


def test_scenarios_apply_to_the_base_problem(problems: dict[str, Any]) -> None:
    base = problems["tiny"]()
    s = svc_pb.Scenario(id="x", service_level=0.9, demand_factor=2.0, capacity_factors={"L1": 0.5})
    p = convert.scenario_problem(base, s, "scenarios[0]")
    assert all(v.service_level == 0.9 for v in p.variants)
    assert p.variants[1].demand[0] == (16.0,)
    assert p.lines[0].capacity_hours == (20.0, 20.0, 20.0)
    own = svc_pb.Scenario(problem=convert.problem_to_proto(problems["rich"]()))
    assert convert.scenario_problem(base, own, "scenarios[1]") == problems["rich"]()
    paths = tuple((3.0,) * len(base.periods) for _ in range(2))
    given = replace(
        base,
        demand_mode="expected_profit",
        scenario_count=2,
        variants=tuple(replace(v, demand_scenarios=paths) for v in base.variants),
    )
    doubled = convert.scenario_problem(given, svc_pb.Scenario(demand_factor=2.0), "scenarios[2]")
    assert doubled.variants[0].demand_scenarios[0][0] == 6.0
    assert doubled.demand_mode == "expected_profit"
    # a service-level what-if of an expected-profit plan is that quantile's plan, not the base
    # plan again (expected-profit mode has no service level)
    p70 = convert.scenario_problem(given, svc_pb.Scenario(service_level=0.7), "scenarios[3]")
    assert p70.demand_mode == "quantile" and all(v.service_level == 0.7 for v in p70.variants)


@pytest.mark.parametrize(
    ("scenario", "field", "reason"),
    [
        (
            svc_pb.Scenario(capacity_factors={"L9": 1.0}),
            'scenarios[2].capacity_factors["L9"]',
            "L9",
        ),
        (
            svc_pb.Scenario(capacity_factors={"L1": -1.0}),
            'scenarios[2].capacity_factors["L1"]',
            ">= 0",
        ),
        (svc_pb.Scenario(service_level=1.0), "scenarios[2].service_level", "(0, 1)"),
        (svc_pb.Scenario(demand_factor=float("nan")), "scenarios[2].demand_factor", "finite"),
        (
            svc_pb.Scenario(problem=pb.PlanningProblem(periods=[])),
            "scenarios[2].problem.periods",
            "empty",
        ),
    ],
)
def test_bad_scenarios_name_field_and_reason(
    problems: dict[str, Any], scenario: svc_pb.Scenario, field: str, reason: str
) -> None:
    with pytest.raises(ProblemInvalid) as err:
        convert.scenario_problem(problems["tiny"](), scenario, "scenarios[2]")
    assert err.value.field == field
    assert reason in err.value.reason


def test_scenario_without_any_problem_is_invalid() -> None:
    with pytest.raises(ProblemInvalid) as err:
        convert.scenario_problem(None, svc_pb.Scenario(id="a"), "scenarios[0]")
    assert err.value.field == "scenarios[0].problem"


def test_rich_problem_is_valid(problems: dict[str, Any]) -> None:
    # The round-trip fixture must exercise a problem the server would accept.
    assert convert.validated_problem(replace(problems["rich"]())) == problems["rich"]()
