"""The planning problem built from a synthetic data set, solved with the true demand and costs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from optimizer import SolveOptions, solve
from services.common.errors import InvalidArgument
from services.datagen.generate import generate
from services.features.tables import read_dataset_folder, read_truth
from services.planning import PlanRequest, build_problem, variant_bom

HORIZON = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("tiny")
    generate("tiny", 5, out, "csv")
    return read_dataset_folder(out), read_truth(Path(out))


def oracle_inputs(frames: dict, truth: dict) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    """The true expected demand as the P50 (P10/P90 around it) and the true cost function."""
    demand = truth["expected_demand"].copy()
    demand["target_week"] = pd.to_datetime(demand["week"])
    last = pd.to_datetime(frames["orders"]["order_date"]).max()
    start = (last - pd.Timedelta(days=last.weekday())).normalize() + pd.Timedelta(days=7)
    forecast = demand.assign(p10=demand["mean"] * 0.6, p50=demand["mean"], p90=demand["mean"] * 1.5)
    return start, forecast, truth["unit_cost"]


def test_problem_has_the_data_sets_structure(dataset: tuple[dict, dict]) -> None:
    frames, truth = dataset
    start, forecast, costs = oracle_inputs(frames, truth)
    problem = build_problem(frames, forecast, costs, PlanRequest(start_week=start, horizon=HORIZON))
    assert len(problem.periods) == HORIZON
    assert problem.periods[0] == str(start.date())
    assert {ln.id for ln in problem.lines} == set(frames["lines"]["line_id"])
    # a route for exactly every eligible (variant, line) pair
    fam = frames["variants"].set_index("variant_id")["family_id"]
    eligible = frames["line_eligibility"]
    expected = sum(int((eligible["family_id"] == fam[v.id]).sum()) for v in problem.variants)
    assert len(problem.routes) == expected
    # the service level's quantile is what the model plans for; P50 is the true mean
    v = problem.variants[0]
    mean = truth["expected_demand"].set_index(["variant_id", "week"])["mean"]
    assert v.demand[0][1] == pytest.approx(mean[(v.id, problem.periods[0])], rel=1e-6)


def test_bom_sums_the_rows_a_variant_matches() -> None:
    bom = pd.DataFrame(
        {
            "family_id": ["SHR", "SHR", "SHR", "TRS"],
            "material_id": ["FAB-COTTON", "FAB-COTTON", "BTN", "BTN"],
            "quantity_per_unit": [1.5, 1.7, 8, 1],
            "condition": ["fabric=cotton;size=m", "fabric=cotton;size=l", "", ""],
        }
    )
    variant = {"family_id": "SHR", "attr_fabric": "cotton", "attr_size": "l"}
    assert variant_bom(variant, bom) == {"FAB-COTTON": 1.7, "BTN": 8.0}


def test_oracle_plan_is_profitable_and_respects_capacity(dataset: tuple[dict, dict]) -> None:
    frames, truth = dataset
    start, forecast, costs = oracle_inputs(frames, truth)
    problem = build_problem(
        frames, forecast, costs, PlanRequest(start_week=start, horizon=HORIZON, service_level=0.5)
    )
    plan = solve(problem, SolveOptions(time_limit_s=30, mip_rel_gap=0.01))
    assert plan.status in ("optimal", "feasible")
    assert plan.costs.profit > 0
    for lp in plan.line_periods:
        assert lp.hours_used <= lp.capacity_hours + lp.overtime_hours + 1e-6


def test_unknown_variant_names_the_field(dataset: tuple[dict, dict]) -> None:
    frames, truth = dataset
    start, forecast, costs = oracle_inputs(frames, truth)
    with pytest.raises(InvalidArgument, match="unknown variant 'NOPE'") as err:
        build_problem(frames, forecast, costs, PlanRequest(start_week=start, variant_ids=("NOPE",)))
    assert err.value.field == "variant_ids"
