"""Forecast metrics and baselines against hand-computed answers (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.common.quantiles import MEDIAN, QUANTILES
from services.training import metrics as M


def test_wape_pinball_coverage_known_values() -> None:
    assert QUANTILES == (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    y = np.array([10.0, 0.0, 5.0, 5.0])
    # columns: P05 P10 P25 P50 P75 P90 P95
    q = np.array(
        [
            [7, 8, 9, 10, 11, 12, 13],
            [0, 0, 0.5, 1, 1.5, 2, 3],
            [5, 6, 6.5, 7, 8, 9, 10],
            [0, 1, 3, 5, 5.5, 6, 7],
        ],
        dtype=float,
    )
    p50 = q[:, MEDIAN]
    # |errors| of P50: 0, 1, 2, 0 -> 3 / 20
    assert M.wape(y, p50) == pytest.approx(0.15)
    # inside [P10, P90]: rows 0, 1 (0 >= 0), 3; row 2 (5 < 6) is out
    assert M.coverage(y, q) == pytest.approx(0.75)
    # inside [P05, P95]: every row (row 2: 5 >= 5)
    assert M.coverage(y, q, 0.05, 0.95) == pytest.approx(1.0)
    # pinball of row 2 (y below every level: loss (1 - tau) * |err|):
    # 0.95*0 + 0.9*1 + 0.75*1.5 + 0.5*2 + 0.25*3 + 0.1*4 + 0.05*5 = 4.425 over 7 levels
    assert M.pinball(y[2:3], q[2:3]) == pytest.approx(4.425 / 7)
    # row 0 (y = P50, errors +3 +2 +1 0 -1 -2 -3): 0.15 + 0.2 + 0.25 + 0 + 0.25 + 0.2 + 0.15
    assert M.pinball(y[0:1], q[0:1]) == pytest.approx(1.2 / 7)
    s = M.score(y, p50, q, mase_scale=2.0)
    assert s.mase == pytest.approx(0.75 / 2.0) and s.rows == 4
    assert s.coverage_p10_p90 == pytest.approx(0.75)
    assert s.coverage_p05_p95 == pytest.approx(1.0)
    assert s.bias == pytest.approx((0 + 1 + 2 + 0) / 20)
    assert M.score(np.array([]), np.array([])).rows == 0
    with pytest.raises(ValueError, match="3 columns"):  # the old three-level table is refused
        M.score(y, p50, q[:, [1, 3, 5]])


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
    # symmetric around the true median, every level far too narrow for sd 2
    offsets = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    too_narrow = 10.0 + np.broadcast_to(offsets, (len(y), len(offsets)))
    factors = M.fit_calibration(too_narrow, y)
    assert factors.shape == (len(QUANTILES),) and factors[MEDIAN] == 1.0
    for tau, s, d in zip(QUANTILES, factors, offsets, strict=True):
        if tau == 0.5:
            continue
        bound = 10.0 + s * d
        share = np.mean(y < bound) if tau < 0.5 else np.mean(y > bound)
        assert share == pytest.approx(min(tau, 1.0 - tau), abs=0.01), tau
    p10, p90 = QUANTILES.index(0.1), QUANTILES.index(0.9)
    assert factors[p10] == pytest.approx(2 * 1.2816, rel=0.05)  # the normal's 10% is 1.28 sd
    assert factors[p90] == pytest.approx(2 * 1.2816, rel=0.05)
    assert factors[0] == pytest.approx(1.6449, rel=0.05)  # P05 at -1.645 sd = -2 * 1.645


def test_mape_ignores_zero_truth() -> None:
    assert M.mape(np.array([11.0, 5.0, 3.0]), np.array([10.0, 0.0, 4.0])) == pytest.approx(
        (0.1 + 0.25) / 2
    )
