"""How long a solve with ``time_limit_s`` takes in all, phase by phase, in both demand modes.

    .venv/bin/python bench/bench_time_limit.py --problem /tmp/small-problem-h4.json --limit 10
    .venv/bin/python bench/bench_time_limit.py --problem /tmp/small-problem.json --limit 20

``--problem`` is a file of ``bench/dump_plan_problem.py``. Each mode is solved once with the
options a CreatePlan gets (explanation and whole units on, gap ``--gap``), and the wall time of
the whole ``solve`` is split into the model's build and translation, the MIP phases (the
expected-profit start and bound, HiGHS), the explanation and the whole-unit rounding. The
``time_limit_s`` the gateway hands the solver is a share of what is left of a call's deadline
(``services.planning.service.DEADLINE_SOLVE_SHARE``): this is what that share must cover.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(module: Any, name: str, seconds: dict[str, float]) -> None:
    """Wrap ``module.name`` so that each call adds its wall time to ``seconds[name]``."""
    inner: Callable[..., Any] = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0

    setattr(module, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", type=Path, required=True, help="bench/dump_plan_problem.py file")
    ap.add_argument("--limit", type=float, default=10.0, help="time_limit_s (default 10)")
    ap.add_argument("--gap", type=float, default=0.02, help="mip_rel_gap (default 0.02)")
    ap.add_argument("--scenarios", type=int, default=32, help="expected-profit scenarios")
    args = ap.parse_args()

    import optimizer.core.pipeline as pipeline
    from optimizer import PlanningProblem, SolveOptions, solve

    seconds: dict[str, float] = {}
    for name in ("explain", "round_to_units"):
        _timed(pipeline, name, seconds)
    base = PlanningProblem.from_dict(json.loads(args.problem.read_text()))
    print(f"load average before: {os.getloadavg()}", flush=True)
    print(
        "| mode | time_limit_s | wall in all | build + translate | MIP phases | explanation "
        "| whole units | profit (gap) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for mode in ("quantile", "expected_profit"):
        seconds.clear()
        problem = replace(base, demand_mode=mode, scenario_count=args.scenarios)
        t0 = time.perf_counter()
        plan = solve(problem, SolveOptions(time_limit_s=args.limit, mip_rel_gap=args.gap))
        wall = time.perf_counter() - t0
        post = seconds.get("explain", 0.0) + seconds.get("round_to_units", 0.0)
        prep = plan.build_time_s + (plan.translate_time_s or 0.0)
        gap = f"{100 * plan.gap:.1f}%" if plan.gap is not None else "-"
        profit = f"{plan.objective:,.0f}" if plan.objective is not None else "-"
        print(
            f"| {mode} | {args.limit:.0f} s | **{wall:.1f} s** | {prep:.1f} s "
            f"| {wall - prep - post:.1f} s | {seconds.get('explain', 0.0):.1f} s "
            f"| {seconds.get('round_to_units', 0.0):.1f} s | {profit} ({gap}) |",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
