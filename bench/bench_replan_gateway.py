"""Streaming ReplanBatch of a preset through the real gateway: does every scenario answer within
its budget? (issue 17's "Done when" on the ``small`` preset; the integration test does the same
on ``tiny`` in the test stack.)

    .venv/bin/python bench/bench_replan_gateway.py --home DIR [--preset small] [--scenarios 16] \
        [--budget 20] [--horizon 8] [--epochs 5]

Sets up ``--home`` once (datagen PRESET + ingest + train, as ``tailorline up`` does; an existing
home is used as it is), starts the local stack (predictor, optimizer on a local Ray with its
autoscaled Solver, gateway) with the gateway's call cap raised to fit the batch, sends one
``ReplanBatch`` of ``--scenarios`` what-ifs (demand x0.8-1.2, every fourth with the first line
at 80% capacity; expected-profit plans, as a service level would make a scenario a quantile
plan) over every variant of the store for ``--horizon`` weeks, each with
``scenario_budget_s = --budget``, and prints each scenario's arrival, whole solve time against
its budget, status and which replica solved it, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="data directory (default: temporary)")
    ap.add_argument("--preset", default="small", help="data set for a fresh home")
    ap.add_argument("--scenarios", type=int, default=16)
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per scenario")
    ap.add_argument("--horizon", type=int, default=8, help="weeks planned")
    ap.add_argument("--epochs", type=int, default=5, help="training epochs of a fresh home")
    args = ap.parse_args()
    # one replica solves the scenarios one after the other: the call's cap must hold them all
    deadline = args.scenarios * args.budget + 120.0
    os.environ["TAILORLINE_GATEWAY_REQUEST_TIMEOUT_S"] = str(deadline)

    import grpc
    from bench_plan_memory import bench_home  # this folder is on sys.path when run as a script
    from tailorline.optimizer.v1 import plan_pb2
    from tailorline.v1 import planning_service_pb2 as pb
    from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

    from services.local.stack import LocalStack
    from services.store.db import make_engine
    from services.store.frames import load_frames

    core = bench_home(args.home, args.preset, args.epochs, "bench-replan-gateway-")
    engine = make_engine(core.resolved_db_url)
    frames = load_frames(engine, ["variants", "lines"])
    engine.dispose()
    ids = sorted(frames["variants"]["variant_id"].astype(str))
    line = str(frames["lines"]["line_id"].iloc[0])
    scenarios = []
    for k in range(args.scenarios):
        sc = pb.Scenario(id=f"s{k:02d}", demand_factor=0.8 + 0.4 * k / max(1, args.scenarios - 1))
        if k % 4 == 3:
            sc.capacity_factors[line] = 0.8
        scenarios.append(sc)
    request = pb.ReplanBatchRequest(
        base=pb.CreatePlanRequest(horizon=args.horizon, variant_ids=ids, name="bench-replan"),
        scenarios=scenarios,
        scenario_budget_s=args.budget,
    )

    load_before = os.getloadavg()
    stack = LocalStack(core, ray_jobs=False).start(say=lambda m: print(m, file=sys.stderr))
    rows = []
    try:
        channel = grpc.insecure_channel(
            stack.gateway_target, options=[("grpc.max_receive_message_length", 256 << 20)]
        )
        stub = pb_grpc.PlanningServiceStub(channel)
        t0 = time.perf_counter()
        for r in stub.ReplanBatch(request, timeout=deadline):
            at = time.perf_counter() - t0
            if r.WhichOneof("outcome") == "result":
                plan = r.result.plan
                status = plan_pb2.PlanStatus.Name(plan.status).removeprefix("PLAN_STATUS_")
                rows.append((r.scenario_id, at, plan.total_time_s, status.lower(), plan.gap))
            else:
                rows.append((r.scenario_id, at, float("nan"), f"error: {r.error.message}", None))
        wall = time.perf_counter() - t0
        channel.close()
    finally:
        stack.stop()
    load_after = os.getloadavg()

    print(
        f"\nReplanBatch: {args.scenarios} scenarios of {len(ids)} variants x {args.horizon} weeks "
        f"({args.preset}), budget {args.budget:g} s each, call deadline {deadline:g} s\n"
    )
    print("| scenario | arrived at s | whole solve s | within budget | status | gap |")
    print("|---|---:|---:|---|---|---:|")
    for sid, at, took, status, gap in rows:
        ok = "yes" if took <= args.budget else "**no**"
        g = f"{100 * gap:.2f}%" if gap is not None else "-"
        print(f"| {sid} | {at:.1f} | {took:.1f} | {ok} | {status} | {g} |")
    within = sum(1 for _, _, took, _, _ in rows if took <= args.budget)
    print(f"\n{within} of {args.scenarios} answered, within the budget; batch {wall:.1f} s")
    print(
        f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} ({os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
