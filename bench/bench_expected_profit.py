"""Expected-profit planning (``demand_mode="expected_profit"``) next to quantile plans, same run.

    .venv/bin/python bench/bench_expected_profit.py [--variants 150] [--periods 8] [--lines 3] \\
        [--scenarios 32] [--scenario-counts 8 16 32] [--time-limit 60] [--seed 1] \\
        [--problem FILE] [--gap 0.01] [--levels ..] [--eval-scenarios 256] [--eval-seed 1000] \\
        [--eval-batch 64] [--end-stock-value 1] [--certainty-shares 0.5 0.8] \\
        [--correlations 0 0.15 0.5] [--eval-correlation 0.15] [--repeats 1]

On ``synthetic_problem(variants, periods, lines, seed)`` (the optimizer's own generator, P10/P50/P90
forecasts) it prints a markdown table:
- the expected-profit solve as committed (``solve`` with the time limit and a 1% gap), once per
  scenario count of ``--scenario-counts`` (default: ``--scenarios`` alone) and share of
  ``--certainty-shares`` (the time its median-demand start may take; default the solver's):
  plan, bound, gap, seconds;
- the scenario model (``--scenarios`` scenarios) LP relaxation (a bound no plan can beat);
- for each quantile 0.5..0.9: the quantile-mode plan (demand at that quantile planned as if
  certain, the same time limit and gap), then its setup pattern priced in the scenario model (the
  LP with those setups fixed): what planning one quantile as certain earns in expectation.

Out of sample (``--eval-scenarios M`` > 0, the SAA check of whether a scenario count is enough):
each plan's first-stage decisions -- production x, setups y, family changeovers z and firm
deliveries f, as the returned Plan states them (overtime, material stock and plan changes follow
from them at least cost) -- are fixed in the same model (``build_model``, so the accounting is
the planner's own) built over M fresh scenarios drawn from the forecast quantiles with
``--eval-seed``, in batches of ``--eval-batch`` (one LP per batch and plan: the sales and stock of
each scenario given the fixed production). The setup forcing rows are left out there (their
bounds come from the scenarios; the setups are fixed anyway). A second table lists, per plan, the
in-sample profit (over the scenarios it was planned on), bound, gap, seconds and the mean profit
over the M fresh scenarios with its standard error (over the M/2 antithetic pairs), and the
difference to the best plan out of sample with the paired standard error (every plan sees the
same fresh scenarios, so differences are much tighter than the means). Plans evaluated: the
expected-profit solves, each quantile plan as planned, and each quantile pattern with the
production of its pricing LP. ``--eval-seed`` equal to the problem's ``scenario_seed`` (0 for the
synthetic one) with M = the scenario count reproduces the in-sample scenarios exactly (a check:
out-of-sample = in-sample profit then).
``--correlations`` solves the expected-profit plan once per ``week_correlation`` (the scenarios'
correlation between any two weeks of a variant), and ``--eval-correlation`` draws the fresh
scenarios with another one: how much a plan loses when its scenarios' correlation is not the
demand's (measured: ``bench/bench_week_correlation.py``).
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if TYPE_CHECKING:
    import pyomo.environ as pyo

    from optimizer import Plan, PlanningProblem
    from optimizer.core.data import ModelData
    from optimizer.core.solver import Session

Key3 = tuple[str, str, int]


@dataclass(frozen=True)
class FirstStage:
    """What a plan decides once, whatever demand turns out: production, setups, family
    changeovers (family, line, period) and firm deliveries (variant, period)."""

    x: dict[Key3, float]
    y: frozenset[Key3]
    z: frozenset[Key3]
    f: dict[tuple[str, int], float]


def stage_of_plan(plan: Plan, d: ModelData) -> FirstStage:
    """The first stage of a returned plan: deliveries from its backlog, f = b[t-1] + F - b[t]."""
    backlog = {(vp.variant, vp.period): vp.backlog for vp in plan.variants}
    f = {}
    for i in d.I:
        before = 0.0
        for t in d.T:
            now = backlog.get((i, t), 0.0)
            f[i, t] = max(0.0, before + d.firm[i, t] - now)
            before = now
    return FirstStage(
        x={(pl.variant, pl.line, pl.period): pl.quantity for pl in plan.lines},
        y=frozenset((pl.variant, pl.line, pl.period) for pl in plan.lines if pl.setup),
        z=frozenset((c.family, c.line, c.period) for c in plan.changeovers),
        f=f,
    )


def stage_of_model(m: pyo.ConcreteModel) -> FirstStage:
    """The first stage at the values loaded in a solved model."""
    return FirstStage(
        x={k: float(v.value or 0.0) for k, v in m.x.items()},
        y=frozenset(k for k, v in m.y.items() if (v.value or 0.0) > 0.5),
        z=frozenset(k for k, v in m.z.items() if (v.value or 0.0) > 0.5),
        f={k: float(v.value or 0.0) for k, v in m.f.items()},
    )


class OutOfSample:
    """Plans' profit over ``total`` fresh scenarios (seed ``seed``), ``batch`` at a time."""

    def __init__(
        self, base: PlanningProblem, total: int, seed: int, batch: int, rho: float
    ) -> None:
        from optimizer.core.scenarios import sample_paths

        self.base = base
        self.total = total
        self.batch = batch
        # all M paths of a variant in one draw: the antithetic pairs are (2j, 2j+1)
        self.paths = {
            v.id: sample_paths(v.id, base.quantiles, v.demand, total, seed=seed, rho=rho)
            for v in base.variants
        }

    def evaluate(self, stages: list[FirstStage]) -> list[np.ndarray]:
        """Each plan's profit in each fresh scenario, in scenario order."""
        out: list[list[float]] = [[] for _ in stages]
        for lo in range(0, self.total, self.batch):
            hi = min(self.total, lo + self.batch)
            m, d, session = self._model(lo, hi)
            for n, stage in enumerate(stages):
                out[n].extend(self._profits(m, d, session, stage))
        return [np.array(p) for p in out]

    def _model(self, lo: int, hi: int) -> tuple[pyo.ConcreteModel, ModelData, Session]:
        from optimizer.core.data import prepare
        from optimizer.core.model import build_model
        from optimizer.core.solver import Session

        variants = tuple(
            replace(v, demand_scenarios=tuple(tuple(row) for row in self.paths[v.id][lo:hi]))
            for v in self.base.variants
        )
        p = replace(
            self.base, demand_mode="expected_profit", scenario_count=hi - lo, variants=variants
        )
        p.validate()
        d = prepare(p)
        m = build_model(d, strengthen="none")
        # their bounds (big-M, family hours) come from these scenarios; the setups are fixed
        m.setup_forcing.deactivate()
        if hasattr(m, "family_forcing"):
            m.family_forcing.deactivate()
        session = Session(m)
        session.translate()
        return m, d, session

    @staticmethod
    def _profits(
        m: pyo.ConcreteModel, d: ModelData, session: Session, stage: FirstStage
    ) -> list[float]:
        from optimizer.core.pipeline import scenario_profits

        changed = []
        for key, v in m.x.items():
            v.fix(stage.x.get(key, 0.0))
            changed.append(v)
        for key, v in m.y.items():
            v.fix(1.0 if key in stage.y else 0.0)
            changed.append(v)
        for key, v in m.z.items():
            v.fix(1.0 if key in stage.z else 0.0)
            changed.append(v)
        # firm deliveries as planned, at most what is on hand (the plan's values are rounded
        # to 1e-6: a delivery must not exceed the stock by that much)
        for i in d.I:
            on_hand = d.s0[i]
            for t in d.T:
                on_hand += sum(stage.x.get((i, ln, t), 0.0) for ln in m.LINES_OF[i])
                deliver = max(0.0, min(stage.f.get((i, t), 0.0), on_hand))
                on_hand -= deliver
                m.f[i, t].fix(deliver)
                changed.append(m.f[i, t])
        res = session.run(600.0, 0.0, changed=changed)
        if res.status != "optimal":
            raise SystemExit(f"out-of-sample LP: {res.status} ({res.message})")
        # the optimizer's own per-scenario accounting; its mean must be the LP's objective
        profits = scenario_profits(m, d)
        mean = sum(profits) / len(profits)
        assert res.objective is not None
        if abs(mean - res.objective) > 1e-6 * max(1.0, abs(mean)):
            raise SystemExit(f"per-scenario profits average {mean} but the LP says {res.objective}")
        return profits


def pair_se(values: np.ndarray) -> float:
    """Standard error of the mean over antithetic pairs (2j, 2j+1): the pairs are independent,
    the two halves of one are not."""
    pairs = 0.5 * (values[0::2] + values[1::2])
    if len(pairs) < 2:
        return float("nan")
    return float(pairs.std(ddof=1) / math.sqrt(len(pairs)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=150)
    ap.add_argument("--periods", type=int, default=8)
    ap.add_argument("--lines", type=int, default=3)
    ap.add_argument(
        "--scenarios",
        type=int,
        default=32,
        help="scenario count of the LP relaxation and the quantile patterns' pricing, and of "
        "the expected-profit solve unless --scenario-counts is given",
    )
    ap.add_argument(
        "--scenario-counts",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="solve the expected-profit plan once per scenario count, each with the same time "
        "limit (default: --scenarios)",
    )
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
        "--certainty-shares",
        type=float,
        nargs="+",
        default=None,
        metavar="S",
        help="solve the expected-profit plan once per share of the time limit its median-demand "
        "start may take (default: the solver's own, optimizer.core.heuristics.CERTAINTY_SHARE)",
    )
    ap.add_argument(
        "--levels", default="0.5,0.6,0.7,0.8,0.9", help="quantile plans to compare ('' = none)"
    )
    ap.add_argument(
        "--eval-scenarios",
        type=int,
        default=256,
        metavar="M",
        help="fresh scenarios each plan is priced over out of sample (even; 0 = off)",
    )
    ap.add_argument(
        "--eval-seed",
        type=int,
        default=1000,
        help="seed of the fresh scenarios (the plans' own are drawn with the problem's "
        "scenario_seed, 0 for the synthetic problem)",
    )
    ap.add_argument(
        "--eval-batch",
        type=int,
        default=64,
        help="fresh scenarios per evaluation model (even; memory and build time per batch)",
    )
    ap.add_argument(
        "--end-stock-value",
        type=float,
        default=1.0,
        help="PlanningProblem.end_stock_value: the share of its unit cost a unit left at the "
        "horizon's end is worth in expected-profit mode (1, the default; 0 before it existed)",
    )
    ap.add_argument(
        "--correlations",
        type=float,
        nargs="+",
        default=None,
        metavar="R",
        help="solve the expected-profit plan once per week_correlation of its scenarios "
        "(default: the problem's)",
    )
    ap.add_argument(
        "--eval-correlation",
        type=float,
        default=None,
        metavar="R",
        help="week_correlation of the fresh scenarios (default: the problem's)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="solve each expected-profit configuration this many times (the same input: what "
        "differs is where the time limits cut the search)",
    )
    args = ap.parse_args()
    from optimizer.core.problem import MAX_SCENARIOS

    counts = args.scenario_counts or [args.scenarios]
    if args.eval_scenarios < 0 or args.eval_scenarios % 2 or args.eval_batch < 2:
        ap.error("--eval-scenarios must be 0 or a positive even number, --eval-batch >= 2")
    if args.eval_batch % 2 or args.eval_batch > MAX_SCENARIOS:
        ap.error(
            f"--eval-batch must be even (antithetic pairs stay in one batch) and at most "
            f"{MAX_SCENARIOS} (a problem's scenario_count)"
        )

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
    base = replace(base, end_stock_value=args.end_stock_value)
    saa = replace(base, demand_mode="expected_profit", scenario_count=args.scenarios)
    options = SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=args.gap, explain=False)
    rows: list[tuple[str, str, str, str, str]] = []
    # out of sample: (plan, scenarios, in-sample profit, bound, gap, seconds) and its first stage
    evals: list[tuple[tuple[str, str, str, str, str, str], FirstStage]] = []

    from optimizer.core import pipeline

    shares = args.certainty_shares or [pipeline.CERTAINTY_SHARE]
    rhos = args.correlations or [base.week_correlation]
    runs = [(c, s, r) for c in counts for s in shares for r in rhos] * args.repeats
    for count, share, rho in runs:
        t0 = time.perf_counter()
        pipeline.CERTAINTY_SHARE = share  # the name _expected_profit_start reads
        start = f"{share:.0%}" + (f", correlation {rho:g}" if args.correlations else "")
        planned = replace(
            base, demand_mode="expected_profit", scenario_count=count, week_correlation=rho
        )
        plan = solve(planned, options)
        seconds = f"{time.perf_counter() - t0:.1f}"
        objective = f"{plan.objective:,.0f}" if plan.objective is not None else "-"
        bound = f"{plan.best_bound:,.0f}" if plan.best_bound is not None else "-"
        gap = f"{100 * plan.gap:.2f}%" if plan.gap is not None else "-"
        rows.append(
            (
                f"expected profit, {count} scenarios, start share {start} (committed solve)",
                objective,
                bound,
                gap,
                seconds,
            )
        )
        print(f"  {rows[-1]}  ({plan.message})", flush=True)
        if plan.objective is not None:
            stage = stage_of_plan(plan, prepare(planned))
            label = f"expected profit, start share {start}"
            evals.append(((label, str(count), objective, bound, gap, seconds), stage))

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
        solved_s = time.perf_counter() - t0
        made = {(pl.variant, pl.line, pl.period) for pl in qplan.lines if pl.setup}
        free = {k: v for k, v in m.y.items() if id(v) in setups.ids}
        setups.fix(every, {id(v): float(k in made) for k, v in free.items()})
        priced = session.run(600.0, 0.0, changed=setups.take(), lp="ipm")
        name = f"P{round(100 * level)}"
        rows.append(
            (
                f"{name} planned as certain ({qplan.objective:,.0f} if it were, stock left "
                "worth nothing), "
                "its setups priced over the scenarios",
                f"{priced.objective:,.0f}" if priced.objective is not None else "-",
                "-",
                f"{100 * qplan.gap:.2f}% (its own)" if qplan.gap is not None else "-",
                f"{time.perf_counter() - t0:.1f}",
            )
        )
        print(f"  {rows[-1]}", flush=True)
        own_gap = f"{100 * qplan.gap:.2f}% (its own)" if qplan.gap is not None else "-"
        if qplan.objective is not None:
            evals.append(
                (
                    (f"{name} as planned", "-", "-", "-", own_gap, f"{solved_s:.1f}"),
                    stage_of_plan(qplan, d),
                )
            )
        if priced.has_solution:
            evals.append(
                (
                    (
                        f"{name} setups, production of the pricing LP",
                        str(args.scenarios),
                        f"{priced.objective:,.0f}",
                        "-",
                        "-",
                        f"{time.perf_counter() - t0:.1f}",
                    ),
                    stage_of_model(m),
                )
            )

    print()
    print(f"{what}, {args.time_limit:g} s limit, {100 * args.gap:g}% gap asked")
    print()
    print("| plan | expected profit | bound | gap | seconds |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")

    if args.eval_scenarios > 0 and evals:
        del m, session, setups  # the evaluation models take their place in memory
        t0 = time.perf_counter()
        if args.eval_seed == base.scenario_seed:
            print(
                f"\nnote: --eval-seed {args.eval_seed} is the plans' own scenario seed: the "
                "first scenarios are the ones they were planned on (an in-sample check)"
            )
        eval_rho = base.week_correlation if args.eval_correlation is None else args.eval_correlation
        oos = OutOfSample(base, args.eval_scenarios, args.eval_seed, args.eval_batch, eval_rho)
        profits = oos.evaluate([stage for _, stage in evals])
        eval_s = time.perf_counter() - t0
        means = [float(p.mean()) for p in profits]
        best = int(np.argmax(means))
        print()
        print(
            f"Out of sample: {args.eval_scenarios} fresh scenarios (seed {args.eval_seed}, "
            f"week correlation {eval_rho:g}, "
            f"batches of at most {args.eval_batch}), every plan's first stage fixed; "
            f"{eval_s:.1f} s. "
            "s.e. over the antithetic pairs; the last column is paired (same scenarios)."
        )
        print()
        print(
            "| plan | scenarios | in-sample profit | bound | gap | seconds "
            "| out-of-sample profit ± s.e. | vs best ± s.e. |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for (cells, _), values, mean in zip(evals, profits, means, strict=True):
            diff = values - profits[best]
            vs = (
                "best" if diff.any() is np.False_ else f"{diff.mean():+,.0f} ± {pair_se(diff):,.0f}"
            )
            print("| " + " | ".join(cells) + f" | {mean:,.0f} ± {pair_se(values):,.0f} | {vs} |")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
