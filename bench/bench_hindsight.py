"""The simulator's hindsight solve of one world, with the world's setup truth in the book and
without it, side by side in one run.

    .venv/bin/python bench/bench_hindsight.py [--preset small] [--seed 3] [--weeks 26]
        [--time-limit 120] [--share 0.9] [--books old,truth,truth-no-sweep]

The world and its realised demand path are made as ``tailorline simulate`` makes them (the
world's ``realise_week`` per simulated week, booked by ``DemandBook``); the solve is
``solve_hindsight`` with the simulator's options (gap 1e-4, one thread). Books:
- ``old``: the lines' setup figures per run, no family changeovers (the book before 67f1373);
- ``truth``: each run's true fixed cost and setup hours, the changeovers, their hours counted at
  ``--share`` of their value (services/simulate/hindsight.py);
- ``truth-no-sweep``: the same with the period sweep off (``SWEEP_MIN_FREE`` above the size).
Prints the bound, the best plan booked, the gap and the seconds of each; the load average
before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--weeks", type=int, default=26)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--share", type=float, default=0.9)
    ap.add_argument("--books", default="old,truth,truth-no-sweep")
    args = ap.parse_args()

    import numpy as np

    from optimizer.core import pipeline
    from services.datagen.generate import build_dataset
    from services.datagen.presets import get_preset
    from services.datagen.world import World
    from services.simulate.accounting import true_costs
    from services.simulate.demand import DemandBook
    from services.simulate.hindsight import solve_hindsight

    print("load average before:", os.getloadavg(), flush=True)
    world = World(get_preset(args.preset), seed=args.seed)
    frames = build_dataset(world).tables
    costs = true_costs(world, frames["lines"])
    book = DemandBook(world, costs, world.n_weeks, args.weeks, history=frames["orders"])
    for k in range(args.weeks):
        book.add_week(k, world.realise_week(world.n_weeks + k, args.seed).orders)
    share = np.full(len(costs.line_ids), args.share)
    sweep_min = pipeline.SWEEP_MIN_FREE
    rows = []
    for name in args.books.split(","):
        c = costs
        if name == "old":
            c = replace(
                costs, run_cost=None, run_setup_hours=None, family=None,
                changeover_hours=None, changeover_cost=None,
            )  # fmt: skip
        pipeline.SWEEP_MIN_FREE = 10**9 if name == "truth-no-sweep" else sweep_min
        h = solve_hindsight(c, book.path, time_limit_s=args.time_limit, changeover_share=share)
        rows.append((name, h.bound, h.plan_profit, h.gap, h.seconds))
        print(f"  {name}: bound {h.bound:,.0f}, plan {h.plan_profit:,.0f}, gap {h.gap}", flush=True)
    pipeline.SWEEP_MIN_FREE = sweep_min
    print(f"\n{args.preset}, seed {args.seed}, {args.weeks} weeks, {args.time_limit:g} s\n")
    print("| book | bound | best plan, booked | gap | seconds |\n|---|---:|---:|---:|---:|")
    for name, bound, plan, gap, secs in rows:
        g = f"{100 * gap:.2f}%" if gap is not None else "-"
        print(f"| {name} | {bound:,.0f} | {plan:,.0f} | {g} | {secs:.0f} |")
    print("\nload average after:", os.getloadavg())


if __name__ == "__main__":
    main()
