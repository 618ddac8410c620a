"""CLSP benchmark: the Trigeiro instances solved in CLSP mode against reference.csv.

    .venv/bin/python bench/bench_clsp.py [--time-limit 60] [--only F1,G53] [--strengthen auto]

Prints a markdown table: value found, reference, whether it is reached, gap to the reference and
the solver's own gap, build / translate / solve seconds. G73 (24 x 30) has only a best-known value
(HiGHS, 120 s), noted in the table. The machine's load average is printed with the table.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lotsizing" / "trigeiro"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--only", default="", help="comma-separated instance names (default: all)")
    ap.add_argument("--strengthen", default="auto", help="auto | allocation | lot_cover | none")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import optimizer.core.model as model_mod
    from optimizer import SolveOptions, solve
    from optimizer.core.trigeiro import read, to_problem

    if args.strengthen != "auto":
        original = model_mod.build_model

        def build(d, elastic=(), cover_horizon=None, strengthen="auto"):  # type: ignore[no-untyped-def]
            return original(d, elastic, cover_horizon, args.strengthen)

        import optimizer.core.pipeline as solve_mod

        solve_mod.build_model = build  # type: ignore[assignment]

    refs = {}
    with open(args.data / "reference.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            refs[row["instance"].removesuffix(".DAT")] = (float(row["value"]), row["kind"])
    names = sorted(refs, key=lambda n: (n[0], int(n[1:])))
    if args.only:
        names = [n for n in names if n in set(args.only.split(","))]
    print(
        f"load average before: {os.getloadavg()}  time limit {args.time_limit:g} s  "
        f"strengthen {args.strengthen}",
        flush=True,
    )
    print(
        "| instance | n x T | value | reference | reached | gap to ref | solver gap "
        "| build s | translate s | solve s | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    reached = 0
    t_all = time.perf_counter()
    for name in names:
        inst = read(args.data / f"{name}.DAT")
        plan = solve(
            to_problem(inst),
            SolveOptions(
                time_limit_s=args.time_limit, mip_rel_gap=0.0, threads=args.threads, explain=False
            ),
        )
        ref, kind = refs[name]
        val = plan.objective
        ok = val is not None and val <= ref + 0.5
        reached += ok
        gap_ref = "-" if val is None else f"{100 * (val - ref) / ref:+.3f}%"
        sgap = "-" if plan.gap is None else f"{100 * plan.gap:.3f}%"
        note = "best known only (120 s)" if "best found" in kind else ""
        print(
            f"| {name} | {inst.items}x{inst.periods} | {'-' if val is None else f'{val:.0f}'} "
            f"| {ref:.0f} | {'yes' if ok else 'no'} | {gap_ref} | {sgap} "
            f"| {plan.build_time_s:.2f} | {plan.translate_time_s:.2f} | {plan.solve_time_s:.1f} "
            f"| {note} |",
            flush=True,
        )
    print(
        f"\nreached {reached}/{len(names)}; wall {time.perf_counter() - t_all:.0f} s; "
        f"load average after: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
