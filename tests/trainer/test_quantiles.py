"""The quantile levels' one definition: columns, interpolation, sampling, never crossing."""

from __future__ import annotations

import numpy as np
import pytest

from services.common import quantiles as Q


def test_default_levels_and_their_columns() -> None:
    assert Q.QUANTILES == (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    assert Q.QUANTILE_COLUMNS == ("p05", "p10", "p25", "p50", "p75", "p90", "p95")
    assert Q.QUANTILES[Q.MEDIAN] == 0.5 and Q.column(0.975) == "p97.5"
    with pytest.raises(ValueError, match="strictly ascending"):
        Q.check_levels((0.5, 0.1))
    with pytest.raises(ValueError, match="not one of the served levels"):
        Q.index(0.2)


def test_interpolation_returns_the_served_quantiles_and_lines_between_them() -> None:
    q = np.array([[1.0, 2.0, 3.0, 5.0, 7.0, 9.0, 12.0]])
    assert Q.interpolate(q, Q.QUANTILES, Q.QUANTILES)[0].tolist() == q[0].tolist()
    mid = Q.interpolate(q, Q.QUANTILES, [0.3, 0.8, 0.0, 1.0])[0]
    # 0.3: 3 + (0.05 / 0.25) * 2; 0.8: 7 + (0.05 / 0.15) * 2; the outer segments' slopes
    # continue to 0 (1 - 0.05 * 20 = 0) and 1 (12 + 0.05 * 60 = 15)
    assert mid == pytest.approx([3.4, 7.0 + 2.0 / 3.0, 0.0, 15.0])


def test_interpolation_agrees_with_the_optimizers_scenarios() -> None:
    from optimizer.core.scenarios import inverse_cdf

    q = np.array([[0.0, 0.5, 2.0, 4.0, 6.5, 9.0, 11.0], [3.0, 3.0, 4.0, 6.0, 6.0, 8.0, 8.5]])
    u = np.linspace(0.0, 1.0, 41)
    ours = Q.interpolate(q, Q.QUANTILES, u)
    for i in range(2):
        assert ours[i] == pytest.approx(inverse_cdf(Q.QUANTILES, q[i], u))


def test_samples_hold_the_served_levels() -> None:
    q = np.array([[1.0, 2.0, 3.0, 5.0, 7.0, 9.0, 12.0]])
    draws = Q.sample(q, 40_000, np.random.default_rng(3))
    assert draws.shape == (1, 40_000) and draws.min() >= 0.0
    shares = [(draws[0] <= v).mean() for v in q[0]]
    assert shares == pytest.approx(list(Q.QUANTILES), abs=0.01)
