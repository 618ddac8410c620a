"""The target week's planned price and promotion (``variant_weeks``) and the recency features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.features.conftest import START


def _with_plan(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    plan = pd.DataFrame(
        {
            "variant_id": ["V1", "V1", "v2 ", "NOPE"],
            "week": [START + pd.Timedelta(weeks=w) for w in (60, 75, 61, 60)],
            "price": ["47.2", "59", "", "10"],
            "promo": ["1", "0", "yes", "1"],
        }
    )
    return {**frames, "variant_weeks": plan}


def test_the_target_weeks_plan_is_an_input_and_weeks_without_one_are_list_price(frames) -> None:
    from services.features.demand import build_panel, build_serving_frame

    panel = build_panel(_with_plan(frames))
    rows = build_serving_frame(panel, START + pd.Timedelta(weeks=55), ["V1", "V2", "V4"], 8)
    v1 = rows[rows["variant_id"] == "V1"].set_index("target_week")
    week60 = START + pd.Timedelta(weeks=60)
    assert v1.loc[week60, "promo"] == 1.0
    assert v1.loc[week60, "price_ratio"] == pytest.approx(47.2 / 59.0)
    others = v1.drop(index=week60)
    assert (others["promo"] == 0).all() and (others["price_ratio"] == 1.0).all()
    v2 = rows[rows["variant_id"] == "V2"].set_index("target_week")
    assert v2.loc[START + pd.Timedelta(weeks=61), "promo"] == 1.0  # id trimmed and upper-cased
    assert v2["price_ratio"].eq(1.0).all()  # an empty price: the list price
    assert rows.loc[rows["variant_id"] == "V4", "promo"].eq(0).all()
    # a plan for the weeks after the last order week (the plan's own weeks) is read too
    future = panel.last_week + pd.Timedelta(weeks=3)
    ahead = _with_plan(frames)
    ahead["variant_weeks"] = pd.DataFrame(
        {"variant_id": ["V1"], "week": [future], "price": [50.0], "promo": [1]}
    )
    served = build_serving_frame(build_panel(ahead), panel.last_week, ["V1"], 4)
    assert served["promo"].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_without_the_table_every_week_is_list_price_and_no_promotion(frames) -> None:
    from services.features.demand import build_training_frame

    frame = build_training_frame(frames, horizon=4, origin_stride=10)
    assert frame["promo"].eq(0).all() and frame["price_ratio"].eq(1.0).all()


def test_recency_features_match_a_hand_computation(frames) -> None:
    from services.features.demand import build_panel, build_serving_frame

    panel = build_panel(frames)
    origin = 50
    row = int(panel.variants.set_index("variant_id").loc["V1", "row"])
    window = panel.demand[row, origin - 12 : origin + 1]
    rows = build_serving_frame(panel, panel.week_at(origin), ["V1"], 1).iloc[0]
    assert rows["median_13"] == pytest.approx(np.median(window))
    assert rows["zero_share_13"] == pytest.approx(np.mean(window == 0))
    sold = np.flatnonzero(panel.demand[row, : origin + 1] > 0)
    assert rows["weeks_since_sale"] == origin - sold[-1]


def test_datagen_writes_the_plan_and_the_features_read_it(tmp_path) -> None:
    from services.datagen import generate
    from services.features.demand import build_panel
    from services.features.tables import read_dataset_folder

    generate("tiny", 2, tmp_path / "d")
    table = pd.read_csv(tmp_path / "d" / "variant_weeks.csv")
    assert list(table.columns) == ["variant_id", "week", "price", "promo"]
    panel = build_panel(read_dataset_folder(tmp_path / "d"))
    hist = panel.promo[:, : panel.n_weeks]
    assert 0 < hist.mean() < 0.2  # ~5% of history weeks are on promotion
    assert panel.promo[:, panel.n_weeks :].sum() == 0  # the future: list price, no promotion
