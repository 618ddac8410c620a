"""Scenario throughput of the optimizer's Ray Serve app: 1 vs 2 Solver replicas, same scenarios.

For each replica count it starts a local Ray + Serve from optimizer/serving/serve_config.yaml
(Solver pinned to that many replicas, everything else as deployed), sends one warm-up batch, then
times ``--repeats`` SolveBatch calls of the same scenarios over gRPC and prints a markdown table.
Scenarios are what-ifs of one synthetic problem: demand quantiles (service level), capacity and
demand factors. The objective sum is printed to show both runs solved the same problems.

    .venv/bin/python bench/bench_scenarios.py [--scenarios 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scenarios(n: int) -> list[Any]:
    from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb

    pool = [svc_pb.Scenario(id=f"sl{q}", service_level=q) for q in (0.5, 0.6, 0.7, 0.8, 0.9)]
    pool += [svc_pb.Scenario(id=f"cap{f}", capacity_factors={"L1": f}) for f in (0.8, 1.2)]
    pool += [svc_pb.Scenario(id=f"dem{f}", demand_factor=f) for f in (1.1, 0.9)]
    return [pool[k % len(pool)] for k in range(n)]


def run(replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    import grpc
    from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
    from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc
    from tailorline.optimizer.v1 import problem_pb2 as pb

    from optimizer.core.synthetic import synthetic_problem
    from optimizer.serving import local
    from optimizer.serving.convert import problem_to_proto

    base = synthetic_problem(args.variants, args.periods, args.lines, seed=args.seed)
    options = pb.SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=args.gap)
    request = svc_pb.SolveBatchRequest(
        problem=problem_to_proto(base), scenarios=scenarios(args.scenarios), options=options
    )
    warmup = svc_pb.SolveBatchRequest(
        problem=problem_to_proto(base),
        scenarios=[svc_pb.Scenario(id=f"w{k}") for k in range(replicas)],
        options=options,
    )
    md = (("application", "optimizer"),)
    t0 = time.perf_counter()
    server = local.start(grpc_port=local.free_port(), num_cpus=args.num_cpus, replicas=replicas)
    startup = time.perf_counter() - t0
    walls: list[float] = []
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = svc_grpc.OptimizerServiceStub(channel)
            stub.SolveBatch(warmup, metadata=md, timeout=600)
            for _ in range(args.repeats):
                t1 = time.perf_counter()
                response = stub.SolveBatch(request, metadata=md, timeout=600)
                walls.append(time.perf_counter() - t1)
    finally:
        server.stop()
    plans = [r.plan for r in response.results if r.WhichOneof("outcome") == "plan"]
    used = {r.solved_by for r in response.results}
    return {
        "replicas": replicas,
        "startup": startup,
        "walls": walls,
        "plans": len(plans),
        "replicas_used": len(used),
        "objective_sum": sum(p.objective for p in plans),
        "solve_sum": sum(p.total_time_s for p in plans),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenarios", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--variants", type=int, default=8)
    p.add_argument("--periods", type=int, default=6)
    p.add_argument("--lines", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--gap", type=float, default=0.01)
    p.add_argument("--time-limit", type=float, default=60.0)
    p.add_argument("--num-cpus", type=int, default=2)
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    load_before = os.getloadavg()
    results = [run(r, args) for r in (1, 2)]
    load_after = os.getloadavg()
    base_rate = None
    print(
        f"\nscenario throughput: {args.scenarios} scenarios of a synthetic {args.variants} variants"
        f" x {args.periods} periods x {args.lines} lines problem, gap {args.gap:g},"
        f" {args.repeats} timed batches each, Ray num_cpus={args.num_cpus}\n"
    )
    print(
        "| Solver replicas | replicas that solved | batch wall s (median) | scenarios/s"
        " | speed-up | plans | sum of solve times s | objective sum | Ray+Serve start s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        wall = statistics.median(r["walls"])
        rate = args.scenarios / wall
        base_rate = base_rate or rate
        print(
            f"| {r['replicas']} | {r['replicas_used']} | {wall:.2f} | {rate:.2f}"
            f" | {rate / base_rate:.2f}x | {r['plans']}/{args.scenarios} | {r['solve_sum']:.2f}"
            f" | {r['objective_sum']:.1f} | {r['startup']:.1f} |"
        )
    print(
        f"\nload average before: {' '.join(f'{x:.2f}' for x in load_before)};"
        f" after: {' '.join(f'{x:.2f}' for x in load_after)}"
    )


if __name__ == "__main__":
    main()
