"""The hold-out fit learns from the most recent weeks, and a series' age past half a year does not
move its forecast (the network would extrapolate it at the hold-out's origin)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from services.features.demand import INPUT_CAPS
from services.training.tensors import predict_batched
from services.training.train import holdout_rows, train_demand


def test_the_scored_fit_is_refit_on_the_validation_weeks(good_fit) -> None:
    info = good_fit.trained.info
    refit = info["refit_validation"]
    # as many epochs as early stopping chose, on the fit rows and the validation rows together
    assert refit == {"epochs": info["best_epoch"], "rows": info["rows"] + info["validation_rows"]}


def test_a_search_trial_is_not_refit(panel, base) -> None:
    from services.training.fit import fit

    trial = fit({"layers": 1, "units": 8, "epochs": 1}, panel, base, evaluate=False)
    assert "refit_validation" not in trial.trained.info
    assert trial.trained.metrics == {}


def test_a_level_shift_in_the_validation_weeks_reaches_the_holdout_forecast(panel, base) -> None:
    # demand doubles from the first validation week on and stays there through the hold-out
    train_end = panel.n_weeks - 1 - base.holdout_weeks
    shifted = panel.demand.copy()
    shifted[:, train_end - base.val_weeks + 1 :] *= 2.0
    p = replace(panel, demand=shifted)
    cfg = replace(base, epochs=8)
    without = train_demand(p, replace(cfg, refit_validation=False)).metrics["model"]["bias"]
    refit = train_demand(p, cfg).metrics["model"]["bias"]
    # the fit that never saw the doubled weeks forecasts low; the refit has learned them
    assert without < 0 and abs(refit) < abs(without), (without, refit)


def test_age_past_the_cap_does_not_move_the_forecast(panel, good_fit) -> None:
    t = good_fit.trained
    rows = holdout_rows(panel, panel.n_weeks - 1 - 6, 6)
    rows = rows[rows["hist_weeks"] > 0].head(50).copy()
    at_cap = rows.copy()
    for name, cap in INPUT_CAPS.items():
        at_cap[name] = cap
    older = rows.copy()
    for name, cap in INPUT_CAPS.items():
        older[name] = 4 * cap
    q_cap = predict_batched(t.model, at_cap, t.inputs)
    q_old = predict_batched(t.model, older, t.inputs)
    np.testing.assert_allclose(q_old, q_cap, rtol=1e-6)
    # below the cap age is an input like any other
    young = rows.copy()
    for name in INPUT_CAPS:
        young[name] = 1.0
    assert not np.allclose(predict_batched(t.model, young, t.inputs), q_cap)
