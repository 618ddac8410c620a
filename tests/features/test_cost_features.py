"""Cost features: targets per good unit, and serving rows per eligible line."""

from __future__ import annotations

import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.features import build_cost_training_frame, cost_serving_frame

from .conftest import START


def _with_production(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = dict(frames)
    out["production"] = pd.DataFrame(
        {"record_id": ["P1", "P2", "P3"], "line_id": ["L1", "L2", "L1"],
         "variant_id": ["V1", "V1", "V4"], "date": [START] * 3, "quantity": [10, 4, 0],
         "hours": [5.0, 1.6, 1.0], "cost": [200.0, 90.0, 5.0], "scrap": [0, 0, 0]}
    )  # fmt: skip
    out["line_eligibility"] = pd.DataFrame(
        {"line_id": ["L1", "L2", "L1"], "family_id": ["SHR", "SHR", "TRS"]}
    )
    return out


def test_training_targets_are_per_good_unit(frames) -> None:
    t = build_cost_training_frame(_with_production(frames))
    assert list(t["record_id"]) == ["P1", "P2"]  # quantity 0 dropped
    assert t["unit_cost"].tolist() == pytest.approx([20.0, 22.5])
    assert t["hours_per_unit"].tolist() == pytest.approx([0.5, 0.4])
    assert t.loc[1, "capacity_hours"] == 300.0 and t.loc[0, "attr_fabric"] == "cotton"


def test_serving_rows_cover_eligible_lines_and_new_configurations(frames) -> None:
    f = _with_production(frames)
    new = {"family_id": "TRS", "attr_fabric": "silk", "attr_size": "m"}
    s = cost_serving_frame(f, ["V1", new])
    assert list(zip(s["variant_id"], s["line_id"], strict=True)) == [
        ("V1", "L1"), ("V1", "L2"), ("NEW-2", "L1")
    ]  # fmt: skip
    assert s.loc[2, "attr_fabric"] == "silk" and s.loc[2, "list_price"] > 0
    with pytest.raises(InvalidArgument, match="line_id"):
        cost_serving_frame(f, ["V1"], lines=["L9"])
