"""Ray Tune search over the demand model: a thin adapter around :func:`services.training.fit.fit`.

Local Ray (``ray.init(num_cpus=..., include_dashboard=False)``, auth and usage stats off), always
shut down. The panel goes to the workers once through ``tune.with_parameters`` (object store).
Each trial reports its validation loss to Tune after every epoch (a Keras callback that this
adapter passes into the plain ``fit``), so the ASHA scheduler (``time_attr`` =
``training_iteration`` = epochs, ``max_t`` = ``max_epochs``) stops weak trials at its rungs
(``grace_period``, then every ``reduction_factor`` times as many epochs). The reported
``val_loss`` is the best so far (early stopping restores the best weights, so that is the model a
trial ends with). Trials are ranked by validation loss, never by the hold-out (that one decides
champion/challenger); trials skip the hold-out evaluation altogether.

Speed: a trial trains on every ``SEARCH_STRIDE_FACTOR``-th forecast origin of what the refit
uses (``base.origin_stride``), a quarter of its rows (every trial the same rows, so the ranking
stays fair), which keeps 8 trials of the ``standard`` preset within minutes on two cores; the best
configuration is refitted on the full training set by the job.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Any

from services.common.errors import FailedPrecondition
from services.features.demand import DemandPanel
from services.training.fit import fit
from services.training.train import TrainConfig

DEFAULT_SPACE: dict[str, list[Any]] = {
    "layers": [1, 2, 3],
    "units": [16, 32, 64],
    "learning_rate": [1e-3, 3e-3, 1e-2],
    "dropout": [0.0, 0.1, 0.2],
    "quantile_head": ["ratio", "sorted"],
    "head_units": [0, 16],
}
GRACE_PERIOD = 1  # epochs before ASHA may stop a trial
REDUCTION_FACTOR = 2  # ASHA keeps the best 1/2 at each rung (epochs 1, 2, 4, 8, ...)
SEARCH_STRIDE_FACTOR = 4  # trials use every 4th origin of the refit's training rows
BAD_LOSS = 1e9  # reported instead of a non-finite loss (ASHA's percentiles need finite numbers)
#: most trials that share one GPU (a small Keras model leaves a GPU mostly idle: 4 fit at once)
TRIALS_PER_GPU = 4


def trial_resources(cluster: dict[str, float], trials: int) -> dict[str, float]:
    """Ray resources of one Tune trial: 1 CPU, plus a GPU share where the cluster has GPUs.

    ``cluster`` is ``ray.cluster_resources()``. Without ``GPU`` in it (or with 0): CPU only, as
    before. With ``G`` GPUs: each trial asks ``{"GPU": f}``, ``f`` = G / (the trials that can run at
    once), never more than 1 and never less than ``1 / TRIALS_PER_GPU``, so every GPU is used
    and no trial waits for a GPU that is free. Plain code: the tests call it without Ray.
    """
    gpus = float(cluster.get("GPU", 0.0) or 0.0)
    if gpus <= 0:
        return {"cpu": 1}
    cpus = max(int(cluster.get("CPU", 1.0) or 1.0), 1)
    parallel = max(min(int(trials), cpus), 1)
    share = min(1.0, max(gpus / parallel, 1.0 / TRIALS_PER_GPU))
    if share < 1.0:  # a share Ray can pack exactly: 1/2, 1/3 or 1/4 of a GPU
        share = 1.0 / math.ceil(1.0 / share)
    return {"cpu": 1, "gpu": share}


def refit_resources(cluster: dict[str, float]) -> dict[str, float]:
    """Ray resources of the final refit: one whole GPU where the cluster has one, else 1 CPU."""
    return (
        {"num_cpus": 1, "num_gpus": 1}
        if float(cluster.get("GPU", 0) or 0) >= 1
        else {"num_cpus": 1}
    )


@dataclass(frozen=True)
class SearchResult:
    best_config: dict[str, Any]
    best_val_loss: float
    # per trial: config, val_loss (best), epochs (run), stopped_by_asha, status ("ok"/"error")
    trials: list[dict[str, Any]]
    seconds: float
    #: what each trial asked Ray for ({"cpu": 1} or {"cpu": 1, "gpu": share})
    resources: dict[str, float] | None = None


def trial_base(base: TrainConfig) -> TrainConfig:
    """The TrainConfig the trials start from: the refit's, on every 4th of its forecast origins."""
    return replace(base, origin_stride=base.origin_stride * SEARCH_STRIDE_FACTOR)


def tune_report_callback() -> Any:
    """A Keras callback that reports each epoch's validation loss to Ray Tune."""
    import keras
    from ray import tune

    class TuneReport(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best = math.inf

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            loss = float((logs or {}).get("val_loss", math.nan))
            loss = loss if math.isfinite(loss) else BAD_LOSS
            self.best = min(self.best, loss)
            done = bool(self.model.stop_training) or epoch + 1 >= int(self.params["epochs"])
            # "finished": the fit ends here by itself (early stopping or its last epoch); a
            # trial whose last report is not finished was stopped by the scheduler
            report = {"val_loss": self.best, "epoch_val_loss": loss, "epoch": epoch + 1}
            tune.report({**report, "finished": done})

    return TuneReport()


def _trainable(config: dict[str, Any], panel: DemandPanel, base: TrainConfig) -> None:
    fit(config, panel, base, callbacks=[tune_report_callback()], evaluate=False)


def _row(config: dict[str, Any], metrics: dict[str, Any], error: bool) -> dict[str, Any]:
    loss = metrics.get("val_loss")
    if loss is not None and (not math.isfinite(float(loss)) or float(loss) >= BAD_LOSS):
        loss = None
    epochs = int(metrics.get("epoch", 0) or 0)
    stopped = not error and epochs > 0 and not bool(metrics.get("finished", True))
    return {
        "config": config,
        "val_loss": loss if epochs > 0 else None,
        "epochs": epochs,
        "stopped_by_asha": stopped,
        # "no result": the trial ended without reporting a single epoch
        "status": "error" if error else ("ok" if epochs > 0 else "no result"),
    }


def run_search(
    panel: DemandPanel,
    base: TrainConfig,
    *,
    trials: int = 4,
    max_epochs: int = 10,
    num_cpus: int | None = 2,
    space: dict[str, list[Any]] | None = None,
    seed: int = 7,
    storage: str | None = None,
    grace_period: int = GRACE_PERIOD,
    reduction_factor: float = REDUCTION_FACTOR,
    grid: bool = False,
) -> SearchResult:
    """Run ``trials`` configurations under ASHA on a local Ray; return the best by val loss.

    ``num_cpus=None`` joins the Ray that ``RAY_ADDRESS`` names (a Ray job) instead of starting one.
    ``space`` maps a config key to its choices (``DEFAULT_SPACE``'s keys are the ones searched
    by default); ``trials`` samples are drawn from it. ``grid=True`` runs every combination of
    ``space`` once instead, in order (``trials`` is then ignored).
    """
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from services.training.ray_local import shutdown_ray

    space = space or DEFAULT_SPACE
    if grid:
        param_space: dict[str, Any] = {k: tune.grid_search(list(v)) for k, v in space.items()}
    else:
        param_space = {k: tune.choice(list(v)) for k, v in space.items()}
    param_space["epochs"] = max_epochs
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=max_epochs,
        grace_period=min(grace_period, max_epochs),
        reduction_factor=reduction_factor,
    )
    started = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        resources = trial_resources(dict(ray.cluster_resources()), trials)
        with tempfile.TemporaryDirectory(prefix="tailorline-tune-", dir=storage) as tmp:
            tuner = tune.Tuner(
                tune.with_resources(
                    tune.with_parameters(_trainable, panel=panel, base=trial_base(base)),
                    resources,
                ),
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    metric="val_loss",
                    mode="min",
                    num_samples=1 if grid else trials,
                    scheduler=scheduler,
                    search_alg=BasicVariantGenerator(random_state=seed),
                    # not reuse_actors: a reused actor lost the trial after an ASHA stop (no
                    # result, the previous trial's config) in Ray 2.60
                    reuse_actors=False,
                ),
                run_config=tune.RunConfig(
                    storage_path=tmp, name="retrain", verbose=0, log_to_file=False
                ),
            )
            grid_result = tuner.fit()
            rows = [
                _row(dict(r.config or {}), dict(r.metrics or {}), r.error is not None)
                for r in (grid_result[i] for i in range(len(grid_result)))
            ]
            ok = [t for t in rows if t["status"] == "ok" and t["val_loss"] is not None]
            if not ok:
                raise FailedPrecondition("every Ray Tune trial failed", field="trials")
            best = min(ok, key=lambda t: float(t["val_loss"]))
    finally:
        shutdown_ray()
    return SearchResult(
        dict(best["config"]),
        float(best["val_loss"]),
        rows,
        round(time.perf_counter() - started, 1),
        resources,
    )
