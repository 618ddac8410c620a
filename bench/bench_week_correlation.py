"""The week correlation of the served forecasts' errors, measured on stores with feedback data.

    .venv/bin/python bench/bench_week_correlation.py STORE.db [STORE.db ...] \\
        [--check 1500] [--compare 0.5]
    .venv/bin/python bench/bench_week_correlation.py --problem FILE [--certain-s 30] \\
        [--correlations 0 0.15 0.3 0.5] [--eval-scenarios 256]

For each SQLite store (e.g. a simulator run's ``seed-N/tailorline.db``, whose served forecasts
and orders are 26 weeks of a planner's feedback), :func:`services.monitoring.correlation.measure`:
the pooled ratio ``E[(sum e)^2] / E[sum e^2]`` of the forecast paths' errors against the served
mean, and the ``week_correlation`` (between any two weeks: the scenarios' equicorrelated copula)
that gives it. ``--check N``: for N of the paths, the
same ratio of the planner's own scenario paths (:func:`optimizer.core.scenarios.sample_paths`
from the served P10/P50/P90) at the estimated correlation and at ``--compare`` (0.5, the AR(1)
default before it was measured), to show that the estimate reproduces the measured spread with the
sampler's marginals. Prints a markdown table and the load average before and after.

``--problem FILE`` (a plan dumped by ``bench/dump_plan_problem.py``): what the correlation does to
a plan, without the solver's timing in the way. One setup pattern (the median-demand plan as if
certain, ``--certain-s`` seconds) is priced in the expected-profit model (32 scenarios) drawn at
each of ``--correlations``: the profit the plan reports and the units it makes. Then every priced
plan is evaluated out of sample over ``--eval-scenarios`` fresh scenarios drawn at each of the
same correlations (``bench_expected_profit.OutOfSample``), paired against the best.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def forecast_paths(engine: object) -> list[object]:
    """The store's served forecast paths of two weeks or more (one frame each), read once."""
    from services.monitoring.accuracy import _served

    served = _served(engine, "demand", None, None).sort_values(["served_at", "variant_id", "week"])
    return [g for _, g in served.groupby(["served_at", "variant_id"]) if len(g) >= 2]


def sampler_ratio(groups: list[object], rho: float, n: int) -> float:
    """The ratio of the scenario sampler's own paths drawn from ``n`` of the served forecasts."""
    from optimizer.core.scenarios import sample_paths

    num = den = 0.0
    for g in groups[:: max(1, len(groups) // n)]:
        paths = sample_paths(
            str(g["variant_id"].iloc[0]), (0.1, 0.5, 0.9),
            g[["p10", "p50", "p90"]].to_numpy().tolist(), 400, seed=1, rho=rho,
        )  # fmt: skip
        cov = np.cov(paths.T)
        num += float(cov.sum())
        den += float(np.trace(cov))
    return num / den


def fixed_pattern(args: argparse.Namespace) -> None:
    import json
    from dataclasses import replace

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_expected_profit import OutOfSample, pair_se, stage_of_model

    from optimizer import PlanningProblem, SolveOptions
    from optimizer.core import pipeline
    from optimizer.core.data import certain_demand_data, prepare
    from optimizer.core.model import build_model
    from optimizer.core.setups import Setups
    from optimizer.core.solver import Session

    print(f"load average before: {os.getloadavg()}", flush=True)
    base = PlanningProblem.from_dict(json.loads(args.problem.read_text()))
    base = replace(base, demand_mode="expected_profit", scenario_count=32)
    options = SolveOptions(time_limit_s=args.certain_s, mip_rel_gap=0.001, explain=False)
    m_c, _, res, _ = pipeline._monolithic(certain_demand_data(prepare(base), "median"), options)
    pattern = {k: float(round(v.value or 0.0)) for k, v in m_c.y.items()}
    print(
        f"\n`{args.problem.name}`: the median-demand plan as if certain, {args.certain_s:g} s: "
        f"{res.objective:,.0f} (gap {100 * (res.gap or 0.0):.1f}%), "
        f"{sum(pattern.values()):.0f} setups\n"
    )
    print("| scenarios drawn at | profit the plan reports | units |")
    print("|---:|---:|---:|")
    stages = []
    for rho in args.correlations:
        d = prepare(replace(base, week_correlation=rho))
        m = build_model(d)
        session = Session(m)
        session.translate()
        setups = Setups(m)
        free = {k: v for k, v in m.y.items() if id(v) in setups.ids}
        setups.fix(range(len(d.T)), {id(v): pattern.get(k, 0.0) for k, v in free.items()})
        priced = session.run(600.0, 0.0, changed=setups.take(), lp="ipm")
        stages.append(stage_of_model(m))
        print(f"| {rho:g} | {priced.objective:,.0f} | {sum(stages[-1].x.values()):,.0f} |")
    print(
        f"\nOut of sample ({args.eval_scenarios} fresh scenarios, seed 1000): rows = the "
        "correlation the fresh scenarios are drawn at, columns = the plan priced at; "
        "paired difference to the row's best ± s.e.\n"
    )
    print("| drawn at | " + " | ".join(f"plan at {r:g}" for r in args.correlations) + " |")
    print("|---:|" + "---:|" * len(args.correlations))
    for rho in args.correlations:
        world = replace(base, week_correlation=rho)
        profits = OutOfSample(world, args.eval_scenarios, 1000, 64, rho).evaluate(stages)
        best = max(range(len(profits)), key=lambda n: profits[n].mean())
        cells = [
            f"{p.mean():,.0f} ({(p - profits[best]).mean():+,.0f} ± "
            f"{pair_se(p - profits[best]):.0f})"
            for p in profits
        ]
        print(f"| {rho:g} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nload average after: {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stores", nargs="*", type=Path, help="SQLite store files")
    ap.add_argument("--check", type=int, default=1500, help="paths for the sampler check (0: off)")
    ap.add_argument(
        "--compare", type=float, default=0.5, help="the sampler's ratio also at this correlation"
    )
    ap.add_argument("--problem", type=Path, default=None, help="a dumped plan (see above)")
    ap.add_argument("--certain-s", type=float, default=30.0)
    ap.add_argument("--correlations", type=float, nargs="+", default=[0.0, 0.15, 0.3, 0.5])
    ap.add_argument("--eval-scenarios", type=int, default=256)
    args = ap.parse_args()
    if args.problem is not None:
        fixed_pattern(args)
        return
    if not args.stores:
        ap.error("give store files, or --problem FILE")

    from services.monitoring.correlation import measure
    from services.store import make_engine

    print(f"load average before: {os.getloadavg()}", flush=True)
    print()
    print(
        "| store | paths | cells | measured ratio | week correlation | sampler's ratio at it "
        f"| sampler's ratio at {args.compare:g} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    rhos = []
    for path in args.stores:
        engine = make_engine(f"sqlite:///{path}")
        c = measure(engine)
        if c.rho is None or c.ratio is None:
            print(f"| {path} | {c.paths} | {c.cells} | - | too few paths | - | - |", flush=True)
            continue
        rhos.append(c.rho)
        at = at_default = "-"
        if args.check:
            groups = forecast_paths(engine)
            at = f"{sampler_ratio(groups, c.rho, args.check):.3f}"
            at_default = f"{sampler_ratio(groups, args.compare, args.check):.3f}"
        print(
            f"| {path} | {c.paths:,} | {c.cells:,} | {c.ratio:.3f} | {c.rho:.3f} | {at} "
            f"| {at_default} |",
            flush=True,
        )
        engine.dispose()
    if rhos:
        print(f"\nmean week correlation over {len(rhos)} stores: {np.mean(rhos):.3f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
