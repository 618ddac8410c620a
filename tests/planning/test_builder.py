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
    # the service level's quantile is what the model plans for; P50 is the true mean (of every
    # unit ordered: the family of this variant has no firm order due in the first week, else
    # its P50 would be net of its share of them, test_firm_orders_are_netted_out_...)
    v = problem.variants[0]
    assert not [o for o in problem.orders if o.due_period == 0 and fam[o.variant] == fam[v.id]]
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


def _two_family_frames(orders: list[tuple[str, str, int, str, str, str]]) -> dict:
    """Three variants (SHR-1, SHR-2 of family SHR; TRS-1 of TRS) on one line, and ``orders``
    rows (order_id, variant_id, quantity, order_date, due_date, kind)."""
    return {
        "variants": pd.DataFrame(
            {
                "variant_id": ["SHR-1", "SHR-2", "TRS-1"],
                "family_id": ["SHR", "SHR", "TRS"],
                "list_price": [60.0, 60.0, 80.0],
                "launch_date": ["2025-01-06"] * 3,
            }
        ),
        "lines": pd.DataFrame(
            {
                "line_id": ["L1"],
                "capacity_hours": [40.0],
                "overtime_hours_max": [8.0],
                "overtime_cost_per_hour": [30.0],
                "setup_hours": [0.5],
                "setup_cost": [20.0],
            }
        ),
        "line_eligibility": pd.DataFrame({"family_id": ["SHR", "TRS"], "line_id": ["L1", "L1"]}),
        "materials": pd.DataFrame({"material_id": ["FAB"], "unit_cost": [5.0], "stock": [500.0]}),
        "bom": pd.DataFrame(
            {
                "family_id": ["SHR", "TRS"],
                "material_id": ["FAB", "FAB"],
                "quantity_per_unit": [1.5, 1.2],
                "condition": ["", ""],
            }
        ),
        "orders": pd.DataFrame(
            orders,
            columns=["order_id", "variant_id", "quantity", "order_date", "due_date", "kind"],
        ).assign(unit_price=70.0),
    }


def test_firm_orders_are_netted_out_of_the_forecast_of_every_unit_pooled_per_family() -> None:
    start = pd.Timestamp("2026-01-05")  # a Monday; weeks 0 and 1 are planned
    frames = _two_family_frames(
        [
            # placed before the first week, due in week 0: firm, 3 units of family SHR
            ("O1", "SHR-1", 3, "2025-12-10", "2026-01-07", "custom"),
            # placed before, due in week 1: firm, 12 units, more than TRS's forecast of the week
            ("O2", "TRS-1", 12, "2025-12-20", "2026-01-14", "custom"),
            # placed in week 0 (not yet firm when planning) and a stock order: nothing to net
            ("O3", "SHR-2", 6, "2026-01-06", "2026-01-13", "custom"),
            ("O4", "SHR-1", 2, "2025-12-30", "2026-01-05", "stock"),
        ]
    )
    quantiles = {"SHR-1": (2.0, 4.0, 6.0), "SHR-2": (0.0, 2.0, 4.0), "TRS-1": (1.0, 3.0, 5.0)}
    forecast = pd.DataFrame(
        [(v, start + k * pd.Timedelta(days=7), *q) for v, q in quantiles.items() for k in range(2)],
        columns=["variant_id", "target_week", "p10", "p50", "p90"],
    )
    costs = pd.DataFrame(
        {
            "variant_id": ["SHR-1", "SHR-2", "TRS-1"],
            "line_id": ["L1"] * 3,
            "unit_cost": [20.0, 20.0, 30.0],
            "hours_per_unit": [0.5, 0.5, 0.7],
        }
    )
    request = PlanRequest(start_week=start, horizon=2)
    problem = build_problem(frames, forecast, costs, request)
    demand = {v.id: v.demand for v in problem.variants}
    # week 0: SHR's 3 firm units shared by the variants' forecast means 4 and 2: 2 and 1 units,
    # taken from every quantile of each (floored at 0)
    assert demand["SHR-1"][0] == (0.0, 2.0, 4.0)
    assert demand["SHR-2"][0] == (0.0, 1.0, 3.0)
    # TRS has no firm order due in week 0; SHR none in week 1 (O3 is not placed yet)
    assert demand["TRS-1"][0] == (1.0, 3.0, 5.0)
    assert demand["SHR-1"][1] == (2.0, 4.0, 6.0)
    assert demand["SHR-2"][1] == (0.0, 2.0, 4.0)
    # week 1: TRS's 12 firm units exceed its whole forecast: nothing of it is left
    assert demand["TRS-1"][1] == (0.0, 0.0, 0.0)
    # the firm orders themselves enter unchanged, each in its due week
    assert sorted((o.id, o.variant, o.quantity, o.due_period) for o in problem.orders) == [
        ("O1", "SHR-1", 3.0, 0),
        ("O2", "TRS-1", 12.0, 1),
    ]
    # a forecast already of the demand beyond the firm orders (the simulator's oracle, naive)
    # enters as it is
    plain = build_problem(frames, forecast, costs, request, net_firm_orders=False)
    assert {v.id: v.demand for v in plain.variants} == {v: (q, q) for v, q in quantiles.items()}
    assert len(plain.orders) == 2


def test_the_cost_models_learned_setups_and_changeovers_are_what_the_plan_pays() -> None:
    """A cost model that learned the fixed cost of a run, the setup hours and the family
    changeovers from the shop-floor records hands them to the planner; a figure it has no
    evidence for (missing, not a number, 0) leaves the plant's standard."""
    start = pd.Timestamp("2026-01-05")
    frames = _two_family_frames([("O1", "SHR-1", 2, "2025-12-30", "2026-01-05", "stock")])
    frames["family_setups"] = pd.DataFrame(
        {"line_id": ["L1", "L1"], "family_id": ["SHR", "TRS"], "setup_hours": [3.0, 2.0],
         "setup_cost": [300.0, 200.0]}
    )  # fmt: skip
    forecast = pd.DataFrame(
        [(v, start, 4.0, 5.0, 6.0) for v in ("SHR-1", "SHR-2", "TRS-1")],
        columns=["variant_id", "target_week", "p10", "p50", "p90"],
    )
    costs = pd.DataFrame(
        {
            "variant_id": ["SHR-1", "SHR-2", "TRS-1"],
            "family_id": ["SHR", "SHR", "TRS"],
            "line_id": ["L1"] * 3,
            "unit_cost": [20.0, 20.0, 30.0],
            "hours_per_unit": [0.5, 0.5, 0.7],
            "run_cost": [35.0, 45.0, float("nan")],
            "setup_hours": [0.8, 0.0, 0.6],
            "family_setup_hours": [2.5, 2.5, 0.0],
            "family_setup_cost": [260.0, 260.0, 0.0],
        }
    )
    request = PlanRequest(start_week=start, horizon=1, service_level=0.5)
    problem = build_problem(frames, forecast, costs, request)
    routes = {r.variant: (r.setup_hours, r.setup_cost) for r in problem.routes}
    # learned where there is a number above 0; None = the line's standard (0.5 h, 20 EUR)
    assert routes == {"SHR-1": (0.8, 35.0), "SHR-2": (None, 45.0), "TRS-1": (0.6, None)}
    # SHR's changeover as learned, TRS's (nothing learned) the family_setups table's standard
    assert {(f.family, f.hours, f.cost) for f in problem.family_setups} == {
        ("SHR", 2.5, 260.0),
        ("TRS", 2.0, 200.0),
    }
    # the plan pays them: every variant is worth making (margin 30+ a unit on 5 units)
    plan = solve(problem, SolveOptions(time_limit_s=10, mip_rel_gap=0.0, explain=False))
    made = {pl.variant for pl in plan.lines if pl.setup}
    assert made == {"SHR-1", "SHR-2", "TRS-1"}
    assert plan.costs.family_setup == pytest.approx(260.0 + 200.0)
    assert plan.costs.setup == pytest.approx(35.0 + 45.0 + 20.0 + 260.0 + 200.0)
    # a cost table without the learned columns: the standards alone, as before
    plain = build_problem(frames, forecast, costs[["variant_id", "line_id", "unit_cost",
                                                   "hours_per_unit"]], request)  # fmt: skip
    assert {(r.setup_hours, r.setup_cost) for r in plain.routes} == {(None, None)}
    assert {(f.family, f.hours, f.cost) for f in plain.family_setups} == {
        ("SHR", 3.0, 300.0),
        ("TRS", 2.0, 200.0),
    }
