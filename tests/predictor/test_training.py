"""`tailorline train` on a tiny synthetic data set: report, repository, registry, SavedModels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from services.features import (
    build_panel,
    build_serving_frame,
    cost_serving_frame,
    read_dataset_folder,
    read_truth,
)
from services.registry.repository import ModelRepository


def _load(models, name):
    import tensorflow as tf

    repo = ModelRepository(models)
    version = repo.current(name)
    meta = repo.read_metadata(name, version)
    sig = tf.saved_model.load(str(repo.saved_model_dir(name, version))).signatures[
        "serving_default"
    ]
    return meta, sig


def _call(sig, meta, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    import tensorflow as tf

    x = {}
    for c in meta["inputs"]:
        col = frame[c["name"]].to_numpy()
        x[c["name"]] = tf.constant(
            col.astype(object) if c["dtype"] == "string" else col.astype(np.float32)
        )
    return {k: v.numpy() for k, v in sig(**x).items()}


def test_report_has_the_documented_shape(trained) -> None:
    r = trained.report
    for key in ("model", "seasonal_naive", "autoets"):
        assert {"wape", "mase", "pinball", "coverage_p10_p90"} <= set(r["demand"][key])
    assert set(r["demand"]["cold_start"]) >= {"model", "family_mean"}
    assert {"unit_cost_mape_vs_truth", "hours_mape_vs_truth"} <= set(r["cost"])
    assert r["versions"] == {"demand": 1, "cost": 1}
    m = r["demand"]["model"]
    assert 0 < m["wape"] < 1.5 and 0 <= m["coverage_p10_p90"] <= 1
    # the cost function is learnt from 400 noisy records: a few percent off the truth at most
    assert r["cost"]["unit_cost_mape_vs_truth"] < 0.10
    assert r["cost"]["hours_mape_vs_truth"] < 0.10


def test_repository_holds_complete_versions_with_metadata(trained) -> None:
    repo = ModelRepository(trained.models)
    assert repo.names() == ["cost", "demand"]
    for name in ("demand", "cost"):
        assert repo.current(name) == 1
        meta = repo.read_metadata(name, 1)
        assert {"name", "version", "created_at", "inputs", "outputs", "metrics", "data_range",
                "feature_schema", "code_version", "seed"} <= set(meta)  # fmt: skip
        assert meta["seed"] == 3 and meta["data_range"]["holdout_weeks"] == 6
        assert all(c["dtype"] in ("string", "float32") for c in meta["inputs"])
    demand = repo.read_metadata("demand", 1)
    assert demand["metrics"]["model"] == trained.report["demand"]["model"]


def test_registry_in_the_store_says_which_version_is_served(trained) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(trained.db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name, version, status FROM model_versions ORDER BY name")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("cost", 1, "served"), ("demand", 1, "served")]


def test_saved_demand_model_takes_raw_columns_and_gives_monotone_quantiles(trained) -> None:
    frames = read_dataset_folder(trained.data)
    meta, sig = _load(trained.models, "demand")
    panel = build_panel(frames)
    new = {"family_id": frames["variants"]["family_id"].iloc[0], "attr_fabric": "linen",
           "attr_colour": "never-seen-colour", "attr_fit": "slim", "attr_size": "m",
           "attr_option": "none", "list_price": 70.0}  # fmt: skip
    ids = list(frames["variants"]["variant_id"].iloc[:5])
    frame = build_serving_frame(panel, panel.last_week, [*ids, new], horizon=13)
    q = _call(sig, meta, frame)["quantiles"]
    assert q.shape == (len(frame), 3)
    assert np.isfinite(q).all() and (q >= 0).all()
    assert (np.diff(q, axis=1) >= 0).all()
    cold = frame["variant_id"].eq("NEW-6").to_numpy()
    assert cold.sum() == 13 and (q[cold, 1] > 0).all()  # a cold start still gets a forecast


def test_saved_cost_model_matches_the_true_cost_function(trained) -> None:
    frames = read_dataset_folder(trained.data)
    truth = read_truth(trained.data)["unit_cost"]
    meta, sig = _load(trained.models, "cost")
    frame = cost_serving_frame(frames, sorted(truth["variant_id"].unique()))
    frame = frame.merge(truth, on=["variant_id", "line_id"], suffixes=("", "_true"))
    out = _call(sig, meta, frame)
    rel = np.abs(out["unit_cost"] - frame["unit_cost"]) / frame["unit_cost"]
    assert float(rel.mean()) == pytest.approx(trained.report["cost"]["unit_cost_mape_vs_truth"],
                                              abs=1e-3)  # fmt: skip
    assert float(rel.mean()) < 0.10


def test_training_is_deterministic_with_a_seed(tiny_data) -> None:
    from services.training.train import TrainConfig, train_demand

    panel = build_panel(read_dataset_folder(tiny_data))
    cfg = TrainConfig(seed=11, epochs=2, holdout_weeks=6)
    a = train_demand(panel, cfg).metrics
    b = train_demand(panel, cfg).metrics
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_train_without_data_is_a_one_line_error(tmp_path, capsys) -> None:
    from services.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--home", str(tmp_path), "train", "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tailorline ingest" in err[0]
