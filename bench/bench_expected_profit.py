"""Expected-profit planning (``demand_mode="expected_profit"``) next to quantile plans, same run.

    .venv/bin/python bench/bench_expected_profit.py [--variants 150] [--periods 8] [--lines 3] \\
        [--scenarios 16] [--time-limit 60] [--seed 1] [--problem FILE] [--gap 0.01] [--levels ..]

On ``synthetic_problem(variants, periods, lines, seed)`` (the optimizer's own generator, P10/P50/P90
forecasts) it prints a markdown table:
- the expected-profit solve as committed (``solve`` with the time limit and a 1% gap): plan, bound,
  gap, seconds;
- the scenario model's LP relaxation (a bound no plan can beat);
- for each quantile 0.5..0.9: the quantile-mode plan (demand at that quantile planned as if
  certain, the same time limit and gap), then its setup pattern priced in the scenario model (the
  LP with those setups fixed): what planning one quantile as certain earns in expectation.
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=150)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--lines", type=int, default=3)
    ap.add_argument("--scenarios", type=int, default=32)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--problem",
        type=Path,
        default=None,
        help="a problem dumped by bench/dump_plan_problem.py (a preset's real plan) instead of "
        "the synthetic one; --scenarios still sets the scenario count",
    )
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument(
        "--levels", default="0.5,0.6,0.7,0.8,0.9", help="quantile plans to compare ('' = none)"
    )
    args = ap.parse_args()

    from optimizer import SolveOptions, solve
    from optimizer.core.data import prepare
    from optimizer.core.model import build_model
    from optimizer.core.setups import Setups
    from optimizer.core.solver import Session
    from optimizer.core.synthetic import synthetic_problem

    print(f"load average before: {os.getloadavg()}", flush=True)
    if args.problem is not None:
        import json

        from optimizer import PlanningProblem

        base = PlanningProblem.from_dict(json.loads(args.problem.read_text()))
        base = replace(base, demand_mode="quantile")
        what = f"`{args.problem.name}` ({len(base.variants)}x{len(base.periods)}x{len(base.lines)})"
    else:
        base = synthetic_problem(args.variants, args.periods, args.lines, seed=args.seed)
        what = (
            f"`synthetic_problem({args.variants}, {args.periods}, {args.lines}, seed={args.seed})`"
        )
    saa = replace(base, demand_mode="expected_profit", scenario_count=args.scenarios)
    options = SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=args.gap, explain=False)
    rows: list[tuple[str, str, str, str, str]] = []

    t0 = time.perf_counter()
    plan = solve(saa, options)
    rows.append(
        (
            f"expected profit, {args.scenarios} scenarios (committed solve)",
            f"{plan.objective:,.0f}",
            f"{plan.best_bound:,.0f}" if plan.best_bound is not None else "-",
            f"{100 * plan.gap:.2f}%" if plan.gap is not None else "-",
            f"{time.perf_counter() - t0:.1f}",
        )
    )
    print(f"  {rows[-1]}  ({plan.message})", flush=True)

    d = prepare(saa)
    m = build_model(d)
    session = Session(m, options.threads)
    session.translate()
    setups = Setups(m)
    every = range(len(d.T))
    t0 = time.perf_counter()
    setups.relax(every)
    lp = session.run(600.0, 0.0, changed=setups.take(), lp="ipm")
    rows.append(
        (
            "scenario model, LP relaxation (bound)",
            "-",
            f"{lp.objective:,.0f}",
            "-",
            f"{time.perf_counter() - t0:.1f}",
        )
    )
    print(f"  {rows[-1]}", flush=True)

    for level in [float(x) for x in args.levels.split(",") if x.strip()]:
        certain = replace(
            base, variants=tuple(replace(v, service_level=level) for v in base.variants)
        )
        t0 = time.perf_counter()
        qplan = solve(certain, options)
        made = {(pl.variant, pl.line, pl.period) for pl in qplan.lines if pl.setup}
        free = {k: v for k, v in m.y.items() if id(v) in setups.ids}
        setups.fix(every, {id(v): float(k in made) for k, v in free.items()})
        priced = session.run(600.0, 0.0, changed=setups.take(), lp="ipm")
        rows.append(
            (
                f"P{round(100 * level)} planned as certain ({qplan.objective:,.0f} if it were), "
                "its setups priced over the scenarios",
                f"{priced.objective:,.0f}" if priced.objective is not None else "-",
                "-",
                f"{100 * qplan.gap:.2f}% (its own)" if qplan.gap is not None else "-",
                f"{time.perf_counter() - t0:.1f}",
            )
        )
        print(f"  {rows[-1]}", flush=True)

    print()
    print(f"{what}, {args.time_limit:g} s limit, {100 * args.gap:g}% gap asked")
    print()
    print("| plan | expected profit | bound | gap | seconds |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
