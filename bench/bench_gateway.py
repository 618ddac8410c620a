"""CreatePlan end to end through the gateway, next to its parts called directly, same run.

    python bench/bench_gateway.py [--home DIR] [--preset small] [--runs 10] [--horizon 12]

Starts a LocalStack (predictor, optimizer on a local Ray, gateway) on free ports over a data
directory (a fresh one is set up with datagen PRESET + ingest + train first), then per run:
1. CreatePlan through the gateway (gRPC, end to end: store read, features, two predictor calls,
   problem build, optimizer solve, plan stored);
2. the same steps called directly from this process: the planner's own work timed apart from
   the two V2 predictor calls (timed at the client), and the optimizer's Solve over gRPC of the
   same problem.
Prints a markdown table (p50/p99 per column) and the gateway's overhead, two ways:
- in the same call (the verdict): end to end - the optimizer's own time for that very plan (its
  build + translate + solve, reported in the plan) - the predictor calls (timed directly). What
  is left is everything the gateway adds: store read, features, problem build, the Ray Serve
  hop and proto conversions, storing the plan and the forecast, the reply. It does not depend on
  how long two different solves of the same MIP took.
- across calls: end to end - (predictor calls + a separate direct Solve of the same problem).
  With a time-limited MIP on a shared machine the two solves differ by seconds, so this one is
  noisy and can even be negative; it is shown for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="data directory (default: temporary)")
    ap.add_argument("--preset", default="small", help="data set for a fresh home")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--service-level", type=float, default=0.9)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--gap", type=float, default=0.01)
    args = ap.parse_args()

    import grpc
    from tailorline.v1 import planning_service_pb2 as pb
    from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

    from optimizer.serving.client import OptimizerClient
    from services.common.settings import CoreSettings
    from services.gateway.downstream import PredictorClient
    from services.local.bootstrap import bootstrap_home, needs_setup, up_train_config
    from services.local.stack import LocalStack
    from services.planning.request import PlanRequest
    from services.planning.service import Planner
    from services.store.db import make_engine

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    core = CoreSettings(home=home)
    if needs_setup(core):
        bootstrap_home(
            core,
            preset=args.preset,
            train_config=up_train_config(args.preset),
            progress=lambda s: print(f"[setup] {s.what}: {s.detail or '...'}", file=sys.stderr),
        ).engine.dispose()
    stack = LocalStack(core).start(say=lambda m: print(m, file=sys.stderr))
    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "end_to_end",
            "predict_calls",
            "solve",
            "planner_own",
            "direct_total",
            "optimizer_in_call",
            "overhead_in_call",
            "overhead",
        )
    }
    try:
        predictor = PredictorClient(stack.predictor_target)
        optimizer = OptimizerClient(stack.optimizer_target, timeout_s=120.0)
        engine = make_engine(core.resolved_db_url)
        predict_times: list[float] = []

        def timed_predict(deadline: float | None) -> Any:
            def call(name: str, arrays: Any) -> Any:
                t = time.perf_counter()
                try:
                    return predictor.infer(name, arrays, deadline)
                finally:
                    predict_times.append(time.perf_counter() - t)

            return call

        planner = Planner(
            engine, predict=timed_predict, inputs=predictor.inputs, solve=optimizer.solve
        )
        spec = PlanRequest(
            horizon=args.horizon,
            service_level=args.service_level,
            time_limit_s=args.time_limit,
            mip_rel_gap=args.gap,
        )
        request = pb.CreatePlanRequest(
            horizon=args.horizon,
            service_level=args.service_level,
            time_limit_s=args.time_limit,
            mip_rel_gap=args.gap,
            name="bench",
        )
        channel = grpc.insecure_channel(
            stack.gateway_target, options=[("grpc.max_receive_message_length", 256 << 20)]
        )
        stub = pb_grpc.PlanningServiceStub(channel)
        stub.CreatePlan(request, timeout=600)  # warm-up: model metadata, caches, replicas
        n_variants = 0
        for _ in range(args.runs):
            t = time.perf_counter()
            response = stub.CreatePlan(request, timeout=600)
            e2e = time.perf_counter() - t
            n_variants = len({v.variant for v in response.result.plan.variants})
            optimizer_own = response.result.plan.total_time_s

            predict_times.clear()
            t = time.perf_counter()
            prepared = planner.prepare(spec)
            t_prepare = time.perf_counter() - t
            t = time.perf_counter()
            optimizer.solve(prepared.problem, prepared.options)
            t_solve = time.perf_counter() - t
            t_predict = sum(predict_times)
            rows["end_to_end"].append(e2e)
            rows["predict_calls"].append(t_predict)
            rows["solve"].append(t_solve)
            rows["planner_own"].append(t_prepare - t_predict)
            rows["direct_total"].append(t_prepare + t_solve)
            rows["optimizer_in_call"].append(optimizer_own)
            rows["overhead_in_call"].append(e2e - optimizer_own - t_predict)
            rows["overhead"].append(e2e - t_predict - t_solve)
        channel.close()
        predictor.close()
        optimizer.close()
        engine.dispose()
    finally:
        stack.stop()

    print(
        f"\nCreatePlan, {n_variants} variants x {args.horizon} weeks, service level "
        f"{args.service_level}, gap {args.gap}, {args.runs} runs (after 1 warm-up)\n"
    )
    print("| measure | p50 (s) | p99 (s) | mean (s) |")
    print("|---|---:|---:|---:|")
    labels = {
        "end_to_end": "CreatePlan through the gateway (end to end)",
        "predict_calls": "predictor calls, direct (demand + cost, V2 gRPC)",
        "solve": "optimizer Solve, direct (gRPC)",
        "planner_own": "store read + features + problem build (in-process)",
        "direct_total": "all parts called directly",
        "optimizer_in_call": "optimizer's own time inside the CreatePlan (build+translate+solve)",
        "overhead_in_call": "**gateway overhead, same call** = end to end - optimizer's own "
        "- predictor",
        "overhead": "gateway overhead, across calls = end to end - predictor - direct solve",
    }
    for key, label in labels.items():
        v = rows[key]
        print(f"| {label} | {pct(v, 0.5):.3f} | {pct(v, 0.99):.3f} | {statistics.mean(v):.3f} |")
    e2e_median = statistics.median(rows["end_to_end"])
    share = statistics.median(rows["overhead_in_call"]) / e2e_median
    across = statistics.median(rows["overhead"]) / e2e_median
    verdict = "met" if share < 0.10 else "NOT MET"
    print(
        f"\ngateway overhead, same call (median) = {share:.1%} of the end-to-end time "
        f"(target < 10%: {verdict}); across calls: {across:.1%}"
    )


if __name__ == "__main__":
    main()
