"""An expected-profit plan draws its scenarios with the week correlation its own store shows
(issue 15): the served forecasts against the units then ordered, read through the Planner on a
store built by datagen -> ingest. No model server: the predictions are fixed numbers, and the
optimizer is not called (the built problem carries the correlation)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from optimizer import WEEK_CORRELATION, solve
from services.common.errors import InvalidArgument
from services.common.quantiles import QUANTILES
from services.planning.request import PlanRequest
from services.planning.service import Planner
from services.store import schema
from tests.planning.stores import tiny_store


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Engine]:
    engine, _ = tiny_store(tmp_path)
    yield engine
    engine.dispose()


def _predict(model: str, arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], int]:
    n = len(next(iter(arrays.values())))
    if model == "demand":
        return {"quantiles": np.tile(np.linspace(0.0, 4.0, len(QUANTILES)), (n, 1))}, 1
    return {"unit_cost": np.full(n, 20.0), "hours_per_unit": np.full(n, 0.1)}, 1


def _planner(engine: Engine, solved: list[Any] | None = None) -> Planner:
    def solve_now(problem: Any, options: Any, _deadline: Any) -> Any:
        assert solved is not None, "not solved here"
        solved.append(problem)
        return solve(problem, options)

    return Planner(
        engine,
        predict=lambda _deadline: _predict,
        inputs=lambda _model, _deadline: [("variant_id", "string")],
        solve=solve_now,
    )


def _serve_overshooting_paths(engine: Engine, planner: Planner, origins: int) -> int:
    """Forecast paths of 3 weeks for every variant from ``origins`` past origins, each far above
    what was ordered in every week: one level error repeated, the strongest correlation."""
    last = planner.store_view().last_order_week
    assert last is not None
    variants = list(planner.store_view().frames["variants"]["variant_id"])
    rows = []
    for o in range(origins):
        first = (last - pd.Timedelta(weeks=4 + 3 * o)).date()
        served_at = datetime.combine(first - timedelta(days=3), datetime.min.time(), UTC)
        for v in variants:
            for k in range(3):
                rows.append(
                    {
                        "variant_id": v, "week": first + timedelta(weeks=k), "model_name": "demand",
                        "model_version": 1, "p10": 900.0, "p50": 1000.0, "p90": 1100.0,
                        "mean": 1000.0, "served_at": served_at,
                    }
                )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(schema.forecasts_served), rows)
    return origins * len(variants)


def _an_import(engine: Engine) -> None:
    """What every import writes last (the Planner re-reads its store after one)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.ingest_runs).values(
                run_id="test", source="test", started_at=now, finished_at=now, counts={}
            )
        )


def test_a_store_without_feedback_plans_at_the_default(store: Engine) -> None:
    planner = _planner(store)
    prepared = planner.prepare(PlanRequest(horizon=2))
    assert prepared.problem.week_correlation == WEEK_CORRELATION
    assert (prepared.week_correlation, prepared.week_correlation_paths) == (WEEK_CORRELATION, 0)


def test_the_plan_draws_its_scenarios_with_the_correlation_its_store_shows(
    store: Engine,
) -> None:
    solved: list[Any] = []
    planner = _planner(store, solved)
    assert planner.week_correlation().rho is None  # nothing served yet: the default
    paths = _serve_overshooting_paths(store, planner, origins=4)
    assert paths >= 50
    # the estimate is cached per import: forecasts served since are read after the next one
    assert planner.week_correlation().rho is None
    _an_import(store)
    measured = planner.week_correlation()
    assert measured.rho == 0.95 and measured.paths == paths  # the cap: one error, repeated

    outcome = planner.create_plan(PlanRequest(horizon=2, time_limit_s=5.0))
    [problem] = solved
    assert problem.week_correlation == 0.95
    assert (outcome.week_correlation, outcome.week_correlation_paths) == (0.95, paths)
    stored = planner.get_plan(outcome.plan_id)
    assert (stored.week_correlation, stored.week_correlation_paths) == (0.95, paths)

    # a caller's value wins; quantile mode draws no scenarios
    asked = planner.prepare(PlanRequest(horizon=2, week_correlation=0.1))
    assert asked.problem.week_correlation == 0.1
    assert (asked.week_correlation, asked.week_correlation_paths) == (0.1, 0)
    quantile = planner.prepare(PlanRequest(horizon=2, demand_mode="quantile"))
    assert (quantile.week_correlation, quantile.week_correlation_paths) == (None, 0)


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan"), float("inf")])
def test_a_week_correlation_outside_zero_to_one_names_the_field(bad: float) -> None:
    with pytest.raises(InvalidArgument) as err:
        PlanRequest(week_correlation=bad).validate()
    assert err.value.field == "week_correlation"
    assert "must lie in [0, 1)" in str(err.value)


def test_a_week_correlation_asked_of_a_quantile_plan_is_refused_not_ignored() -> None:
    with pytest.raises(InvalidArgument) as err:
        PlanRequest(demand_mode="quantile", week_correlation=0.3).validate()
    assert err.value.field == "week_correlation"
    assert "expected_profit only" in str(err.value)
    PlanRequest(demand_mode="quantile").validate()  # the field unset: fine
