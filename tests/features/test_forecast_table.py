"""The planner's forecast table: one column per served level, ascending, a clear error otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.common.errors import FailedPrecondition
from services.common.quantiles import QUANTILE_COLUMNS, QUANTILES
from tests.features.conftest import START


def _predict(width: int):
    def predict(name: str, arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        n = len(next(iter(arrays.values())))
        # deliberately crossing columns: the table must come out ascending
        q = np.tile(np.arange(width, 0, -1, dtype=np.float32), (n, 1))
        return {"quantiles": q}, 4

    return predict


def test_one_column_per_level_ascending(frames) -> None:
    from services.planning.predictions import forecast_demand, quantile_matrix

    inputs = [("family_id", "string"), ("horizon", "float32")]
    table, version = forecast_demand(
        frames, START + pd.Timedelta(weeks=60), ["V1", "V4"], 3, _predict(7), inputs
    )
    assert version == 4 and len(table) == 6
    assert list(table.columns) == ["variant_id", "target_week", *QUANTILE_COLUMNS, "mean"]
    assert table.iloc[0][list(QUANTILE_COLUMNS)].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert table["mean"].tolist() == pytest.approx([4.0] * 6)  # symmetric: the mean is the P50
    assert quantile_matrix(table).shape == (6, len(QUANTILES))
    three, _ = forecast_demand(
        frames, START + pd.Timedelta(weeks=60), ["V1"], 1, _predict(3), inputs,
        levels=(0.1, 0.5, 0.9),
    )  # fmt: skip
    assert list(three.columns[2:]) == ["p10", "p50", "p90", "mean"]


def test_a_model_with_other_levels_is_a_clear_error(frames) -> None:
    from services.planning.predictions import forecast_demand

    with pytest.raises(FailedPrecondition, match=r"shape \[3, 3\].*retrain"):
        forecast_demand(
            frames, START + pd.Timedelta(weeks=60), ["V1"], 3, _predict(3),
            [("family_id", "string")],
        )  # fmt: skip


def test_the_mean_is_the_mean_of_the_distribution_the_planner_samples() -> None:
    """What a forecast's units average to, the figure its bias is judged by: above the P50 of a
    skewed count, by hand where a tail is clamped at 0, and what the scenario sampler's draws
    average to."""
    from scipy.stats import poisson

    from services.common.quantiles import mean, sample

    pois = poisson.ppf(QUANTILES, 1.5)[None, :]  # 0 0 1 1 2 3 4: P50 1
    assert mean(pois)[0] == pytest.approx(1.5, rel=0.02)
    # levels 0.1/0.5/0.9 at 0.1/1/3: the lower segment, continued to level 0, reaches -0.125
    # and counts only above 0 (a triangle of 0.1 - 0.125 / 2.25 by 0.1), then 0.22, 0.8, 0.325
    rows = np.array([[0.1, 1.0, 3.0], [0.0, 1.0, 5.0]])
    by_hand = [0.5 * (0.1 - 0.125 / 2.25) * 0.1 + 0.22 + 0.8 + 0.325, 0.2 + 1.2 + 0.55]
    assert mean(rows, (0.1, 0.5, 0.9)) == pytest.approx(by_hand)
    draws = sample(rows, 200_000, np.random.default_rng(1), (0.1, 0.5, 0.9))
    se = draws.std(axis=1) / np.sqrt(draws.shape[1])
    assert np.all(np.abs(draws.mean(axis=1) - mean(rows, (0.1, 0.5, 0.9))) < 4 * se)
