"""CreatePlan end to end through the gateway, next to its parts called directly, same run.

    python bench/bench_gateway.py [--home DIR] [--preset small] [--runs 10] [--horizon 12]

Starts a LocalStack (predictor, optimizer on a local Ray, gateway) on free ports over a data
directory (a fresh one is set up with datagen PRESET + ingest + train first), then per run:
1. CreatePlan through the gateway (gRPC, end to end: store read, features, two predictor calls,
   problem build, optimizer solve, plan stored);
2. the same steps called directly from this process: the planner's own work timed apart from
   the two V2 predictor calls (timed at the client), and the optimizer's Solve over gRPC of the
   same problem.
Prints a markdown table (p50/p99 per column) and the gateway's overhead = end to end - (predictor
calls + optimizer solve).
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

    from services.api.tailorline.v1 import planning_service_pb2 as pb
    from services.api.tailorline.v1 import planning_service_pb2_grpc as pb_grpc
    from services.common.settings import CoreSettings
    from services.gateway.clients import OptimizerGrpc, PredictorClient
    from services.gateway.planner import Planner, PlanSpec
    from services.gateway.stack import LocalStack, needs_setup, prepare_home
    from services.store.db import make_engine

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    core = CoreSettings(home=home)
    if needs_setup(core):
        prepare_home(core, preset=args.preset, say=lambda m: print(m, file=sys.stderr))
    stack = LocalStack(core).start(say=lambda m: print(m, file=sys.stderr))
    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "end_to_end",
            "predict_calls",
            "solve",
            "planner_own",
            "direct_total",
            "overhead",
        )
    }
    try:
        predictor = PredictorClient(stack.predictor_target)
        optimizer = OptimizerGrpc(stack.optimizer_target)
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
        spec = PlanSpec(
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
        "overhead": "gateway overhead = end to end - predictor - solve",
    }
    for key, label in labels.items():
        v = rows[key]
        print(f"| {label} | {pct(v, 0.5):.3f} | {pct(v, 0.99):.3f} | {statistics.mean(v):.3f} |")
    share = statistics.median(rows["overhead"]) / statistics.median(rows["end_to_end"])
    print(f"\ngateway overhead (median) = {share:.1%} of the end-to-end time")


if __name__ == "__main__":
    main()
