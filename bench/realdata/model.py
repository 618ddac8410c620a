"""Train the demand model on a data-set folder and print it beside every baseline (issue 14).

    .venv/bin/python bench/realdata/model.py DIR [--seed 7] [--epochs 30] [--origin-stride 2]
                                             [--json FILE]

The same training and hold-out as ``tailorline train`` (``services.training.train.train_demand``:
the last 13 weeks held out, one origin, horizons 1..13, warm series), without the cost model and
without publishing anything, so a demand-only data set (``completejourney.py``'s) works and
nothing is written to a model repository. Prints one table: WAPE, bias, MASE, pinball and the
P10-P90 / P05-P95 coverage of the model and of each baseline on the same rows, and the ratio of
the model's WAPE to the best baseline's (issue 14's target: <= 0.90).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv: list[str] | None = None) -> int:
    from services.features.demand import build_panel
    from services.features.tables import read_dataset_folder
    from services.training.train import TrainConfig, train_demand

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--origin-stride", type=int, default=2)
    ap.add_argument("--holdout-weeks", type=int, default=13)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    started = time.perf_counter()
    panel = build_panel(read_dataset_folder(args.folder))
    cfg = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        origin_stride=args.origin_stride,
        holdout_weeks=args.holdout_weeks,
    )
    trained = train_demand(panel, cfg)
    m = trained.metrics
    seconds = round(time.perf_counter() - started, 1)
    rows = {"model": m["model"], **m["baselines"]}
    print(
        f"{'method':<20}{'WAPE':>8}{'bias':>8}{'MASE':>8}{'pinball':>9}{'P10-P90':>9}{'P05-P95':>9}"
    )
    for name, s in rows.items():
        print(
            f"{name:<20}{_f(s['wape']):>8}{_f(s['bias']):>8}{_f(s['mase']):>8}"
            f"{_f(s['pinball']):>9}{_f(s['coverage_p10_p90']):>9}{_f(s['coverage_p05_p95']):>9}"
        )
    best = m["best_baseline"]
    ratio = m["model"]["wape"] / m["baselines"][best]["wape"]
    cold = m["cold_start"]
    print(f"best baseline {best}: model / best = {ratio:.3f} (target <= 0.90)")
    if cold["variants"]:
        print(
            f"cold start ({cold['variants']} variants): model {_f(cold['model']['wape'])}, "
            f"family mean {_f(cold['family_mean']['wape'])}"
        )
    print(f"rows {m['model']['rows']}, epochs {trained.info['epochs']}, {seconds} s")
    if args.json:
        out = {"metrics": m, "training": trained.info, "seconds": seconds, "ratio": ratio}
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
