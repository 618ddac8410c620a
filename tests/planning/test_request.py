"""The one plan request: its defaults and the checks every entry point shares."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.planning.request import (
    DEFAULT_HORIZON,
    DEFAULT_SERVICE_LEVEL,
    MAX_SCENARIOS,
    PlanRequest,
    Scenario,
    check_initial_inventory,
    check_scenarios,
    check_service_level,
    parse_week,
)
from services.planning.service import solve_options


def _field(fn: object, *args: object, **kwargs: object) -> str | None:
    with pytest.raises(InvalidArgument) as err:
        fn(*args, **kwargs)  # type: ignore[operator]
    return err.value.field


def test_the_defaults_are_the_documented_ones() -> None:
    request = PlanRequest()
    assert (request.horizon, request.service_level) == (DEFAULT_HORIZON, DEFAULT_SERVICE_LEVEL)
    assert (request.horizon, request.service_level) == (12, 0.5)
    assert (request.holding_rate, request.backlog_rate, request.lost_sale_rate) == (
        0.01,
        0.02,
        0.05,
    )
    assert request.allow_backlog and request.time_limit_s is None and request.mip_rel_gap is None
    assert request.validate() is request


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5, math.nan, math.inf])
def test_the_service_level_lies_strictly_between_0_and_1(level: float) -> None:
    assert _field(check_service_level, level) == "service_level"
    assert _field(check_service_level, level, "--service-level") == "--service-level"
    assert _field(PlanRequest(service_level=level).validate) == "service_level"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"horizon": 53}, "horizon"),
        ({"holding_rate": -0.01}, "holding_rate"),
        ({"lost_sale_rate": math.nan}, "lost_sale_rate"),
        ({"time_limit_s": 0.0}, "time_limit_s"),
        ({"mip_rel_gap": 1.0}, "mip_rel_gap"),
        ({"initial_inventory": (("V1", -1.0),)}, "initial_inventory[V1]"),
    ],
)
def test_a_bad_value_names_its_field(changes: dict[str, object], field: str) -> None:
    assert _field(PlanRequest(**changes).validate) == field  # type: ignore[arg-type]


def test_the_gateway_may_allow_fewer_weeks_than_the_maximum() -> None:
    PlanRequest(horizon=52).validate()
    with pytest.raises(InvalidArgument, match="between 1 and 26 weeks"):
        PlanRequest(horizon=27).validate(max_horizon=26)


def test_weeks_are_mondays_and_bad_dates_name_the_field() -> None:
    assert parse_week("2026-03-05", "start_week") == pd.Timestamp("2026-03-02")
    assert PlanRequest(start_week="2026-03-05").first_week() == pd.Timestamp("2026-03-02")
    assert PlanRequest().first_week() is None
    assert _field(parse_week, "not a date", "start_week") == "start_week"
    assert _field(parse_week, "1800-01-01", "origin_week") == "origin_week"


def test_stock_on_hand_is_upper_cased_and_must_be_planned() -> None:
    assert check_initial_inventory([("v1", 2.0)], ["V1", {"variant_id": "NEW-1"}]) == (("V1", 2.0),)
    assert _field(check_initial_inventory, [("V9", 1.0)], ["V1"]) == "initial_inventory[V9]"


def test_scenarios_are_checked_against_the_base_problem() -> None:
    sc = Scenario("a", 0.5, None, (("L1", 2.0), ("L2", 0.5)))
    assert sc.validate("scenarios[0]", ["L1", "L2"]) is sc
    assert sc.record() == {"id": "a", "serviceLevel": 0.5, "capacityFactors": {"L1": 2, "L2": 0.5}}
    assert Scenario().record() == {}
    bad = [
        (Scenario(service_level=1.0), "scenarios[1].service_level"),
        (Scenario(demand_factor=-1.0), "scenarios[1].demand_factor"),
        (Scenario(capacity_factors=(("L9", 1.0),)), 'scenarios[1].capacity_factors["L9"]'),
        (Scenario(capacity_factors=(("L1", math.nan),)), 'scenarios[1].capacity_factors["L1"]'),
    ]
    for s, field in bad:
        assert _field(s.validate, "scenarios[1]", ["L1"]) == field
    assert _field(check_scenarios, []) == "scenarios"
    assert _field(check_scenarios, [Scenario()] * (MAX_SCENARIOS + 1)) == "scenarios"


def test_a_scenario_id_given_twice_names_the_second() -> None:
    from services.planning.request import check_scenarios

    with pytest.raises(InvalidArgument) as err:
        check_scenarios([Scenario(id="1"), Scenario(), Scenario()])  # the 2nd is known as "1"
    assert err.value.field == "scenarios[1].id"
    check_scenarios([Scenario(id="a"), Scenario()])


def test_the_solver_gets_a_share_of_the_deadline_that_its_whole_solve_fits() -> None:
    """An expected-profit solve takes up to 1.7x its time limit in all, a quantile one up to 1.3x
    (bench/bench_time_limit.py): each gets a share of what is left of the deadline (less the 1 s
    margin) that leaves time for the forecast, so a plan found comes back before the deadline."""

    deadline = time.monotonic() + 21.0  # 20 s after the margin
    ep = solve_options(PlanRequest(demand_mode="expected_profit"), deadline)
    q = solve_options(PlanRequest(demand_mode="quantile"), deadline)
    assert ep is not None and q is not None
    assert ep.time_limit_s == pytest.approx(9.0, abs=0.05)
    assert q.time_limit_s == pytest.approx(12.0, abs=0.05)
    assert 1.7 * ep.time_limit_s <= 0.8 * 20 and 1.3 * q.time_limit_s <= 0.8 * 20
    # a request's own, shorter limit stands; no deadline: the request's limit as it is
    assert solve_options(PlanRequest(time_limit_s=5.0), deadline).time_limit_s == 5.0
    assert solve_options(PlanRequest(time_limit_s=30.0), None).time_limit_s == 30.0
