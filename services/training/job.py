"""The retraining job end to end: store -> panel -> Ray Tune search -> refit best -> decide.

The best configuration is refitted in the driver (training is deterministic for a seed), so no
model crosses process boundaries. Any exception marks the job ``failed`` and changes nothing that
is served; a killed job leaves its row ``running`` and, at most, an unserved candidate version.

A launcher (:mod:`services.training.launch`) creates the job row ``pending`` first, with the
request's config, and passes only its id (``job_id``): the job then claims that row (``running``)
instead of creating one, and takes its knobs from the row's config (checked again against
:mod:`services.training.limits`; a stored config out of bounds fails the job), not from a
command line. Inside a Ray
job (``RAY_ADDRESS`` set: the local stack's Ray, or a KubeRay RayJob's cluster) the search joins
that cluster instead of starting a Ray of its own, so its trials share the cluster's CPUs.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from services.common.errors import FailedPrecondition, InvalidArgument
from services.features import observed
from services.features.demand import build_panel
from services.registry.consistency import check_versions
from services.registry.repository import ModelRepository
from services.store.jobs import claim_job, finish_job, start_job
from services.training.champion import decide
from services.training.evidence import PromotionRule
from services.training.fit import fit, trial_config
from services.training.limits import check_config
from services.training.search import refit_resources, run_search
from services.training.train import TrainConfig


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
    job_id: str | None = None,
    models: list[str] | tuple[str, ...] = ("demand",),
) -> dict[str, Any]:
    """Run one retraining job and return its record (decision, both metric values, trials).

    ``job_id``: a ``pending`` row a launcher created; its stored config replaces the keyword
    arguments and ``base``'s seed, hold-out weeks and origin stride where it sets them (its
    ``trigger`` is echoed into the result). None creates a new row. ``models`` (or the row's
    ``models``): ``demand`` (the Tune search), ``cost`` (the cost model under the same rule; with
    demand its decision is the result's ``cost``; alone it is the result). ``metric_before`` is the
    served model's value on the hold-out, ``metric_after`` the challenger's.
    """
    trigger = None
    rule = PromotionRule(margin=margin)
    stored: dict[str, Any] = {}
    if job_id is None:
        config = {
            "trials": trials,
            "max_epochs": max_epochs,
            "metric": metric,
            "margin": margin,
            "models": list(models),
            "base": asdict(base),
        }
        job_id = start_job(engine, config)
    else:
        try:
            stored = check_config(claim_job(engine, job_id))
        except InvalidArgument as exc:
            finish_job(engine, job_id, error=f"stored config refused: {exc}")
            raise
        trigger = stored.get("trigger")
        trials = stored.get("trials", trials)
        max_epochs = stored.get("max_epochs", max_epochs)
        metric = stored.get("metric", metric)
        margin = stored.get("margin", margin)
        space = stored.get("space", space)
        base = replace(
            base,
            **{k: stored[k] for k in ("seed", "holdout_weeks", "origin_stride") if k in stored},
        )
        rule = PromotionRule(
            origins=stored.get("origins", rule.origins),
            origin_weeks=stored.get("origin_weeks", rule.origin_weeks),
            alpha=stored.get("alpha", rule.alpha),
            margin=margin,
        )
    models = list(stored.get("models", models))
    # inside a Ray job: join its cluster (ray.init refuses num_cpus for an existing cluster)
    cpus: Any = None if os.environ.get("RAY_ADDRESS") else num_cpus
    try:
        check_versions(engine, repo, models)
        if "demand" not in models:  # the cost model alone: no search, the same rule
            cost = retrain_cost(engine, repo, frames, base, job_id=job_id, rule=rule)
            result = {**cost, "metric_before": cost["champion"],
                      "metric_after": cost["challenger"], "trigger": trigger}  # fmt: skip
            finish_job(engine, job_id, result=result)
            return result
        panel = observed.attach(build_panel(frames), frames)
        found = run_search(
            panel,
            base,
            trials=trials,
            max_epochs=max_epochs,
            num_cpus=cpus,
            space=space,
            seed=base.seed,
        )
        final = dict(
            panel=panel,
            best_config=found.best_config,
            base=replace(base, epochs=max_epochs),
            job_id=job_id,
            metric=metric,
            rule=replace(rule, margin=margin),
        )
        decision, on = _on_gpu_if_any(engine, repo, found.resources, cpus, final)
        result = {
            **decision,
            "metric_before": decision["champion"],
            "metric_after": decision["challenger"],
            "trigger": trigger,
            "best_config": found.best_config,
            "best_val_loss": found.best_val_loss,
            "trials": found.trials,
            "trial_resources": found.resources,
            "refit_ran_on": on,
            "search_seconds": found.seconds,
        }
        if "cost" in models:
            result["cost"] = retrain_cost(engine, repo, frames, base, job_id=job_id, rule=rule)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, SystemExit | KeyboardInterrupt):  # SIGTERM/SIGINT (e.g. job stop)
            error = f"stopped before it finished ({error})"
        finish_job(engine, job_id, error=error)
        raise
    finish_job(engine, job_id, result=result)
    return result


def retrain_cost(
    engine: Any,
    repo: ModelRepository,
    frames: dict[str, pd.DataFrame],
    base: TrainConfig,
    *,
    job_id: str,
    rule: PromotionRule,
) -> dict[str, Any]:
    """The cost model's champion/challenger (:func:`services.training.cost_loop.decide_cost`),
    its hold-out the last ``base.holdout_weeks`` weeks of production records."""
    from services.features.tables import monday
    from services.training.cost_loop import decide_cost

    dates = pd.to_datetime(frames.get("production", pd.DataFrame()).get("date"), errors="coerce")
    if dates is None or dates.dropna().empty:
        raise FailedPrecondition("no production records to retrain the cost model on",
                                 field="production")  # fmt: skip
    last = monday(pd.Series([dates.max()])).iloc[0]
    cutoff = last - pd.Timedelta(weeks=base.holdout_weeks)
    return decide_cost(engine, repo, frames, cutoff, base, job_id=job_id, rule=rule)


def final_stage(
    engine: Any,
    repo: ModelRepository,
    *,
    panel: Any,
    best_config: dict[str, Any],
    base: TrainConfig,
    job_id: str,
    metric: str,
    rule: PromotionRule,
) -> dict[str, Any]:
    """Fit the best configuration before the hold-out, decide, and on a win refit it on every
    week and serve that (:func:`services.training.champion.decide`); the decision as a dict."""
    best = fit(best_config, panel, base)
    decision = decide(
        engine,
        repo,
        panel,
        best.trained,
        base,
        job_id=job_id,
        metric=metric,
        margin=rule.margin,
        rule=rule,
        challenger_cfg=trial_config(best_config, base),
        extra_metadata={"search": {"best_config": best_config}},
    )
    return decision.to_dict()


def _final_remote(db_url: str, models_root: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """:func:`final_stage` in a Ray task (on a GPU worker): its own engine and repository."""
    from services.store.db import make_engine

    engine = make_engine(db_url)
    try:
        return final_stage(engine, ModelRepository(Path(models_root)), **kwargs)
    finally:
        engine.dispose()


def _on_gpu_if_any(
    engine: Any,
    repo: ModelRepository,
    trial_res: dict[str, float] | None,
    cpus: Any,
    kwargs: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """The final fits where the search found GPUs: a Ray task asking for one GPU
    (:func:`services.training.search.refit_resources`); else here, in the driver."""
    if not (trial_res or {}).get("gpu"):
        return final_stage(engine, repo, **kwargs), "driver (no GPU in the cluster)"
    import ray

    from services.training.ray_local import shutdown_ray

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        res = refit_resources(dict(ray.cluster_resources()))
        task = ray.remote(num_cpus=res["num_cpus"], num_gpus=res.get("num_gpus", 0))(_final_remote)
        url = engine.url.render_as_string(hide_password=False)
        out = ray.get(task.remote(url, str(repo.root), kwargs))
    finally:
        shutdown_ray()
    return out, f"ray task {res}"
