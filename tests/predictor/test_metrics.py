"""Forecast metrics and baselines against hand-computed answers (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.training import metrics as M


def test_wape_pinball_coverage_known_values() -> None:
    y = np.array([10.0, 0.0, 5.0, 5.0])
    q = np.array([[8, 10, 12], [0, 1, 2], [6, 7, 9], [1, 5, 6]], dtype=float)
    # |errors| of P50: 0, 1, 2, 0 -> 3 / 20
    assert M.wape(y, q[:, 1]) == pytest.approx(0.15)
    # inside [P10, P90]: rows 0, 1 (0 >= 0), 3; row 2 (5 < 6) is out
    assert M.coverage(y, q) == pytest.approx(0.75)
    # pinball of row 2: P10 err -1 -> 0.9; P50 err -2 -> 1.0; P90 err -4 -> 0.4
    assert M.pinball(y[2:3], q[2:3]) == pytest.approx((0.9 + 1.0 + 0.4) / 3)
    s = M.score(y, q[:, 1], q, mase_scale=2.0)
    assert s.mase == pytest.approx(0.75 / 2.0) and s.rows == 4
    assert M.score(np.array([]), np.array([])).rows == 0


def test_mase_scale_uses_only_weeks_on_sale() -> None:
    hist = np.array([[0, 0, 4, 6, 5], [1, 3, 3, 3, 3]], dtype=float)
    on_sale = np.array([[False, False, True, True, True], [True] * 5])
    # diffs on sale: series 0: 2, 1; series 1: 2, 0, 0, 0 -> 5 / 6
    assert M.mase_scale(hist, on_sale) == pytest.approx(5 / 6)


def test_seasonal_naive_falls_back_to_last_week_for_young_series() -> None:
    rows = pd.DataFrame({"age_weeks": [60, 10], "seasonal_52": [7.0, 0.0], "lag_1": [3.0, 4.0]})
    assert M.seasonal_naive(rows).tolist() == [7.0, 4.0]


def test_interval_calibration_reaches_the_target_tails() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(10, 2, 20_000)
    too_narrow = np.column_stack(
        [np.full_like(y, 9.0), np.full_like(y, 10.0), np.full_like(y, 11.0)]
    )
    a, b = M.fit_calibration(too_narrow, y)
    p10, p90 = 10 - a * 1.0, 10 + b * 1.0
    assert np.mean(y < p10) == pytest.approx(0.1, abs=0.01)
    assert np.mean(y > p90) == pytest.approx(0.1, abs=0.01)
    assert a == pytest.approx(2 * 1.2816, rel=0.05)  # the normal's 10% quantile is 1.28 sd


def test_mape_ignores_zero_truth() -> None:
    assert M.mape(np.array([11.0, 5.0, 3.0]), np.array([10.0, 0.0, 4.0])) == pytest.approx(
        (0.1 + 0.25) / 2
    )
