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
    assert list(table.columns) == ["variant_id", "target_week", *QUANTILE_COLUMNS]
    assert table.iloc[0][list(QUANTILE_COLUMNS)].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert quantile_matrix(table).shape == (6, len(QUANTILES))
    three, _ = forecast_demand(
        frames, START + pd.Timedelta(weeks=60), ["V1"], 1, _predict(3), inputs,
        levels=(0.1, 0.5, 0.9),
    )  # fmt: skip
    assert list(three.columns[2:]) == ["p10", "p50", "p90"]


def test_a_model_with_other_levels_is_a_clear_error(frames) -> None:
    from services.planning.predictions import forecast_demand

    with pytest.raises(FailedPrecondition, match=r"shape \[3, 3\].*retrain"):
        forecast_demand(
            frames, START + pd.Timedelta(weeks=60), ["V1"], 3, _predict(3),
            [("family_id", "string")],
        )  # fmt: skip
