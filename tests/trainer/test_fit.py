"""The plain fit function (no Ray): a trial config becomes a TrainConfig and a trained model."""

from __future__ import annotations

import math

from services.common.quantiles import MEDIAN as P50
from services.training.fit import trial_config
from services.training.train import TrainConfig


def test_trial_config_maps_the_search_space_onto_train_config() -> None:
    cfg = trial_config(
        {"layers": 3, "units": 32, "learning_rate": 1e-2, "epochs": 2}, TrainConfig()
    )
    assert cfg.hidden == (32, 16, 8)
    assert cfg.learning_rate == 1e-2 and cfg.epochs == 2
    assert trial_config({"layers": 2, "units": 4}, TrainConfig()).hidden == (4, 4)


def test_fit_without_ray_trains_a_model_that_forecasts_the_holdout(good_fit) -> None:
    assert math.isfinite(good_fit.val_loss) and good_fit.val_loss > 0
    assert 1 <= good_fit.epochs <= 3  # conftest's epochs
    m = good_fit.trained.metrics["all_rows"]
    assert 0 < m["wape"] < 1.5  # a real forecast, not noise
    assert good_fit.trained.info["train_until"] < good_fit.trained.metrics["holdout"]["first_week"]


def test_corrupted_labels_make_a_worse_model(panel, good_fit, bad_fit) -> None:
    from services.training.champion import holdout
    from services.training.metrics import wape
    from services.training.train import predict_batched

    rows, y = holdout(panel, TrainConfig(holdout_weeks=6))
    good = wape(y, predict_batched(good_fit.trained.model, rows, good_fit.trained.inputs)[:, P50])
    bad = wape(y, predict_batched(bad_fit.trained.model, rows, bad_fit.trained.inputs)[:, P50])
    assert round(good, 4) == good_fit.trained.metrics["all_rows"]["wape"]  # same rows
    assert bad > 1.5 * good
