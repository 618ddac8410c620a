"""Cost features: targets per good unit, and serving rows per eligible line."""

from __future__ import annotations

import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.features import build_cost_training_frame, cost_serving_frame
from services.features.cost import changeover_table

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


def test_runs_carry_lot_size_line_load_and_setup_hours(frames) -> None:
    f = _with_production(frames)
    f["production"]["setup_hours"] = [0.5, None, 0.2]
    f["changeovers"] = pd.DataFrame(
        {"changeover_id": ["C1"], "line_id": ["L1"], "family_id": ["SHR"], "date": [START],
         "hours": [4.5], "cost": [300.0]}
    )  # fmt: skip
    t = build_cost_training_frame(f)
    assert t["lot_size"].tolist() == [10.0, 4.0]
    cap = f["lines"].set_index("line_id")["capacity_hours"]
    # L1 that week: 5 h (P1) + its 0.5 h setup + the 4.5 h changeover (P3, quantity 0, is skipped)
    assert t.loc[0, "line_load"] == pytest.approx((5.0 + 0.5 + 4.5) / cap["L1"])
    assert t.loc[1, "line_load"] == pytest.approx(1.6 / cap["L2"])
    assert t.loc[0, "run_setup_hours"] == pytest.approx(0.5) and pd.isna(
        t.loc[1, "run_setup_hours"]
    )
    s = cost_serving_frame(f, ["V1"])
    assert s["line_load"].tolist() == [1.0, 1.0]
    assert s["lot_size"].tolist() == [10.0, 4.0]  # the family's median lot on each line


def test_changeovers_are_summarised_per_family_and_line(frames) -> None:
    f = _with_production(frames)
    assert changeover_table(f).empty  # neither records nor standards: no family setups
    f["family_setups"] = pd.DataFrame(
        {"line_id": ["L1", "L2"], "family_id": ["SHR", "SHR"], "setup_hours": [3.0, 2.0],
         "setup_cost": [300.0, 250.0]}
    )  # fmt: skip
    f["changeovers"] = pd.DataFrame(
        {"changeover_id": ["C1", "C2"], "line_id": ["L1", "L1"], "family_id": ["SHR", "SHR"],
         "date": [START, START], "hours": [4.0, 9.0], "cost": [200.0, 800.0]}
    )  # fmt: skip
    t = changeover_table(f).set_index(["family_id", "line_id"])
    assert t.loc[("SHR", "L1"), "setup_hours"] == pytest.approx(6.0)  # geometric mean of records
    assert t.loc[("SHR", "L1"), "setup_cost"] == pytest.approx(400.0)
    assert t.loc[("SHR", "L1"), "records"] == 2
    assert t.loc[("SHR", "L2"), "setup_hours"] == 3.0 - 1.0  # no records: the standard
