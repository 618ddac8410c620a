"""``tailorline train --workers N``: export the store, train on Ray, publish like ``run_training``.

Steps: the store's Parquet export (:func:`services.store.export.export_parquet`) into
``export_dir`` (a folder every Ray node reads: on Kubernetes the shared volume), a Ray to run on
(the cluster of the RayJob when ``RAY_ADDRESS`` is set, else a local one with ``workers`` CPUs,
stopped at the end), the demand panel and rows on Ray Data and the fit on Ray Train
(:mod:`services.training.distributed`), then the same publication as
:func:`services.training.run.run_training`: a new demand version with its hold-out metrics and
feature schema, registered in the store, served unless ``promote=False``; the cost model (trained
on production records, which stay small) by the usual single-process code.

What differs from the single-process ``train`` (docs/distributed-training.md): the demand version
served is the hold-out fit (no refit on every week), and the hold-out report has no LightGBM
baseline (it needs every training row in one process).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.common.errors import FailedPrecondition
from services.registry.consistency import check_versions
from services.registry.promote import promote as promote_version
from services.registry.repository import ModelRepository
from services.training.distributed import DistributedConfig, train_demand_distributed
from services.training.run import has_cost_inputs, publish_demand, report_shape
from services.training.train import Progress, TrainConfig


def run_distributed_training(
    engine: Any,
    repo: ModelRepository,
    cfg: TrainConfig,
    dist: DistributedConfig,
    export_dir: str | Path,
    *,
    truth: dict[str, Any] | None = None,
    progress: Progress | None = None,
    promote: bool = True,
) -> dict[str, Any]:
    """Train both models (the demand model on Ray), publish them, return ``train``'s report."""
    import ray

    from services.store.export import export_parquet
    from services.training.cost_loop import publish_cost
    from services.training.ray_features import panel_from_export
    from services.training.ray_local import shutdown_ray

    rows = export_parquet(engine, export_dir)
    # Ray Train's checkpoints beside the export: a path every node of a cluster reaches
    dist = replace(dist, storage_path=dist.storage_path or str(Path(export_dir).resolve() / "ray"))
    if not rows.get("orders"):
        raise FailedPrecondition("no orders to train on; run `tailorline ingest DIR` first")
    started_here = not ray.is_initialized()
    if started_here:
        os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
        # inside a RayJob: join its cluster; else a local Ray sized for the workers
        cpus = None if os.environ.get("RAY_ADDRESS") else int(dist.workers * dist.cpus_per_worker)
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        panel, frames = panel_from_export(export_dir)
        skip_cost = has_cost_inputs(frames)
        check_versions(engine, repo, ("demand",) if skip_cost else ("demand", "cost"))
        demand = train_demand_distributed(panel, cfg, dist, progress)
    finally:
        if started_here:
            shutdown_ray()
    version, common = publish_demand(repo, engine, panel, demand, cfg)
    cutoff = panel.week_at(panel.n_weeks - 1 - cfg.holdout_weeks)
    served: dict[str, Any] = {"demand": version}
    fits: dict[str, Any] = {"demand": {"holdout_fit": version, "refit": None}}
    if skip_cost:
        cost_report: dict[str, Any] = {"skipped": skip_cost}
        served["cost"] = None
    else:
        cost_report, served["cost"], fits["cost"] = publish_cost(
            engine, repo, frames, cutoff, cfg, common, truth=truth, progress=progress
        )
    for name, v in served.items():
        if promote and v is not None:
            promote_version(engine, repo, name, v)
    report = report_shape(demand.metrics, cost_report, served, demand.info)
    report["refit"] = fits
    report["distributed"] = demand.info["distributed"]
    return report
