"""The retraining job end to end: store -> panel -> Ray Tune search -> refit best -> decide.

The best configuration is refitted in the driver (training is deterministic for a seed), so no
model crosses process boundaries. Any exception marks the job ``failed`` and changes nothing that
is served; a killed job leaves its row ``running`` and, at most, an unserved candidate version.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import pandas as pd

from services.features.demand import build_panel
from services.predictor.repository import ModelRepository
from services.predictor.training import TrainConfig
from services.trainer.champion import decide, finish_job, start_job


def retrain(
    engine: Any,
    repo: ModelRepository,
    frames: dict[str, pd.DataFrame],
    base: TrainConfig,
    *,
    trials: int = 4,
    max_epochs: int = 10,
    metric: str = "wape",
    margin: float = 0.0,
    num_cpus: int = 2,
    space: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Run one retraining job and return its record (decision, both metric values, trials)."""
    from services.trainer.fit import fit
    from services.trainer.search import run_search

    config = {
        "trials": trials,
        "max_epochs": max_epochs,
        "metric": metric,
        "margin": margin,
        "base": asdict(base),
    }
    job_id = start_job(engine, config)
    try:
        panel = build_panel(frames)
        found = run_search(
            panel,
            base,
            trials=trials,
            max_epochs=max_epochs,
            num_cpus=num_cpus,
            space=space,
            seed=base.seed,
        )
        best = fit(found.best_config, panel, replace(base, epochs=max_epochs))
        decision = decide(
            engine,
            repo,
            panel,
            best.trained,
            replace(base, epochs=max_epochs),
            job_id=job_id,
            metric=metric,
            margin=margin,
            extra_metadata={"search": {"best_config": found.best_config}},
        )
        result = {
            **decision.to_dict(),
            "best_config": found.best_config,
            "best_val_loss": found.best_val_loss,
            "trials": found.trials,
            "search_seconds": found.seconds,
        }
    except BaseException as exc:
        finish_job(engine, job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    finish_job(engine, job_id, result=result)
    return result
