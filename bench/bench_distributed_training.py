"""Benchmark the demand model on Ray Data + Ray Train against the single-process fit.

Usage: ``python bench/bench_distributed_training.py [--preset large] [--seed 1] [--workers 2]
[--train-seed 7] [--only single|distributed] [--epochs 30] [--origin-stride 2] [--holdout-weeks 13]
[--data DIR] [--parquet DIR] [--keep DIR]``.

Steps: ``tailorline datagen`` (or ``--data DIR``), ``tailorline ingest`` into a SQLite store,
the store's Parquet export (``services.store.export``; or an existing one with ``--parquet``),
then, timed separately, on the same configuration (``tailorline train``'s defaults):

1. single process: ``load_frames`` -> ``build_panel`` -> ``train_demand`` (pandas + Keras);
2. distributed: a local Ray with ``--workers`` CPUs; the panel from the export on Ray Data, the
   training rows on Ray Data, the fit on Ray Train (TensorflowTrainer, ``--workers`` workers,
   MultiWorkerMirroredStrategy).

Both models are scored on the same hold-out rows by the same code (``evaluate_demand`` without
the baselines, which are not what is compared and took most of a ``large`` single-process run).
Prints each fit's wall time (reading and features included, scoring not), training rows,
epochs, peak RSS of this process, and the hold-out WAPE/MASE/P10-P90 coverage of each, the
relative WAPE difference and whether it is within 2% (``|WAPE_dist - WAPE_single| <= 0.02 *
WAPE_single``), with the load average before and after, as markdown for docs/benchmarks.md.
Exits 1 when the distributed WAPE is not within 2%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TAILORLINE_DEV_PSEUDONYM_KEY", "true")

if TYPE_CHECKING:  # the bench imports the project after the environment is set
    from services.training.train import TrainConfig


def _cli(home: Path, *args: str) -> None:
    code = "import sys; from services.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "TAILORLINE_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"tailorline {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="large")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30, help="Most epochs (tailorline train: 30).")
    ap.add_argument("--origin-stride", type=int, default=2)
    ap.add_argument("--holdout-weeks", type=int, default=13)
    ap.add_argument("--data", type=Path, default=None, help="A datagen folder to use.")
    ap.add_argument("--parquet", type=Path, default=None, help="An existing export to use.")
    ap.add_argument("--keep", type=Path, default=None, help="Keep the work folder here.")
    ap.add_argument("--json", action="store_true", help="Print the results as JSON too.")
    ap.add_argument(
        "--train-seed", type=int, default=7, help="The fits' seed (tailorline train's default)."
    )
    ap.add_argument(
        "--only",
        choices=("single", "distributed"),
        default=None,
        help="Fit one path alone (e.g. a second seed of each, to see how far apart two seeds' "
        "fits lie next to the 2%% target).",
    )
    args = ap.parse_args()

    from services.features import observed
    from services.features.demand import build_panel
    from services.store.db import make_engine
    from services.store.export import export_parquet
    from services.store.frames import load_frames
    from services.training.train import TrainConfig, evaluate_demand, train_demand

    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-dist-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = _load()
    data = args.data or work / "data"
    db_url = f"sqlite:///{work / 'store.db'}"
    prep = time.perf_counter()
    if args.parquet is None:
        if args.data is None:
            _cli(work / "home", "datagen", "--preset", args.preset, "--seed", str(args.seed),
                 "--out", str(data))  # fmt: skip
        if not (work / "store.db").exists():
            _cli(work / "home", "--db", db_url, "ingest", str(data), "--quiet")
    parquet = args.parquet or work / "parquet"
    engine = make_engine(db_url) if args.parquet is None else None
    if engine is not None and not (parquet / "_export.json").exists():
        t = time.perf_counter()
        export_parquet(engine, parquet)
        print(f"export: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    prep_s = time.perf_counter() - prep
    cfg = TrainConfig(
        seed=args.train_seed, holdout_weeks=args.holdout_weeks, epochs=args.epochs,
        origin_stride=args.origin_stride,
    )  # fmt: skip

    def cleanup() -> None:
        if engine is not None:
            engine.dispose()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    results: dict[str, dict[str, object]] = {}
    if args.only == "distributed":
        _only(args, results, _distributed(args, cfg, parquet, results, None), load_before)
        cleanup()
        return
    # 1. single process (reads the store when there is one, else the export with pandas)
    t = time.perf_counter()
    if engine is not None:
        frames = load_frames(engine)
    else:
        from services.store.export import read_export

        frames = read_export(parquet)
    panel = observed.attach(build_panel(frames), frames)
    del frames
    # the two fits are compared on the model's own hold-out scores: the baselines (most of a
    # `large` single-process run's time) are left out of both
    panel_weeks = panel.n_weeks
    train_end = panel_weeks - 1 - cfg.holdout_weeks
    # like with like: the distributed fit is not refit on the validation weeks
    single = train_demand(panel, replace(cfg, refit_validation=False), evaluate=False)
    fit_s = time.perf_counter() - t
    scores = evaluate_demand(
        single.model, single.inputs, panel, train_end, cfg.holdout_weeks, baselines=False
    )
    results["single process"] = {
        **scores["model"], "holdout_rows": scores["model"]["rows"], "seconds": round(fit_s, 1),
        "rows": single.info["rows"], "epochs": single.info["epochs"],
    }  # fmt: skip
    del panel
    rss_single = _rss_gb()
    if args.only == "single":
        _only(args, results, "single process", load_before)
        cleanup()
        return

    # 2. Ray Data + Ray Train
    name = _distributed(args, cfg, parquet, results, panel_weeks)
    ws = float(results["single process"]["wape"])  # type: ignore[arg-type]
    wd = float(results[name]["wape"])  # type: ignore[arg-type]
    rel = (wd - ws) / ws if ws else float("inf")
    ok = abs(rel) <= 0.02

    print(f"## Distributed training: preset {args.preset} (seed {args.seed}), "
          f"{args.workers} local workers")  # fmt: skip
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{platform.python_version()}; load before {load_before}, after {_load()}")  # fmt: skip
    print(f"preparation (datagen, ingest, export): {prep_s:.0f} s; "
          f"driver peak RSS after the single-process fit {rss_single:.2f} GB, "
          f"after both {_rss_gb():.2f} GB")  # fmt: skip
    print()
    print("| path | wall s | training rows | hold-out rows | epochs | WAPE | MASE "
          "| P10-P90 coverage |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']} | {r['rows']:,} | {r['holdout_rows']:,} "
              f"| {r['epochs']} | {r['wape']:.4f} "
              f"| {r['mase']:.4f} | {r['coverage_p10_p90']:.3f} |")  # fmt: skip
    print()
    print(f"hold-out WAPE: distributed {wd:.4f} vs single process {ws:.4f}: {rel:+.2%} "
          f"({'within' if ok else 'NOT within'} 2%)")  # fmt: skip
    if args.json:
        print(json.dumps({"results": results, "relative_wape_difference": rel, "within_2pct": ok}))
    cleanup()
    sys.exit(0 if ok else 1)


def _distributed(
    args: argparse.Namespace,
    cfg: TrainConfig,
    parquet: Path,
    results: dict[str, dict[str, object]],
    panel_weeks: int | None,
) -> str:
    """The Ray Data + Ray Train fit on a local Ray of ``args.workers`` CPUs, scored like the
    single process's; its row goes into ``results`` under the returned name."""
    import ray

    from services.training.distributed import DistributedConfig, train_demand_distributed
    from services.training.ray_features import panel_from_export
    from services.training.train import evaluate_demand

    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    try:
        t = time.perf_counter()
        dpanel, _ = panel_from_export(parquet)
        dist = train_demand_distributed(
            dpanel, cfg, DistributedConfig(workers=args.workers), evaluate=False
        )
        fit_s = time.perf_counter() - t
        if panel_weeks is not None and dpanel.n_weeks != panel_weeks:
            raise SystemExit(f"the export has {dpanel.n_weeks} weeks, the store {panel_weeks}")
        train_end = dpanel.n_weeks - 1 - cfg.holdout_weeks
        dscores = evaluate_demand(
            dist.model, dist.inputs, dpanel, train_end, cfg.holdout_weeks, baselines=False
        )
    finally:
        ray.shutdown()
    name = f"Ray Train, {args.workers} workers"
    results[name] = {
        **dscores["model"], "holdout_rows": dscores["model"]["rows"],
        "seconds": round(fit_s, 1), "rows": dist.info["rows"], "epochs": dist.info["epochs"],
    }  # fmt: skip
    return name


def _only(
    args: argparse.Namespace, results: dict[str, dict[str, object]], name: str, load_before: str
) -> None:
    """One path's line (``--only``), and its JSON with ``--json``."""
    r = results[name]
    print(f"{name}, seed {args.train_seed}, {r['epochs']} epochs, {r['seconds']} s: "
          f"WAPE {r['wape']:.4f}, MASE {r['mase']:.4f}, P10-P90 coverage "
          f"{r['coverage_p10_p90']:.3f}; load {load_before} -> {_load()}")  # fmt: skip
    if args.json:
        print(json.dumps({"results": results, "train_seed": args.train_seed}))


if __name__ == "__main__":
    main()
