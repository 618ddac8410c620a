"""Where expected-profit planning's search stands: HiGHS from the start, fix-and-optimize, and
single-variant pattern moves, on one model.

    .venv/bin/python bench/bench_ep_search.py [--variants 150] [--periods 8] [--lines 3] \\
        [--families 0] [--scenarios 32] [--seed 1] [--certain-limit 30] \\
        [--root 400] [--fo 40] [--switches 15] [--log /tmp/highs_ep.log]

On ``replace(synthetic_problem(variants, periods, lines, seed, families), demand_mode=
"expected_profit", scenario_count)``, with the calls :func:`optimizer.core.pipeline._monolithic`
makes:

1. the start: the scenarios' per-cell median (P50) as if certain, its quantile-mode solve with
   ``--certain-limit`` seconds, its setups priced over the scenarios (the LP with them fixed);
   the same for the scenarios' 60% quantile (P60) with ``--switches`` > 0;
2. ``--switches N``: from the P50 pattern, each of the first N variants whose P60 setups differ
   takes them alone, priced (the gain of one variant's move, the others as they are);
3. ``--fo S``: :func:`optimizer.core.heuristics.fix_and_optimize` from the P50 start for S
   seconds, with its period windows and then with groups of about 40 variants;
4. ``--root S``: HiGHS on the scenario model from the P50 start for S seconds (gap 0.1% asked),
   its log in ``--log``: the bound per root cut round, and whether the incumbent moves.

Each part prints one line; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import gc
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
    ap.add_argument("--families", type=int, default=0)
    ap.add_argument("--scenarios", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--certain-limit", type=float, default=30.0)
    ap.add_argument("--root", type=float, default=0.0, help="seconds of HiGHS from the start")
    ap.add_argument("--fo", type=float, default=0.0, help="seconds of fix-and-optimize")
    ap.add_argument("--switches", type=int, default=0, help="single-variant moves to price")
    ap.add_argument("--log", default="/tmp/highs_ep.log", help="HiGHS's log of --root")
    args = ap.parse_args()

    import pyomo.environ as pyo

    from optimizer.core import heuristics
    from optimizer.core.data import ModelData, certain_demand_data, prepare
    from optimizer.core.heuristics import fix_and_optimize, price_pattern
    from optimizer.core.model import build_model
    from optimizer.core.pipeline import _monolithic
    from optimizer.core.problem import SolveOptions
    from optimizer.core.setups import Setups
    from optimizer.core.solver import RunResult, Session
    from optimizer.core.synthetic import synthetic_problem

    print(f"load average before: {os.getloadavg()}")
    problem = replace(
        synthetic_problem(
            args.variants, args.periods, args.lines, seed=args.seed, families=args.families
        ),
        demand_mode="expected_profit",
        scenario_count=args.scenarios,
    )
    d = prepare(problem)
    options = SolveOptions(time_limit_s=60, mip_rel_gap=0.001, explain=False, whole_units=False)
    m = build_model(d)
    session = Session(m)
    session.translate()
    setups = Setups(m)

    def quantile_data(level: float) -> ModelData:
        """The scenarios' per-cell ``level`` quantile as one certain path."""
        assert d.scenario_demand is not None
        if level == 0.5:
            return certain_demand_data(d, "median")
        cells = {}
        for i in d.I:
            for t in d.T:
                ordered = sorted(d.scenario_demand[i, t, k] for k in d.K)
                cells[i, t] = ordered[round(level * (len(ordered) - 1))]
        scaled = replace(d, demand=cells)
        return certain_demand_data(scaled, "mean")

    def pattern_of(level: float) -> tuple[dict, RunResult, float]:
        t0 = time.perf_counter()
        certain = quantile_data(level)
        m_c, _, res_c, _ = _monolithic(certain, replace(options, time_limit_s=args.certain_limit))
        pattern = {k: float(round(v.value or 0.0)) for k, v in m_c.y.items()}
        del m_c
        gc.collect()
        return pattern, res_c, time.perf_counter() - t0

    def priced(pattern: dict) -> float:
        res = price_pattern(session, setups, pattern, time.perf_counter() + 120)
        return float(res.objective) if res.objective is not None else float("nan")

    p50, res50, s50 = pattern_of(0.5)
    start = priced(p50)
    print(
        f"start: P50 as if certain {res50.objective:,.0f} (gap {100 * (res50.gap or 0):.2f}%, "
        f"{s50:.1f} s), {sum(p50.values()):.0f} setups, priced {start:,.0f}"
    )
    if args.switches:
        p60, res60, s60 = pattern_of(0.6)
        other = priced(p60)
        differ = sorted({k[0] for k in p50 if p50[k] != p60.get(k, 0.0)})
        print(
            f"P60 as if certain {res60.objective:,.0f} ({s60:.1f} s), "
            f"{sum(p60.values()):.0f} setups, priced {other:,.0f}; "
            f"{len(differ)} variants differ"
        )
        gains = []
        for i in differ[: args.switches]:
            trial = dict(p50)
            trial.update({k: v for k, v in p60.items() if k[0] == i})
            gains.append((i, priced(trial) - start))
        print(
            "one variant's P60 setups alone, gain: " + ", ".join(f"{i} {g:+,.0f}" for i, g in gains)
        )
    if args.fo:
        for label, most in (("period windows", heuristics.MAX_FREE), ("variant groups", 300)):
            heuristics.MAX_FREE = most
            warm = price_pattern(session, setups, p50, time.perf_counter() + 120)
            hoods = heuristics._neighbourhoods(setups, len(d.T), options)
            t0 = time.perf_counter()
            best = fix_and_optimize(
                session, setups, len(d.T), options, t0 + args.fo, warm, maximise=True
            )
            print(
                f"fix-and-optimize, {label} ({len(hoods)} of {max(map(len, hoods))} setups at "
                f"most), {args.fo:.0f} s: {best.objective:,.0f} from {warm.objective:,.0f} "
                f"({time.perf_counter() - t0:.1f} s wall)"
            )
    if args.root:
        warm = price_pattern(session, setups, p50, time.perf_counter() + 120)
        free = [v for vs in setups.by_t.values() for v in vs]
        for v in free:
            v.unfix()
            v.domain = pyo.Binary
        solve = session.opt.solve

        def logged(model, **kw):  # type: ignore[no-untyped-def]
            kw["solver_options"].update(output_flag=True, log_file=args.log, log_to_console=False)
            return solve(model, **kw)

        session.opt.solve = logged
        res = session.run(args.root, 0.001, start=True, changed=free)
        print(
            f"HiGHS from the start, {args.root:.0f} s: plan {res.objective:,.0f} "
            f"(start {warm.objective:,.0f}), bound {res.bound:,.0f}, gap "
            f"{100 * (res.gap or 0):.2f}%; log in {args.log}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
