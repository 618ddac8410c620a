"""What modelling family changeovers (joint setups) earns: the same world planned with them and
with them ignored, both plans paid under the true costs.

    .venv/bin/python bench/bench_family_setups.py --preset small     # 150 x 8 x 3, 60 s
    .venv/bin/python bench/bench_family_setups.py --preset standard  # 500 x 12 x 4, 300 s
        [--source synthetic|datagen] [--families N] [--time-limit S] [--demand-mode M]
        [--scenarios K] [--seed N] [--end-stock-value SHARE]

The world: ``--source synthetic`` (default) is ``synthetic_problem(variants, periods, lines,
seed, families=N)`` (optimizer/core/synthetic.py: changeovers of 3-8 h and 400-1,500 per line and
family, variant setups within a family of 0.1-0.5 h and 10-40); ``--source datagen`` is the
preset of ``tailorline datagen`` with its true demand quantiles and true unit costs, built by the
planner's own problem builder from the generated tables (needs a generator that writes the
``family_setups`` table).

Two plans, the same time limit, a 1% gap asked, expected-profit mode by default:
- **joint**: the changeovers modelled (``PlanningProblem.family_setups``);
- **separate**: the changeovers ignored, each variant setup charged its family's whole changeover
  (hours and cost) instead -- what a planner without joint setups has to assume.
Both are then paid under the true costs: a changeover once per (family, line, week) in which any
of its variants is set up, plus the variants' own setups. "as planned" keeps each plan's
quantities; "re-priced" keeps only its setups and lets the LP re-decide quantities with the true
changeover hours (the separate plan reserved hours it does not need). The saving is the joint
plan's true profit against the better of the separate plan's two. The load average is printed
before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PRESETS = {"small": (150, 8, 3, 6, 60.0), "standard": (500, 12, 4, 12, 300.0)}


def separate_changeovers(p: Any) -> Any:
    """The problem with each variant setup charged its family's whole changeover, no joint ones."""
    lines = {ln.id: ln for ln in p.lines}
    family = {v.id: v.family for v in p.variants}
    fs = {(f.family, f.line): f for f in p.family_setups}
    routes = []
    for r in p.routes:
        ln = lines[r.line]
        st = r.setup_hours if r.setup_hours is not None else ln.setup_hours
        sc = r.setup_cost if r.setup_cost is not None else ln.setup_cost
        extra = fs.get((family[r.variant], r.line))
        if extra is not None:
            st, sc = st + extra.hours, sc + extra.cost
        routes.append(replace(r, setup_hours=st, setup_cost=sc))
    return replace(p, routes=tuple(routes), family_setups=())


def true_setup_cost(p: Any, setups: set[tuple[str, str, int]]) -> tuple[float, int]:
    """The variants' own setups plus one changeover per (family, line, period) used; and how
    many changeovers that is."""
    lines = {ln.id: ln for ln in p.lines}
    routes = {(r.variant, r.line): r for r in p.routes}
    family = {v.id: v.family for v in p.variants}
    fs = {(f.family, f.line): f for f in p.family_setups}
    own = 0.0
    used = set()
    for i, ln, t in setups:
        r = routes[i, ln]
        own += r.setup_cost if r.setup_cost is not None else lines[ln].setup_cost
        if (family[i], ln) in fs:
            used.add((family[i], ln, t))
    return own + sum(fs[g, ln].cost for g, ln, _ in used), len(used)


def repriced(p: Any, setups: set[tuple[str, str, int]]) -> float | None:
    """The true model's LP with these variant setups fixed (their changeovers follow)."""
    from optimizer.core.data import prepare
    from optimizer.core.model import build_model
    from optimizer.core.setups import Setups
    from optimizer.core.solver import Session

    d = prepare(p)
    m = build_model(d)
    session = Session(m)
    session.translate()
    s = Setups(m)
    pattern = {id(v): float(k in setups) for k, v in m.y.items() if id(v) in s.ids}
    s.fix(range(len(d.T)), pattern)
    res = session.run(600.0, 0.0, changed=s.take(), lp="ipm")
    return res.objective


def datagen_problem(preset: str, seed: int, horizon: int) -> Any:
    """The preset's world, planned from its first week after the history with the true demand
    quantiles and true unit costs (as the simulator's oracle), by the planner's builder."""
    import numpy as np
    import pandas as pd

    from services.datagen.generate import build_dataset
    from services.datagen.presets import get_preset
    from services.datagen.world import World
    from services.planning import PlanRequest, build_problem, default_variants
    from services.simulate.accounting import true_costs
    from services.simulate.policies import oracle_forecast, true_cost_table

    world = World(get_preset(preset), seed)
    frames = build_dataset(world).tables
    if "family_setups" not in frames:
        raise SystemExit("this generator writes no family_setups table yet: use --source synthetic")
    first = world.n_weeks
    start = pd.Timestamp(world.week_date(np.array([first]))[0])
    ids = default_variants(frames, start)
    fc = oracle_forecast(world, first, horizon)
    costs = true_cost_table(true_costs(world, frames["lines"]), world)
    request = PlanRequest(
        start_week=start, horizon=horizon, service_level=0.5, variant_ids=tuple(ids), name=preset
    )
    return build_problem(
        frames, fc[fc["variant_id"].isin(ids)], costs[costs["variant_id"].isin(ids)], request
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--source", choices=("synthetic", "datagen"), default="synthetic")
    ap.add_argument("--families", type=int, default=None)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--demand-mode", choices=("expected_profit", "quantile"), default=None)
    ap.add_argument("--scenarios", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--end-stock-value",
        type=float,
        default=1.0,
        help="PlanningProblem.end_stock_value (expected-profit mode; 0 reproduces runs before it)",
    )
    args = ap.parse_args()

    from optimizer import SolveOptions, solve
    from optimizer.core.synthetic import synthetic_problem

    n_v, n_t, n_l, n_f, limit = PRESETS[args.preset]
    limit = args.time_limit or limit
    print(f"load average before: {os.getloadavg()}", flush=True)
    if args.source == "synthetic":
        p = synthetic_problem(n_v, n_t, n_l, seed=args.seed, families=args.families or n_f)
        mode = args.demand_mode or "expected_profit"
    else:
        p = datagen_problem(args.preset, args.seed, n_t)
        mode = args.demand_mode or p.demand_mode
    p = replace(
        p, demand_mode=mode, scenario_count=args.scenarios, end_stock_value=args.end_stock_value
    )
    options = SolveOptions(time_limit_s=limit, mip_rel_gap=0.01, explain=False)

    rows = []
    profits: dict[str, float] = {}
    for name, problem in (("joint", p), ("separate", separate_changeovers(p))):
        t0 = time.perf_counter()
        plan = solve(problem, options)
        seconds = time.perf_counter() - t0
        if plan.objective is None:
            raise SystemExit(f"{name}: no plan within {limit:g} s ({plan.message})")
        made = {(pl.variant, pl.line, pl.period) for pl in plan.lines if pl.setup}
        true_setup, changeovers = true_setup_cost(p, made)
        as_planned = plan.objective + plan.costs.setup - true_setup
        again = repriced(p, made)
        best = max(as_planned, again if again is not None else -float("inf"))
        profits[name] = as_planned if name == "joint" else best
        rows.append(
            (
                name,
                f"{plan.objective:,.0f}",
                f"{as_planned:,.0f}",
                f"{again:,.0f}" if again is not None else "-",
                f"{100 * plan.gap:.2f}%" if plan.gap is not None else "-",
                f"{seconds:.1f}",
                f"{len(made):,}",
                f"{changeovers:,}",
            )
        )
        print(f"  {rows[-1]}  ({plan.message})", flush=True)

    saving = (profits["joint"] - profits["separate"]) / abs(profits["separate"])
    what = (
        f"`synthetic_problem({n_v}, {n_t}, {n_l}, seed={args.seed}, "
        f"families={args.families or n_f})`"
        if args.source == "synthetic"
        else f"`tailorline datagen --preset {args.preset} --seed {args.seed}`, true costs"
    )
    print()
    print(f"{what}, {mode}, {limit:g} s limit, 1% gap asked")
    print()
    print(
        "| plan | profit as modelled | true profit, as planned | true profit, re-priced | gap "
        "| seconds | variant setups | changeovers |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nsaving of the joint plan: {100 * saving:.2f}% of the separate plan's true profit")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
