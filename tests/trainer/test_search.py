"""The search space reaches the model (dropout, quantile head), and ASHA stops a bad trial early
because every epoch's validation loss is reported to Tune."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from services.training.fit import fit, trial_config
from services.training.search import DEFAULT_SPACE
from services.training.train import TrainConfig

ONE_EPOCH = {"layers": 1, "units": 16, "learning_rate": 1e-2, "epochs": 1}


def _weights(result) -> list[np.ndarray]:
    return [w.numpy() for w in result.trained.model.trainable_weights]


def test_the_space_searches_dropout_and_the_quantile_head() -> None:
    assert {"layers", "units", "learning_rate", "dropout", "quantile_head", "head_units"} <= set(
        DEFAULT_SPACE
    )
    assert 0.0 in DEFAULT_SPACE["dropout"] and max(DEFAULT_SPACE["dropout"]) > 0
    assert set(DEFAULT_SPACE["quantile_head"]) == {"ratio", "sorted"}
    assert 0 in DEFAULT_SPACE["head_units"] and max(DEFAULT_SPACE["head_units"]) > 0
    cfg = trial_config({"dropout": 0.3, "quantile_head": "sorted", "head_units": 8}, TrainConfig())
    assert (cfg.dropout, cfg.quantile_head, cfg.head_units) == (0.3, "sorted", 8)
    # defaults: what `tailorline train` does (docs/benchmarks.md: dropout won on real data)
    assert (TrainConfig().dropout, TrainConfig().quantile_head, TrainConfig().head_units) == (
        0.2,
        "ratio",
        0,
    )
    assert TrainConfig().dropout in DEFAULT_SPACE["dropout"]


def test_dropout_changes_training(panel, base) -> None:
    plain = fit({**ONE_EPOCH, "dropout": 0.0}, panel, base, evaluate=False)
    dropped = fit({**ONE_EPOCH, "dropout": 0.3}, panel, base, evaluate=False)
    assert dropped.trained.model.drop is not None and plain.trained.model.drop is None
    # same seed, same data: only the dropout masks differ, and they change what is learnt
    diffs = [
        float(np.abs(a - b).max()) for a, b in zip(_weights(plain), _weights(dropped), strict=True)
    ]
    assert max(diffs) > 1e-4
    assert plain.trained.metrics == {}  # evaluate=False: the hold-out is never looked at


def test_head_options_change_the_layers_and_keep_quantiles_monotone(panel, base, good_fit) -> None:
    from services.training.champion import holdout
    from services.training.train import predict_batched

    shared = good_fit  # the default head
    separate = fit({**ONE_EPOCH, "head_units": 8, "quantile_head": "sorted"}, panel, base)
    names = {w.path.split("/")[-2] for w in shared.trained.model.trainable_weights}
    names_sep = {w.path.split("/")[-2] for w in separate.trained.model.trainable_weights}
    assert "head" in names and not any(n.startswith("head_hidden") for n in names)
    assert {"head_hidden_0", "head_hidden_1", "head_hidden_2", "head_0", "head_2"} <= names_sep
    assert "head" not in names_sep
    rows, _ = holdout(panel, replace(base, holdout_weeks=6))
    q = predict_batched(separate.trained.model, rows, separate.trained.inputs)
    assert np.all(q[:, 0] <= q[:, 1] + 1e-6) and np.all(q[:, 1] <= q[:, 2] + 1e-6)
    assert np.all(q[:, 0] >= 0)
    assert 0 < separate.trained.metrics["all_rows"]["wape"] < 2.0


def test_an_unknown_quantile_head_is_refused(panel, base) -> None:
    with pytest.raises(ValueError, match="quantile_head"):
        fit({**ONE_EPOCH, "quantile_head": "spline"}, panel, base, evaluate=False)


def test_asha_stops_a_trial_with_a_diverging_learning_rate(panel, base) -> None:
    from services.training.search import run_search

    # in order: two sound learning rates, then one far too high (Adam steps of ~3 per weight);
    # 2 CPUs, 1 per trial: the bad trial starts only after a sound one has passed epoch 1
    found = run_search(
        panel,
        base,
        max_epochs=3,
        num_cpus=2,
        space={"layers": [1], "units": [16], "learning_rate": [1e-2, 3e-3, 3.0]},
        grid=True,
        grace_period=1,
        reduction_factor=2,
    )
    by_lr = {t["config"]["learning_rate"]: t for t in found.trials}
    assert set(by_lr) == {1e-2, 3e-3, 3.0}
    assert all(t["status"] == "ok" for t in found.trials)
    bad = by_lr[3.0]
    assert bad["stopped_by_asha"] and bad["epochs"] < 3
    assert found.best_config["learning_rate"] in (1e-2, 3e-3)
    assert found.best_val_loss == min(t["val_loss"] for t in found.trials if t["val_loss"])
    for t in found.trials:
        if not t["stopped_by_asha"]:
            assert 1 <= t["epochs"] <= 3
