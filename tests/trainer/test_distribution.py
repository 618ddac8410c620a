"""The demand model's distribution: every level, never crossing, named in the served metadata."""

from __future__ import annotations

import numpy as np

from services.common.quantiles import MEDIAN, QUANTILE_COLUMNS, QUANTILES
from tests.trainer.conftest import BASE


def test_the_model_gives_every_level_ascending_and_the_report_every_baseline(panel, good_fit):
    from services.training.champion import holdout
    from services.training.train import predict_batched

    model, inputs = good_fit.trained.model, good_fit.trained.inputs
    rows, _ = holdout(panel, BASE)
    q = predict_batched(model, rows, inputs)
    assert q.shape == (len(rows), len(QUANTILES))
    assert (np.diff(q, axis=1) >= 0).all() and (q >= 0).all()
    saved = model.calibration.numpy().copy()
    try:  # factors that would make neighbouring levels cross: the output is still ascending
        model.calibration.assign(np.array([0.3, 4.0, 0.3, 1.0, 0.3, 4.0, 0.3], np.float32))
        crossed = predict_batched(model, rows, inputs)
        assert (np.diff(crossed, axis=1) >= 0).all()
        assert np.allclose(crossed[:, MEDIAN], q[:, MEDIAN])  # the median does not move
    finally:
        model.calibration.assign(saved)
    m = good_fit.trained.metrics
    assert len(good_fit.trained.info["interval_calibration"]) == len(QUANTILES)
    assert {"coverage_p10_p90", "coverage_p05_p95", "bias"} <= set(m["model"])
    names = {"seasonal_naive", "last_value", "moving_median_13", "moving_mean_13", "autoets",
             "croston_optimized", "imapa", "lightgbm"}  # fmt: skip
    assert set(m["baselines"]) == names
    assert all(s["rows"] == m["model"]["rows"] for s in m["baselines"].values())  # same rows
    assert m["best_baseline"] == min(m["baselines"], key=lambda k: m["baselines"][k]["wape"])
    assert m["autoets"] == m["baselines"]["autoets"]


def test_the_served_version_names_its_levels_and_returns_them(tmp_path, panel, good_fit) -> None:
    from services.planning.predictions import frame_to_arrays, quantile_matrix
    from services.predictor.inference import load_version, output_parameters
    from services.registry.publish import publish
    from services.registry.repository import ModelRepository
    from services.training.champion import holdout

    repo = ModelRepository(tmp_path / "models")
    trained = good_fit.trained
    version = publish(repo, "demand", trained.model, trained.inputs, {"metrics": {}})
    meta = repo.read_metadata("demand", version)
    assert meta["outputs"][0]["quantiles"] == list(QUANTILES)
    assert meta["outputs"][0]["shape"] == [-1, len(QUANTILES)]
    assert output_parameters(meta, "quantiles") == {
        "quantile_levels": "0.05,0.1,0.25,0.5,0.75,0.9,0.95"
    }
    loaded = load_version(tmp_path / "models", "demand", version)
    assert loaded.device in ("/CPU:0", "/GPU:0")
    rows, _ = holdout(panel, BASE)
    out = loaded.predict(frame_to_arrays(rows.head(50), trained.inputs))["quantiles"]
    assert out.shape == (50, len(QUANTILES)) and (np.diff(out, axis=1) >= 0).all()
    table = rows.head(50)[["variant_id", "target_week"]].copy()
    for i, c in enumerate(QUANTILE_COLUMNS):
        table[c] = out[:, i]
    assert np.array_equal(quantile_matrix(table), out.astype(float))
