"""The week correlation of served forecasts' errors: the estimator against known answers, and
read from a store (tests/monitoring/world.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, insert

from services.monitoring.correlation import estimate, measure, path_errors, ratio_of
from services.store import schema
from tests.monitoring import world


def test_the_ratio_of_a_path_by_hand() -> None:
    # var(sum) / sum var = (4 + 12 pairs x 0.3) / 4
    assert ratio_of(0.3, 4) == pytest.approx(1.9)
    assert ratio_of(0.0, 6) == 1.0
    assert ratio_of(0.99, 4) == pytest.approx(4.0, rel=0.01)  # nearly one error repeated


def _paths(rho: float, n: int, count: int, seed: int) -> list[np.ndarray]:
    """Error paths whose weeks share a level: correlation ``rho`` between any two weeks."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        e = np.sqrt(rho) * rng.standard_normal() + np.sqrt(1 - rho) * rng.standard_normal(n)
        # variants of very different sizes: the estimate must not depend on the scale
        out.append(e * rng.choice([0.5, 2.0, 10.0]))
    return out


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6])
def test_the_estimate_recovers_the_correlation_the_errors_were_drawn_with(rho: float) -> None:
    paths = _paths(rho, 4, 6000, seed=7) + _paths(rho, 3, 3000, seed=8)
    got = estimate(paths)
    assert got.rho is not None and got.rho == pytest.approx(rho, abs=0.04)
    assert got.paths == 9000 and got.cells == 6000 * 4 + 3000 * 3


def test_errors_that_cancel_across_weeks_give_zero_and_too_few_paths_give_none() -> None:
    u = np.random.default_rng(9).standard_normal((2000, 5))
    assert estimate(list(u[:, 1:] - 0.9 * u[:, :-1])).rho == 0.0  # each week undoes the last
    few = estimate(_paths(0.3, 4, 10, seed=1))
    assert few.rho is None and few.paths == 10
    # one-week paths carry no evidence about the weeks' correlation
    assert estimate([np.array([1.0])] * 500).rho is None


def _serve_paths(
    engine: Engine, variants: tuple[str, ...], mean: float, weeks: range, hours: int = 0
) -> None:
    """One forecast path per variant, served the Friday before its first week (``hours`` later)."""
    friday = datetime.combine(world.week(weeks[0]) - timedelta(days=3), datetime.min.time(), UTC)
    served_at = friday + timedelta(hours=hours)
    rows = [
        {
            "variant_id": v, "week": world.week(k), "model_name": "demand", "model_version": 1,
            "p10": 0.7 * mean, "p50": mean, "p90": 1.3 * mean, "mean": mean,
            "served_at": served_at,
        }
        for v in variants
        for k in weeks
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(schema.forecasts_served), rows)


def test_a_level_error_every_week_is_read_as_strongly_correlated(engine: Engine) -> None:
    world.fill(engine, n_weeks=6, forecasts=False)
    # family A orders 30 a week; a forecast mean of 28 is 2 short in each of its three weeks
    _serve_paths(engine, ("A1", "A2", "A3"), 28.0, range(1, 4))
    assert [list(p) for p in path_errors(engine)] == [[2.0, 2.0, 2.0]] * 3
    got = measure(engine, min_paths=3, min_origins=1)
    assert got.ratio == pytest.approx(3.0) and got.rho == 0.95  # the cap: one error, repeated


def test_errors_that_alternate_are_read_as_uncorrelated(engine: Engine) -> None:
    world.fill(engine, n_weeks=6, forecasts=False)
    # family B orders 27 and 33 in alternating weeks: a mean of 30 is off by -3, +3, -3
    _serve_paths(engine, ("B1", "B2", "B3"), 30.0, range(1, 4))
    got = measure(engine, min_paths=3, min_origins=1)
    assert got.ratio == pytest.approx(1.0 / 3.0) and got.rho == 0.0


def test_paths_from_too_few_forecast_origins_give_none() -> None:
    paths = _paths(0.3, 4, 400, seed=3)
    # 400 variants' paths from 3 origins: 3 observations of each week's shocks, not 400
    few = estimate(paths, origins=[k % 3 for k in range(400)])
    assert few.rho is None and (few.paths, few.origins) == (400, 3)
    enough = estimate(paths, origins=[k % 4 for k in range(400)])
    assert enough.rho is not None and enough.origins == 4


def test_plans_made_again_for_the_same_weeks_count_once(engine: Engine) -> None:
    world.fill(engine, n_weeks=6, forecasts=False)
    # three plans for the same weeks, an hour apart (what-ifs): one forecast of those weeks, the
    # latest (30 against 30 ordered: no error), and one origin
    _serve_paths(engine, ("A1", "A2"), 28.0, range(1, 4))
    _serve_paths(engine, ("A1", "A2"), 25.0, range(1, 4), hours=1)
    _serve_paths(engine, ("A1", "A2"), 30.0, range(1, 4), hours=2)
    # and a plan a week later: a second origin
    _serve_paths(engine, ("A1",), 28.0, range(2, 5))
    assert sorted(list(p) for p in path_errors(engine)) == [[0.0] * 3, [0.0] * 3, [2.0] * 3]
    got = measure(engine, min_paths=3, min_origins=2)
    assert (got.paths, got.origins) == (3, 2)
    assert measure(engine, min_paths=3, min_origins=3).rho is None


def test_only_complete_and_observed_weeks_count(engine: Engine) -> None:
    world.fill(engine, n_weeks=6, forecasts=False)
    # week 6 is the newest order week, still being filled: the path's last week is left out
    _serve_paths(engine, ("A1",), 28.0, range(4, 7))
    with engine.begin() as conn:
        conn.execute(
            insert(schema.unobserved_weeks).values(
                week=world.week(4), family_id="", variant_id="A1"
            )
        )
    assert [list(p) for p in path_errors(engine)] == [[2.0]]
