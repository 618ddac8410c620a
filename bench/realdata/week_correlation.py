"""How a forecast's weeks err together on real sales: the week correlation the planner would
measure from a store of this data (issue 15; docs/monitoring.md).

    .venv/bin/python bench/realdata/week_correlation.py DIR [--seed 7] [--path-weeks 4]
                                                        [--holdout-weeks 13]

The demand model is trained as ``tailorline train`` trains it (the last ``--holdout-weeks``
held out; ``services.training.train.train_demand``) and then served, unchanged, as a model is
between retrains: from every origin in the hold-out that leaves ``--path-weeks`` weeks of
actuals, it forecasts each warm variant's next ``--path-weeks`` weeks (the distribution's mean,
as ``forecasts_served.mean`` stores it). Each such path against the units then sold is one
forecast path of ``services.monitoring.correlation``, and :func:`estimate` turns them into the
``week_correlation`` a gateway on this store would plan with. The same is done with a 13-week
moving median (a forecaster with no model in it) for reference, and the pooled lag-k
correlation of the errors shows whether they hold a level (flat in the lag: the scenarios'
equicorrelated copula) or decay like an AR(1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def lag_correlations(paths: list[np.ndarray], lags: int) -> list[float]:
    """Pooled, uncentred ``sum e_t e_{t+k} / sum e_t^2`` over the paths, k = 1..lags (the same
    pooling as the estimate's ratio: a shared level counts as correlation)."""
    out = []
    for k in range(1, lags + 1):
        num = sum(float(np.dot(p[:-k], p[k:])) for p in paths if len(p) > k)
        den = sum(float(np.sum(p[:-k] ** 2) + np.sum(p[k:] ** 2)) / 2 for p in paths if len(p) > k)
        out.append(num / den if den > 0 else float("nan"))
    return out


def main(argv: list[str] | None = None) -> int:
    from services.common.quantiles import QUANTILES
    from services.common.quantiles import mean as quantile_mean
    from services.features.demand import build_panel, features_at
    from services.features.tables import read_dataset_folder
    from services.monitoring.correlation import estimate
    from services.training.tensors import predict_batched
    from services.training.train import TrainConfig, observed_rows, train_demand

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--path-weeks", type=int, default=4)
    ap.add_argument("--holdout-weeks", type=int, default=13)
    ap.add_argument("--lags", type=int, default=3)
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    print(f"load average before: {os.getloadavg()}", flush=True)
    started = time.perf_counter()
    panel = build_panel(read_dataset_folder(args.folder))
    cfg = TrainConfig(seed=args.seed, holdout_weeks=args.holdout_weeks)
    trained = train_demand(panel, cfg, evaluate=False)
    train_end = panel.n_weeks - 1 - cfg.holdout_weeks
    h = args.path_weeks
    print(f"trained in {time.perf_counter() - started:.0f} s, until {trained.info['train_until']}")

    model_paths: list[np.ndarray] = []
    median_paths: list[np.ndarray] = []
    origins: list[int] = []
    for o in range(train_end, panel.n_weeks - h):
        rows = features_at(panel, o, panel.variants, h)
        rows = rows[rows["_launch_idx"] <= o].reset_index(drop=True)  # warm: sold by the origin
        rows["y"] = panel.demand[rows["_row"].to_numpy(), rows["_target_idx"].to_numpy()]
        rows = observed_rows(panel, rows)
        q = predict_batched(trained.model, rows, trained.inputs)
        rows["mean"] = quantile_mean(np.asarray(q, dtype=float), QUANTILES)
        r = rows["_row"].to_numpy()
        rows["median13"] = np.median(panel.demand[r][:, max(0, o - 12) : o + 1], axis=1)
        for _, g in rows.groupby("variant_id", sort=True):
            y = g["y"].to_numpy(dtype=float)
            model_paths.append(y - g["mean"].to_numpy(dtype=float))
            median_paths.append(y - g["median13"].to_numpy(dtype=float))
            origins.append(o)

    print(f"\n{len(model_paths)} paths of up to {h} weeks from {len(set(origins))} origins\n")
    lag_head = " | ".join(f"lag {k}" for k in range(1, args.lags + 1))
    print(f"| forecaster | paths | ratio | week correlation | {lag_head} |")
    print("|---|---:|---:|---:|" + "---:|" * args.lags)
    for name, paths in (("demand model (mean)", model_paths), ("13-week median", median_paths)):
        c = estimate(paths, origins=origins)
        lags = " | ".join(f"{x:.3f}" for x in lag_correlations(paths, args.lags))
        ratio = "-" if c.ratio is None else f"{c.ratio:.3f}"
        rho = "-" if c.rho is None else f"{c.rho:.3f}"
        print(f"| {name} | {c.paths:,} | {ratio} | {rho} | {lags} |")
    print(f"\n{time.perf_counter() - started:.0f} s; load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
