"""Benchmark ``tailorline retrain``: the Ray Tune search (ASHA) on the ``standard`` preset.

Usage: ``python bench/bench_retrain.py [--preset standard] [--seed 7] [--trials 8]
[--max-epochs 10] [--holdout-weeks 13] [--prepared HOME] [--keep DIR] [-- more retrain options]``.

Steps, each through the CLI in a fresh ``TAILORLINE_HOME``: ``tailorline datagen --preset P --seed
S --out D``, ``tailorline ingest D``, ``tailorline train --holdout-weeks H`` (the served model, the
champion), then ``tailorline retrain --trials N --max-epochs E --holdout-weeks H --json``
(timed). ``--prepared HOME`` copies an already trained home instead of the first three steps
(the retrain is the only thing timed either way). Prints wall time, trials, epochs per trial,
trials stopped by ASHA, the best configuration and the challenger's metric against the served
model's, with the load average before and after, as markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _cli(home: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    code = "import sys; from services.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {
        **os.environ,
        "TAILORLINE_HOME": str(home),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if done.returncode:
        sys.exit(f"tailorline {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="standard")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--max-epochs", type=int, default=10)
    ap.add_argument("--holdout-weeks", type=int, default=13, help="For train and retrain.")
    ap.add_argument("--prepared", type=Path, default=None, help="A home with a served model.")
    ap.add_argument("--keep", type=Path, default=None, help="Keep the home here afterwards.")
    ap.add_argument("extra", nargs="*", help="More `tailorline retrain` options (after --).")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    home = tmp / "home"
    try:
        if args.prepared:
            shutil.copytree(args.prepared, home)
            print(f"home: copy of {args.prepared}")
        else:
            data = tmp / "data"
            home.mkdir()
            t0 = time.perf_counter()
            _cli(
                home,
                "datagen",
                "--preset",
                args.preset,
                "--seed",
                str(args.seed),
                "--out",
                str(data),
            )
            _cli(home, "ingest", str(data), "--quiet")
            t1 = time.perf_counter()
            _cli(home, "train", "--holdout-weeks", str(args.holdout_weeks))
            t2 = time.perf_counter()
            print(f"datagen + ingest {t1 - t0:.0f} s, train {t2 - t1:.0f} s (load {_load()})")
        retrain = ["retrain", "--trials", str(args.trials), "--max-epochs", str(args.max_epochs)]
        retrain += ["--holdout-weeks", str(args.holdout_weeks), *args.extra, "--json"]
        before = _load()
        t0 = time.perf_counter()
        done = _cli(home, *retrain, capture=True)
        wall = time.perf_counter() - t0
        after = _load()
        r = json.loads(done.stdout)
        trials = r["trials"]
        stopped = [t for t in trials if t.get("stopped_by_asha")]
        print(f"command: tailorline {' '.join(retrain)}")
        print(f"load average before: {before}; after: {after}")
        print()
        print(
            "| wall | search | trials | stopped by ASHA | epochs per trial | metric | "
            "challenger | served (champion) | promoted |"
        )
        print("|---:|---:|---:|---:|---|---|---:|---:|---|")
        champ = r["champion"]
        print(
            f"| {wall:.0f} s | {r['search_seconds']:.0f} s | {len(trials)} | {len(stopped)} | "
            f"{', '.join(str(t['epochs']) for t in trials)} | {r.get('metric', '?')} | "
            f"{r['challenger']:.4f} | {'-' if champ is None else f'{champ:.4f}'} | "
            f"{r['promoted']} |"
        )
        print()
        print(
            "| trial | layers | units | lr | dropout | head | head units | epochs | ASHA stop "
            "| val loss |"
        )
        print("|---:|---:|---:|---:|---:|---|---:|---:|---|---:|")
        for i, t in enumerate(trials, 1):
            c = t["config"]
            loss = "-" if t["val_loss"] is None else f"{t['val_loss']:.4f}"
            print(
                f"| {i} | {c.get('layers')} | {c.get('units')} | {c.get('learning_rate')} | "
                f"{c.get('dropout')} | {c.get('quantile_head')} | {c.get('head_units')} | "
                f"{t['epochs']} | {'yes' if t.get('stopped_by_asha') else 'no'} | {loss} |"
            )
        print()
        print(f"best config: {r['best_config']} (val loss {r['best_val_loss']:.4f})")
        print(f"decision: {r['reason']}")
    finally:
        if args.keep:
            shutil.copytree(home, args.keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
