"""`tailorline train` on a tiny synthetic data set: report, repository, registry, SavedModels."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from services.common.quantiles import MEDIAN, QUANTILES
from services.features import (
    build_cost_training_frame,
    build_panel,
    build_serving_frame,
    cost_serving_frame,
    read_dataset_folder,
    read_truth,
)
from services.registry.repository import ModelRepository


def tf_signature(repo: ModelRepository, name: str, version: int):
    import tensorflow as tf

    return tf.saved_model.load(str(repo.saved_model_dir(name, version))).signatures[
        "serving_default"
    ]


def _load(models, name):
    """The served version's metadata and signature."""
    repo = ModelRepository(models)
    version = repo.current(name)
    return repo.read_metadata(name, version), tf_signature(repo, name, version)


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
    # each model: the hold-out fit (version 1, scored) and its full-data refit (version 2, served)
    assert r["versions"] == {"demand": 2, "cost": 2}
    for name in ("demand", "cost"):
        assert r["refit"][name]["holdout_fit"] == 1
        assert r["refit"][name]["refit"]["version"] == 2
        assert r["refit"][name]["refit"]["refit_of"] == 1
    m = r["demand"]["model"]
    assert 0 < m["wape"] < 1.5 and 0 <= m["coverage_p10_p90"] <= 1
    assert 0 <= m["coverage_p05_p95"] <= 1 and m["coverage_p05_p95"] >= m["coverage_p10_p90"]
    # hours per unit are learnt from 400 noisy records: a few percent off the truth at most.
    # unit_cost is the marginal cost c alone; on the tiny set's lots of 1-3 units c and the
    # fixed cost per run F are barely separable, so its MAPE is reported (checked against the
    # SavedModel below), while the cost a run actually has, c + F / lot, is what must be close
    assert r["cost"]["hours_mape_vs_truth"] < 0.10
    assert r["cost"]["lot_cost_mape_vs_truth"] < 0.2  # F + c q of each run, against the truth


def test_report_says_how_the_scored_fit_was_trained(trained) -> None:
    """``demand.training``: early stopping's epochs on the validation weeks, then the refit that
    adds them for the best epoch count (the fit scored and published), also in the printed
    report."""
    from rich.console import Console

    from services.training.commands import render_report

    t = trained.report["demand"]["training"]
    assert 1 <= t["best_epoch"] <= t["epochs"] <= 3  # --epochs 3
    assert t["validation_rows"] > 0 and t["rows"] > 0
    refit = t["refit_validation"]
    assert refit["epochs"] == t["best_epoch"]
    assert refit["rows"] == t["rows"] + t["validation_rows"]
    assert t["seconds"] > 0
    buf = io.StringIO()
    render_report(trained.report, Console(file=buf, width=100))
    assert (
        f"{t['epochs']} epochs, the best {t['best_epoch']} on {t['validation_rows']} validation "
        f"rows, then {refit['epochs']} epochs on all {refit['rows']} rows"
    ) in buf.getvalue()


def test_train_prints_every_baseline_beside_the_model(trained) -> None:
    """``tailorline train`` without --json: one table with the model and every baseline that
    ``demand.baselines`` holds, their WAPEs to 3 decimals, the best baseline named."""
    from rich.console import Console

    from services.training.commands import render_report

    d = trained.report["demand"]
    labels = {"seasonal_naive": "seasonal naive", "last_value": "last value",
              "moving_median_13": "13-week median", "moving_mean_13": "13-week mean",
              "autoets": "AutoETS", "croston_optimized": "Croston (optimized)", "imapa": "IMAPA",
              "lightgbm": "LightGBM"}  # fmt: skip
    assert set(d["baselines"]) == set(labels)
    buf = io.StringIO()
    render_report(trained.report, Console(file=buf, width=100))
    lines = buf.getvalue().splitlines()

    def row(label: str) -> list[str]:  # the first table row of that label, its cells
        for line in lines:
            cells = [c.strip() for c in line.strip("│┃ ").split("│")]
            if cells[0] in (label, f"{label} *"):
                return cells
        raise AssertionError(f"no row {label!r} in\n" + "\n".join(lines))

    header = next(line for line in lines if "WAPE" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")][:3] == ["forecast", "WAPE", "MASE"]
    assert row("model")[1] == f"{d['model']['wape']:.3f}"
    for key, label in labels.items():
        assert row(label)[1] == f"{d['baselines'][key]['wape']:.3f}", key
    best = d["best_baseline"]
    assert row(labels[best])[0] == f"{labels[best]} *"
    assert f"* best baseline (lowest WAPE): {labels[best]} ({best})" in "\n".join(lines)
    assert "hours_mape_vs_truth" in "\n".join(lines)


def test_repository_holds_complete_versions_with_metadata(trained) -> None:
    repo = ModelRepository(trained.models)
    assert repo.names() == ["cost", "demand"]
    for name in ("demand", "cost"):
        assert repo.current(name) == 2  # the full-data refit is served
        assert repo.versions(name) == [1, 2]
        for v in (1, 2):
            meta = repo.read_metadata(name, v)
            assert {"name", "version", "created_at", "inputs", "outputs", "metrics", "data_range",
                    "feature_schema", "code_version", "seed"} <= set(meta)  # fmt: skip
            assert meta["version"] == v and meta["seed"] == 3
            assert all(c["dtype"] in ("string", "float32") for c in meta["inputs"])
        held, refit = repo.read_metadata(name, 1), repo.read_metadata(name, 2)
        assert held["data_range"]["holdout_weeks"] == 6 and "refit_of" not in held
        # ... and says so: no week held out, the full-data refit of version 1
        assert refit["refit_of"] == 1 and refit["metrics_of"].startswith("version 1 ")
        assert refit["data_range"]["holdout_weeks"] == 0 and refit["config"]["holdout_weeks"] == 0
        # the refit has seen every week, the hold-out included
        assert refit["data_range"]["train_until"] > held["data_range"]["train_until"]
        assert refit["data_range"]["train_until"] == refit["data_range"]["last_week"]
        # same inputs; the metrics it carries are the hold-out fit's
        assert refit["inputs"] == held["inputs"] and refit["metrics"] == held["metrics"]
    demand = repo.read_metadata("demand", 2)
    assert demand["metrics"]["model"] == trained.report["demand"]["model"]
    assert demand["outputs"][0]["quantiles"] == list(QUANTILES)


def test_registry_in_the_store_says_which_version_is_served(trained) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(trained.db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name, version, status FROM model_versions ORDER BY name")
        ).all()
    engine.dispose()
    assert sorted(tuple(r) for r in rows) == [
        ("cost", 1, "candidate"),
        ("cost", 2, "served"),
        ("demand", 1, "candidate"),
        ("demand", 2, "served"),
    ]


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
    assert meta["outputs"][0]["quantiles"] == list(QUANTILES)
    assert q.shape == (len(frame), len(QUANTILES)) == (78, 7)
    assert np.isfinite(q).all() and (q >= 0).all()
    assert (np.diff(q, axis=1) >= 0).all()
    cold = frame["variant_id"].eq("NEW-6").to_numpy()
    assert cold.sum() == 13 and (q[cold, MEDIAN] > 0).all()  # a cold start still gets a forecast


def test_saved_cost_model_matches_the_true_cost_function(trained) -> None:
    """The world's run of q units costs F + c * q (docs/synthetic-data.md); the model's
    ``unit_cost`` is c and ``lot_unit_cost`` the cost per unit of a run of ``lot_size`` units,
    c + F / q at regular time (docs/model-interface.md)."""
    frames = read_dataset_folder(trained.data)
    truth = read_truth(trained.data)["unit_cost"]
    frame = cost_serving_frame(frames, sorted(truth["variant_id"].unique()))
    frame = frame.merge(truth, on=["variant_id", "line_id"], suffixes=("", "_true"))
    assert len(frame) == 40 and (frame["lot_size"] >= 1).all()
    true_lot = frame["unit_cost"] + frame["run_cost"] / frame["lot_size"]
    repo = ModelRepository(trained.models)
    for version in (1, 2):  # the hold-out fit (what the report scores) and the served refit
        meta = repo.read_metadata("cost", version)
        sig = tf_signature(repo, "cost", version)
        out = _call(sig, meta, frame)
        c_rel = np.abs(out["unit_cost"] - frame["unit_cost"]) / frame["unit_cost"]
        if version == 1:  # the report's figure is this model's c against the true c
            assert float(c_rel.mean()) == pytest.approx(
                trained.report["cost"]["unit_cost_mape_vs_truth"], abs=1e-3
            )
        # the cost per unit of a run of the family's median lot, against c + F / lot
        lot_rel = np.abs(out["lot_unit_cost"] - true_lot) / true_lot
        assert float(lot_rel.mean()) < 0.12, (version, float(lot_rel.mean()))
        # the model's own structure: lot_unit_cost = c + F / lot at regular time
        np.testing.assert_allclose(
            out["lot_unit_cost"], out["unit_cost"] + out["run_cost"] / frame["lot_size"], rtol=1e-4
        )
        h_rel = np.abs(out["hours_per_unit"] - frame["hours_per_unit"]) / frame["hours_per_unit"]
        assert float(h_rel.mean()) < 0.10
    # the report's lot_cost_mape_vs_truth: the hold-out fit's cost of every recorded run at
    # regular time, q x lot_unit_cost, against the world's F + c q for that run
    runs = build_cost_training_frame(frames).merge(
        truth, on=["variant_id", "line_id"], suffixes=("", "_true")
    )
    assert len(runs) == len(frames["production"])
    out = _call(tf_signature(repo, "cost", 1), repo.read_metadata("cost", 1),
                runs.assign(line_load=np.float32(1.0)))  # fmt: skip
    q = runs["lot_size"].to_numpy(np.float64)
    true_run = runs["run_cost"] + runs["unit_cost_true"] * q
    run_rel = np.abs(q * out["lot_unit_cost"] - true_run) / true_run
    assert float(run_rel.mean()) == pytest.approx(
        trained.report["cost"]["lot_cost_mape_vs_truth"], abs=1e-3
    )


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
