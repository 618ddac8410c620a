"""Ray Tune search over the demand model: a thin adapter around :func:`services.trainer.fit.fit`.

Local Ray (``ray.init(num_cpus=..., include_dashboard=False)``, auth and usage stats off), always
shut down. The panel goes to the workers once through ``tune.with_parameters`` (object store).
The ASHA scheduler stops weak trials at its rungs; ``train_demand`` reports once per trial (it has
no per-epoch hook carrying the validation loss), so with the current trainable ASHA only ranks
finished trials and the budget is ``max_epochs`` per trial with early stopping inside each fit.
Trials are ranked by validation loss, never by the hold-out (that one decides champion/challenger).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from services.features.demand import DemandPanel
from services.predictor.training import TrainConfig

DEFAULT_SPACE: dict[str, list[Any]] = {
    "layers": [1, 2, 3],
    "units": [16, 32, 64],
    "learning_rate": [1e-3, 3e-3, 1e-2],
}


@dataclass(frozen=True)
class SearchResult:
    best_config: dict[str, Any]
    best_val_loss: float
    trials: list[dict[str, Any]]  # config, val_loss, epochs, status per trial
    seconds: float


def _trainable(config: dict[str, Any], panel: DemandPanel, base: TrainConfig) -> None:
    from ray import tune

    from services.trainer.fit import fit

    result = fit(config, panel, base)
    tune.report({"val_loss": result.val_loss, "epochs": result.epochs})


def run_search(
    panel: DemandPanel,
    base: TrainConfig,
    *,
    trials: int = 4,
    max_epochs: int = 10,
    num_cpus: int = 2,
    space: dict[str, list[Any]] | None = None,
    seed: int = 7,
    storage: str | None = None,
) -> SearchResult:
    """Run ``trials`` configurations under ASHA on a local Ray; return the best by val loss."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    space = space or DEFAULT_SPACE
    param_space: dict[str, Any] = {k: tune.choice(list(v)) for k, v in space.items()}
    param_space["epochs"] = max_epochs
    started = time.perf_counter()
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="tailorline-tune-", dir=storage) as tmp:
            tuner = tune.Tuner(
                tune.with_resources(
                    tune.with_parameters(_trainable, panel=panel, base=base), {"cpu": 1}
                ),
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    metric="val_loss",
                    mode="min",
                    num_samples=trials,
                    scheduler=ASHAScheduler(max_t=max_epochs, grace_period=1),
                    search_alg=BasicVariantGenerator(random_state=seed),
                ),
                run_config=tune.RunConfig(
                    storage_path=tmp, name="retrain", verbose=0, log_to_file=False
                ),
            )
            grid = tuner.fit()
            rows: list[dict[str, Any]] = []
            for i in range(len(grid)):
                r = grid[i]
                cfg = dict(r.config or {})
                rows.append(
                    {
                        "config": cfg,
                        "val_loss": (r.metrics or {}).get("val_loss"),
                        "epochs": (r.metrics or {}).get("epochs"),
                        "status": "error" if r.error else "ok",
                    }
                )
            ok = [t for t in rows if t["status"] == "ok" and t["val_loss"] is not None]
            if not ok:
                from services.common.errors import FailedPrecondition

                raise FailedPrecondition("every Ray Tune trial failed", field="trials")
            best = min(ok, key=lambda t: float(t["val_loss"]))
    finally:
        ray.shutdown()
    return SearchResult(
        dict(best["config"]), float(best["val_loss"]), rows, round(time.perf_counter() - started, 1)
    )
