"""Promotion that noise cannot fool: several origins and a paired test over series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.training.evidence import PromotionRule, judge

SERIES = 40
WEEKS = 4  # rows per series and origin


def _rows(champ_err: list[float], chall_err: list[float], seed: int = 0) -> pd.DataFrame:
    """Three origins; per origin the two models' mean absolute errors (plus shared noise)."""
    rng = np.random.default_rng(seed)
    parts = []
    for k, (a, b) in enumerate(zip(champ_err, chall_err, strict=True)):
        y = rng.poisson(10.0, size=(SERIES, WEEKS)).astype(float)
        noise = rng.normal(0.0, 0.5, size=(SERIES, WEEKS))
        parts.append(
            pd.DataFrame(
                {
                    "origin": f"2025-0{k + 1}-06",
                    "series": np.repeat(np.arange(SERIES), WEEKS),
                    "y": y.ravel(),
                    "loss_champion": np.abs(a + noise).ravel(),
                    "loss_challenger": np.abs(
                        b + noise + rng.normal(0, 0.3, (SERIES, WEEKS))
                    ).ravel(),
                    "scale": 3.0,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_a_challenger_better_on_one_origin_by_luck_is_not_promoted() -> None:
    # much better on the first origin, a little worse on the other two: pooled it even looks
    # better (the lucky origin dominates), but it wins one origin of three
    rows = _rows(champ_err=[6.0, 3.0, 3.0], chall_err=[1.0, 3.6, 3.6])
    ev = judge(rows, "wape", PromotionRule(), has_champion=True)
    assert ev.challenger < ev.champion  # the pooled figure alone would have promoted it
    assert [o["challenger_better"] for o in ev.origins] == [True, False, False]
    assert not ev.promoted
    assert ev.wins == 1 and ev.wins_needed == 2
    assert "better on 1 of 3 origins, 2 needed" in ev.reason


def test_a_genuinely_better_challenger_is_promoted_with_its_evidence() -> None:
    rows = _rows(champ_err=[3.0, 3.0, 3.0], chall_err=[2.4, 2.4, 2.4])
    ev = judge(rows, "wape", PromotionRule(margin=0.05), has_champion=True)
    assert ev.promoted, ev.reason
    assert ev.wins == 3 and all(o["challenger_better"] for o in ev.origins)
    assert ev.test["p_value"] < 1e-4 and ev.test["series"] == SERIES
    assert ev.improvement == pytest.approx(0.2, abs=0.05)
    assert len(ev.origins) == 3 and ev.origins[0]["rows"] == SERIES * WEEKS


def test_equal_models_are_not_promoted() -> None:
    rows = _rows(champ_err=[3.0, 3.0, 3.0], chall_err=[3.0, 3.0, 3.0], seed=4)
    ev = judge(rows, "wape", PromotionRule(), has_champion=True)
    assert not ev.promoted and ev.test["p_value"] > 0.05


def test_the_margin_holds_back_a_small_but_real_improvement() -> None:
    rows = _rows(champ_err=[3.0, 3.0, 3.0], chall_err=[2.7, 2.7, 2.7])
    ev = judge(rows, "wape", PromotionRule(margin=0.25), has_champion=True)
    assert ev.test["p_value"] < 0.05 and ev.wins == 3
    assert not ev.promoted and "below the margin 25.0%" in ev.reason


def test_no_champion_promotes_any_finite_challenger() -> None:
    rows = _rows(champ_err=[3.0, 3.0, 3.0], chall_err=[9.0, 9.0, 9.0])
    ev = judge(rows, "wape", PromotionRule(), has_champion=False)
    assert ev.promoted and ev.reason == "no served model yet" and ev.champion is None


def test_bad_rules_name_the_field() -> None:
    with pytest.raises(InvalidArgument) as err:
        PromotionRule(alpha=1.5)
    assert err.value.field == "alpha"
    assert PromotionRule(origins=3, origin_weeks=4).fit_to(6) == (3, 2)
    assert PromotionRule().fit_to(13) == (3, 4)
