"""The cost model learns the lot-size economics from the records (issue 16), on a small world.

The full measurement (small preset, 80 epochs, < 5 % against the truth) is
``bench/bench_cost_model.py``; here a 2-family world and 40 epochs show the same ordering.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.datagen import World, build_dataset
from services.datagen.presets import Preset
from services.features.cost import COST_OUTPUTS
from services.training.cost_fit import fit_cost

pytestmark = pytest.mark.slow

WORLD = Preset(
    name="lots", n_families=2, n_variants=40, n_weeks=60, n_lines=2, horizon_weeks=4,
    mean_weekly_demand=4.0, initial_share=0.8, cold_start_share=0.05, shift_week=500,
)  # fmt: skip


def test_lot_size_inputs_beat_a_model_without_them_against_the_truth() -> None:
    ds = build_dataset(World(WORLD, 1))
    frames = dict(ds.tables)
    model, inputs, lot, info = fit_cost(frames, None, epochs=40, truth=ds.truth)
    _, _, flat, _ = fit_cost(frames, None, epochs=40, lot_inputs=False, truth=ds.truth)
    assert [name for name, _ in inputs][-2:] == ["lot_size", "line_load"]
    # the cost per unit of a run of 1..32 units at regular time, against c + F / q
    assert lot["lot_grid_cost_mape_vs_truth"] < 0.12
    assert flat["lot_grid_cost_mape_vs_truth"] > 0.3
    # the cost of each recorded run at regular time, F + c q for its lot, against the truth's
    assert lot["lot_cost_mape_vs_truth"] < 0.12
    assert lot["truth_runs"] == len(frames["production"])
    assert lot["run_cost_mape_vs_truth"] < 0.2  # F learned from the lot sizes
    # changeovers and variant setups come from their records
    assert lot["family_setup_hours_mape_vs_truth"] < 0.05
    assert lot["setup_hours_mape_vs_truth"] < 0.05
    assert info["changeover_pairs"] == 4
    # one row through the model: eight outputs, the lot's unit cost falls with its size
    from services.features.cost import cost_serving_frame
    from services.training.train import predict_batched

    row = cost_serving_frame(frames, [frames["variants"]["variant_id"].iloc[0]]).iloc[:1]
    small, big = (
        predict_batched(model, row.assign(lot_size=np.float32(q)), inputs)[0] for q in (2, 20)
    )
    assert len(small) == len(COST_OUTPUTS)
    out = dict(zip(COST_OUTPUTS, small, strict=True))
    assert out["lot_unit_cost"] == pytest.approx(out["unit_cost"] + out["run_cost"] / 2, rel=1e-4)
    assert big[COST_OUTPUTS.index("lot_unit_cost")] < out["lot_unit_cost"]


def test_without_recorded_setup_hours_the_model_says_so_and_the_plan_keeps_the_standard() -> None:
    """Production records without ``setup_hours``: the model's ``setup_hours`` output is 0 (it
    learned nothing of them), and the builder then keeps each line's own figure."""
    from services.features.cost import cost_serving_frame
    from services.planning.builder import learned_setups
    from services.training.train import predict_batched

    ds = build_dataset(World(WORLD, 1))
    frames = dict(ds.tables)
    frames["production"] = frames["production"].drop(columns=["setup_hours"])
    model, inputs, _, _ = fit_cost(frames, None, epochs=3)
    rows = cost_serving_frame(frames, list(frames["variants"]["variant_id"].iloc[:5]))
    out = predict_batched(model, rows, inputs)
    setup = out[:, COST_OUTPUTS.index("setup_hours")]
    assert np.all(setup == 0.0)
    assert np.all(out[:, COST_OUTPUTS.index("run_cost")] > 0)  # F is still learned from the lots
    table = rows[["variant_id", "line_id"]].assign(
        run_cost=out[:, COST_OUTPUTS.index("run_cost")], setup_hours=setup
    )
    assert all(h is None and c is not None for h, c in learned_setups(table).values())


def test_a_pair_without_changeover_records_leaves_the_plan_the_current_standard() -> None:
    """The model holds only the changeovers it learned from records: for a (family, line) pair
    with none it says 0, and the builder takes the ``family_setups`` table's standard as it is
    now, so a standard changed after training counts without a retrain."""
    from services.features.cost import cost_serving_frame
    from services.planning.builder import learned_changeovers
    from services.training.train import predict_batched

    ds = build_dataset(World(WORLD, 1))
    frames = dict(ds.tables)
    co = frames["changeovers"]
    assert len(frames["family_setups"]) == 4  # a standard for every (family, line) pair
    gone = (str(co["family_id"].iloc[0]), str(co["line_id"].iloc[0]))
    keep = (co["family_id"].astype(str) != gone[0]) | (co["line_id"].astype(str) != gone[1])
    frames["changeovers"] = co[keep]
    model, inputs, _, info = fit_cost(frames, None, epochs=3)
    assert info["changeover_pairs"] == 3
    rows = cost_serving_frame(frames, list(frames["variants"]["variant_id"]))
    out = predict_batched(model, rows, inputs)
    table = rows[["variant_id", "family_id", "line_id"]].assign(
        family_setup_hours=out[:, COST_OUTPUTS.index("family_setup_hours")],
        family_setup_cost=out[:, COST_OUTPUTS.index("family_setup_cost")],
    )
    learned = learned_changeovers(table)
    assert gone not in learned and len(learned) == 3
    pair = table["family_id"].astype(str) + "|" + table["line_id"].astype(str)
    on_pair = pair == "|".join(gone)
    assert on_pair.any() and (table.loc[on_pair, "family_setup_hours"] == 0.0).all()
