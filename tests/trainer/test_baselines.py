"""Each baseline against a known answer on a tiny hand-made series, scored on hold-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.common.quantiles import MEDIAN, QUANTILES

START = pd.Timestamp("2025-01-06")  # a Monday


def _frames(units: list[int], extra: dict[str, list[int]] | None = None) -> dict[str, pd.DataFrame]:
    """One variant ``V1`` selling ``units[w]`` in week ``w`` (one order row per unit-week)."""
    series = {"V1": units, **(extra or {})}
    families = pd.DataFrame(
        {"family_id": ["SHR"], "name": ["Shirts"], "category": ["apparel"], "base_price": [50.0]}
    )
    variants = pd.DataFrame(
        {
            "variant_id": list(series),
            "family_id": ["SHR"] * len(series),
            "list_price": [50.0] * len(series),
            "launch_date": [START] * len(series),
            "attr_fabric": ["cotton"] * len(series),
        }
    )
    orders = [
        {"order_id": f"{v}-{w}", "customer_id": "C", "variant_id": v, "quantity": q,
         "unit_price": 50.0, "order_date": START + pd.Timedelta(weeks=w),
         "due_date": START + pd.Timedelta(weeks=w, days=7), "kind": "stock", "promo": 0}
        for v, values in series.items() for w, q in enumerate(values) if q > 0
    ]  # fmt: skip
    return {"families": families, "variants": variants, "orders": pd.DataFrame(orders)}


# weeks 0-2: 100 (outside the 13-week window), weeks 3-14: 1, week 15 (the origin): 40;
# hold-out weeks 16-19: 2 each
SERIES = [100, 100, 100, *([1] * 12), 40, 2, 2, 2, 2]
ORIGIN = 15


@pytest.fixture(scope="module")
def case():
    from services.features.demand import build_panel
    from services.training.train import holdout_rows

    panel = build_panel(_frames(SERIES))
    rows = holdout_rows(panel, ORIGIN, 4)
    assert len(rows) == 4 and rows["y"].tolist() == [2, 2, 2, 2]
    return panel, rows


def test_last_value_moving_median_and_mean_give_the_hand_computed_numbers(case) -> None:
    from services.training import baselines as B

    panel, rows = case
    assert B.last_value(panel, rows, ORIGIN)[0].tolist() == [40.0] * 4
    median, q = B.moving_median(panel, rows, ORIGIN)
    assert median.tolist() == [1.0] * 4  # twelve 1s and one 40
    assert q is not None and q.shape == (4, len(QUANTILES))
    # P95, linear between the 12th and 13th of 13 sorted weeks: 1 + (0.95 * 12 - 11) * 39
    assert q[0, MEDIAN] == 1.0 and q[0, -1] == pytest.approx(1.0 + 0.4 * 39.0)
    assert B.moving_mean(panel, rows, ORIGIN)[0].tolist() == [4.0] * 4  # (12 + 40) / 13


def test_scores_and_best_baseline_on_the_same_rows(case) -> None:
    from services.training import baselines as B

    panel, rows = case
    scores = B.evaluate(panel, rows, ORIGIN, 4, mase_scale=1.0)
    # y = 2 every week: WAPE = |f - 2| / 2
    assert scores["last_value"]["wape"] == 19.0
    assert scores["moving_median_13"]["wape"] == 0.5
    assert scores["moving_mean_13"]["wape"] == 1.0
    assert {"seasonal_naive", "autoets", "croston_optimized", "imapa"} <= set(scores)
    assert all(s["rows"] == 4 for s in scores.values())
    assert B.best(scores) == min(scores, key=lambda k: scores[k]["wape"])
    assert B.best({"a": {"wape": 0.7}, "b": {"wape": 0.6}, "c": {"wape": None}}) == "b"


def test_croston_on_a_regular_intermittent_series_forecasts_size_over_interval() -> None:
    from services.features.demand import build_panel
    from services.training import baselines as B
    from services.training.train import holdout_rows

    units = [4, 0] * 10 + [4, 4]  # a sale of 4 every second week: 2 per week
    panel = build_panel(_frames(units))
    rows = holdout_rows(panel, 19, 2)
    f = B.intermittent(B.history_frame(panel, rows, 19), rows, 19, 2)
    # 2.04: the smoothed inter-demand interval starts from the first one seen
    assert f["croston_optimized"] == pytest.approx([2.0, 2.0], rel=0.03)
    assert f["imapa"] == pytest.approx([2.0, 2.0], rel=0.05)


def test_lightgbm_learns_a_global_pattern_across_series() -> None:
    from services.training import baselines as B

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 3000)
    train = pd.DataFrame({"family_id": rng.choice(["A", "B"], 3000), "x": x})
    train["y"] = np.where(train["family_id"] == "A", 2.0, 0.0) + x
    test = pd.DataFrame({"family_id": ["A", "B"], "x": [5.0, 5.0]})
    pred = B.lightgbm(train, test, ["family_id"], ["x"], seed=1)
    assert pred == pytest.approx([7.0, 5.0], rel=0.05)
