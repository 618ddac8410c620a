"""Dump the planning problem a CreatePlan builds on a preset, for the solver benches.

    .venv/bin/python bench/dump_plan_problem.py --home /tmp/bench-small --preset small \\
        --horizon 8 --out /tmp/small-problem.json

Sets up the home (datagen PRESET + ingest + train) when it is new, starts the local stack
(KServe predictor, Ray Serve optimizer, gateway), builds the problem with the gateway's own
Planner (store read, features, the served models' forecasts and cost estimates, the builder) in
the default demand mode, and writes it as JSON (``PlanningProblem.to_dict``). The stack is
stopped before the file is written, so a solve bench can then run on a quiet machine
(``bench/bench_expected_profit.py --problem FILE``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="data directory (reused if set up)")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--horizon", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from services.common.settings import CoreSettings
    from services.local.bootstrap import bootstrap_home, needs_setup, up_train_config
    from services.local.stack import LocalStack
    from services.planning.request import PlanRequest
    from services.simulate.loop import _local_planner
    from services.store.db import make_engine

    core = CoreSettings(home=args.home)
    if needs_setup(core):
        bootstrap_home(
            core,
            preset=args.preset,
            train_config=up_train_config(args.preset),
            progress=lambda s: print(f"[setup] {s.what}: {s.detail or '...'}", file=sys.stderr),
        ).engine.dispose()
    stack = LocalStack(core).start(say=lambda m: print(m, file=sys.stderr))
    try:
        engine = make_engine(core.resolved_db_url)
        planner, _ = _local_planner(engine, stack.predictor_target)
        problem = planner.prepare(PlanRequest(horizon=args.horizon)).problem
    finally:
        stack.stop()
    args.out.write_text(json.dumps(problem.to_dict()))
    n_routes = len(problem.routes)
    print(
        f"{args.out}: {len(problem.variants)} variants x {len(problem.periods)} weeks x "
        f"{len(problem.lines)} lines, {n_routes} routes, demand mode {problem.demand_mode}, "
        f"{problem.scenario_count} scenarios",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
