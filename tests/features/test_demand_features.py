"""Demand features: known values, no leakage, training and serving agree, cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.features import build_panel, build_serving_frame, build_training_frame
from services.features.demand import numeric_features

from .conftest import START, make_frames

ORIGIN = START + pd.Timedelta(weeks=45)


def _weekly(frames: dict[str, pd.DataFrame], variant: str) -> pd.Series:
    o = frames["orders"]
    o = o[o["variant_id"] == variant]
    week = o["order_date"] - pd.to_timedelta(o["order_date"].dt.weekday, unit="D")
    return o.groupby(week)["quantity"].sum()


def test_history_features_match_hand_computed_values(frames) -> None:
    f = build_serving_frame(frames, ORIGIN, ["V1"], horizon=3)
    weekly = _weekly(frames, "V1")
    get = lambda w: float(weekly.get(ORIGIN - pd.Timedelta(weeks=w), 0.0))  # noqa: E731
    assert list(f["horizon"]) == [1.0, 2.0, 3.0]
    assert list(f["target_week"]) == [ORIGIN + pd.Timedelta(weeks=h) for h in (1, 2, 3)]
    assert f["lag_1"].iloc[0] == pytest.approx(get(0))
    assert f["lag_3"].iloc[0] == pytest.approx(get(2))
    assert f["mean_4"].iloc[0] == pytest.approx(np.mean([get(w) for w in range(4)]), rel=1e-5)
    # target week - 52 = ORIGIN + 1 - 52 weeks
    assert f["seasonal_52"].iloc[0] == pytest.approx(get(51))
    assert f["hist_weeks"].iloc[0] == 46.0
    # market signals of week ORIGIN (index 45)
    assert f["price_index"].iloc[0] == pytest.approx(1.45)


def test_no_feature_at_origin_uses_later_data(frames) -> None:
    """Change every order, review and market value after the origin: features stay the same."""
    before = build_serving_frame(frames, ORIGIN, ["V1", "V2", "V3", "V4", "V5", "V6"], 13)
    changed = {k: v.copy() for k, v in frames.items()}
    after_origin = ORIGIN + pd.Timedelta(days=7)
    o = changed["orders"]
    late = o["order_date"] >= after_origin
    o.loc[late, "quantity"] = o.loc[late, "quantity"] * 10 + 7
    extra = o[late].head(5).assign(order_id=lambda d: d["order_id"] + "X", variant_id="V3")
    changed["orders"] = pd.concat([o, extra], ignore_index=True)
    r = changed["reviews"]
    r.loc[r["date"] >= after_origin, "rating"] = 1
    m = changed["market"]
    m.loc[m["week"] > ORIGIN, ["price_index", "trend_index"]] = 9.0
    after = build_serving_frame(changed, ORIGIN, ["V1", "V2", "V3", "V4", "V5", "V6"], 13)
    pd.testing.assert_frame_equal(before, after)
    # and the same through the training path: the rows of that origin are unchanged (not y)
    cols = [c for c in build_training_frame(frames, origins=[ORIGIN]).columns if c != "y"]
    t1 = build_training_frame(frames, origins=[ORIGIN])
    t2 = build_training_frame(changed, origins=[ORIGIN])
    pd.testing.assert_frame_equal(t1[cols], t2[cols])
    assert not np.allclose(t1["y"], t2["y"])  # the targets did see the change


def test_training_and_serving_rows_agree(frames) -> None:
    panel = build_panel(frames)
    train = build_training_frame(panel, horizon=4, until_week=START + pd.Timedelta(weeks=69))
    serve = build_serving_frame(panel, ORIGIN, ["V1", "V4", "V5"], horizon=4)
    rows = train[(train["origin_week"] == ORIGIN) & train["variant_id"].isin(["V1", "V4", "V5"])]
    rows = rows.drop(columns="y").sort_values(["variant_id", "target_week"])
    pd.testing.assert_frame_equal(
        rows.reset_index(drop=True),
        serve.sort_values(["variant_id", "target_week"]).reset_index(drop=True),
    )
    # targets are the weekly units ordered
    weekly = _weekly(frames, "V1")
    r = train[(train["variant_id"] == "V1") & (train["origin_week"] == ORIGIN)]
    assert r["y"].iloc[0] == pytest.approx(weekly.get(ORIGIN + pd.Timedelta(weeks=1), 0.0))


def test_training_rows_skip_targets_before_launch_and_after_cutoff(frames) -> None:
    until = START + pd.Timedelta(weeks=60)
    train = build_training_frame(frames, horizon=13, until_week=until)
    assert train["target_week"].max() == until
    v6 = train[train["variant_id"] == "V6"]  # launched in week 66: never a target before 60
    assert v6.empty
    v3 = train[train["variant_id"] == "V3"]  # launched in week 40
    assert v3["target_week"].min() == START + pd.Timedelta(weeks=40)
    cold = v3[v3["origin_week"] < START + pd.Timedelta(weeks=40)]
    assert len(cold) and (cold["hist_weeks"] == 0).all() and (cold["lag_1"] == 0).all()
    assert np.isfinite(train[numeric_features(["attr_fabric", "attr_size"])].to_numpy()).all()


def test_new_configuration_is_a_cold_start_with_family_features(frames) -> None:
    new = {"family_id": "SHR", "attr_fabric": "silk", "attr_size": "xl", "list_price": 80}
    f = build_serving_frame(frames, ORIGIN, [new, "V1"], horizon=2)
    cold, warm = f[f["variant_id"] == "NEW-1"], f[f["variant_id"] == "V1"]
    assert len(cold) == 2 and (cold["hist_weeks"] == 0).all()
    assert (cold[["lag_1", "mean_13", "seasonal_52"]] == 0).all().all()
    assert cold["attr_fabric"].iloc[0] == "silk"
    np.testing.assert_allclose(cold["fam_mean_13"], warm["fam_mean_13"])
    assert cold["price_rel"].iloc[0] == pytest.approx(80 / 59, rel=1e-5)


def test_bad_requests_name_the_field(frames) -> None:
    with pytest.raises(InvalidArgument, match="variant_id"):
        build_serving_frame(frames, ORIGIN, ["NOPE"], 2)
    with pytest.raises(InvalidArgument, match="family_id"):
        build_serving_frame(frames, ORIGIN, [{"family_id": "XXX"}], 2)
    with pytest.raises(InvalidArgument, match="horizon"):
        build_serving_frame(frames, ORIGIN, ["V1"], 0)


def test_store_shaped_frames_give_the_same_features() -> None:
    """Attributes in a long variant_attributes table (the store's shape) and string columns."""
    wide = make_frames(seed=3)
    long = {k: v.copy() for k, v in wide.items()}
    v = long["variants"]
    attrs = v.melt(id_vars=["variant_id"], value_vars=["attr_fabric", "attr_size"])
    attrs["attribute"] = attrs["variable"].str.removeprefix("attr_")
    long["variant_attributes"] = attrs[["variant_id", "attribute", "value"]]
    long["variants"] = v.drop(columns=["attr_fabric", "attr_size"]).astype(str)
    long["orders"] = long["orders"].astype(str)
    a = build_serving_frame(wide, ORIGIN, ["V2", "V5"], 3)
    b = build_serving_frame(long, ORIGIN, ["V2", "V5"], 3)
    pd.testing.assert_frame_equal(a, b)


def test_attribute_levels_carry_over_to_a_new_configuration(frames) -> None:
    """A new SHR in linen inherits the recent level of SHR linen variants; unseen values get 0."""
    new = {"family_id": "SHR", "attr_fabric": "linen", "attr_size": "xl"}
    unseen = {"family_id": "SHR", "attr_fabric": "silk", "attr_size": "m"}
    f = build_serving_frame(frames, ORIGIN, [new, unseen, "V2"], horizon=1).set_index("variant_id")
    assert f.loc["NEW-1", "attr_fabric_ratio"] == f.loc["V2", "attr_fabric_ratio"] != 0
    assert f.loc["NEW-2", "attr_fabric_ratio"] == 0.0
    # SHR linen = V2 and V3 (V3 launched in week 40): per-variant level over 13 weeks on sale
    weekly = {v: _weekly(frames, v) for v in ("V1", "V2", "V3")}
    weeks = [ORIGIN - pd.Timedelta(weeks=k) for k in range(13)]
    launch3 = START + pd.Timedelta(weeks=40)
    lin = [
        (weekly["V2"].get(w, 0) + weekly["V3"].get(w, 0)) / (2 if w >= launch3 else 1)
        for w in weeks
    ]
    fam = [
        (weekly["V1"].get(w, 0) + weekly["V2"].get(w, 0) + weekly["V3"].get(w, 0))
        / (3 if w >= launch3 else 2)
        for w in weeks
    ]
    expected = np.log((np.mean(lin) + 0.1) / (np.mean(fam) + 0.1))
    assert f.loc["V2", "attr_fabric_ratio"] == pytest.approx(expected, rel=1e-5)
