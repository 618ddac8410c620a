"""Scenario throughput of streaming re-planning (SolveStream, what ReplanBatch uses) at 1, 2, ...
Solver replicas, with the per-solve cost and the memory of a Solver replica.

For each replica count it starts a local Ray + Serve from optimizer/serving/serve_config.yaml
(the Solver pinned to that many replicas, one HiGHS thread each, everything else as deployed),
sends one warm-up stream of one scenario per replica, then times ``--repeats`` streams of the same
``--scenarios`` what-ifs (demand quantiles, capacity and demand factors) with a per-scenario
budget, and samples the resident memory (RSS) of every Solver replica while they run. Prints a
markdown table and the load average before and after: run it on an otherwise quiet machine.

    .venv/bin/python bench/bench_replan_scaling.py [--replicas 1 2] [--scenarios 16] \
        [--budget 20] [--repeats 2] [--problem FILE.json]

The problem is synthetic, the shape of the ``small`` preset's default plan (150 variants x 8 weeks
x 3 lines) unless ``--problem`` names a JSON dump of a PlanningProblem
(``optimizer.core.codec.to_plain``). The sum of objectives is printed so that runs can be seen to
solve the same problems (equal only when every solve ends optimal).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scenarios(n: int, lines: list[str]) -> list[Any]:
    from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb

    pool = [svc_pb.Scenario(id=f"sl{q}", service_level=q) for q in (0.5, 0.6, 0.7, 0.8, 0.9)]
    pool += [svc_pb.Scenario(id=f"cap{f}", capacity_factors={lines[0]: f}) for f in (0.8, 1.2)]
    pool += [svc_pb.Scenario(id=f"dem{f}", demand_factor=f) for f in (1.1, 0.9)]
    out = []
    for k in range(n):
        sc = svc_pb.Scenario()
        sc.CopyFrom(pool[k % len(pool)])
        sc.id = f"{sc.id}-{k}"
        out.append(sc)
    return out


def problem(args: argparse.Namespace) -> Any:
    from optimizer.core.codec import from_plain
    from optimizer.core.problem import PlanningProblem
    from optimizer.core.synthetic import synthetic_problem

    if args.problem:
        return from_plain(PlanningProblem, json.loads(Path(args.problem).read_text()))
    return synthetic_problem(args.variants, args.periods, args.lines, seed=args.seed)


class RssSampler:
    """Peak RSS per Solver replica process, sampled every ``period_s`` in a thread."""

    def __init__(self, period_s: float = 0.5) -> None:
        self.period_s = period_s
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[int]:
        """This process's Ray workers that host a Solver replica (Ray titles them
        ``ray::ServeReplica:optimizer:Solver``)."""
        import psutil

        out = []
        for proc in psutil.Process().children(recursive=True):
            try:
                title = " ".join(proc.cmdline())
            except psutil.Error:
                continue
            if "ServeReplica" in title and "Solver" in title:
                out.append(proc.pid)
        return out

    def _run(self) -> None:
        import psutil

        pids = self._pids()
        while not self._stop.is_set():
            for pid in pids:
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                self.peak[pid] = max(self.peak.get(pid, 0), rss)
            self._stop.wait(self.period_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(replicas: int, args: argparse.Namespace) -> dict[str, Any]:
    import grpc
    from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
    from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc
    from tailorline.optimizer.v1 import problem_pb2 as pb

    from optimizer.serving import local
    from optimizer.serving.convert import problem_to_proto

    base = problem(args)
    lines = [ln.id for ln in base.lines]
    options = pb.SolveOptions(mip_rel_gap=args.gap, time_limit_s=args.budget)
    wire = problem_to_proto(base)

    def stream(scs: list[Any]) -> svc_pb.SolveStreamRequest:
        batch = svc_pb.SolveBatchRequest(problem=wire, scenarios=scs, options=options)
        return svc_pb.SolveStreamRequest(batch=batch, scenario_budget_s=args.budget)

    md = (("application", "optimizer"),)
    t0 = time.perf_counter()
    server = local.start(
        grpc_port=local.free_port(), num_cpus=max(replicas, args.num_cpus), replicas=replicas
    )
    startup = time.perf_counter() - t0
    walls: list[float] = []
    results: list[Any] = []
    try:
        with grpc.insecure_channel(
            server.grpc_target, options=[("grpc.max_receive_message_length", 256 << 20)]
        ) as channel:
            stub = svc_grpc.OptimizerServiceStub(channel)
            warm = [svc_pb.Scenario(id=f"w{k}") for k in range(replicas)]
            list(stub.SolveStream(stream(warm), metadata=md, timeout=3600))
            request = stream(scenarios(args.scenarios, lines))
            with RssSampler() as rss:
                for _ in range(args.repeats):
                    t1 = time.perf_counter()
                    results = [
                        r.result for r in stub.SolveStream(request, metadata=md, timeout=3600)
                    ]
                    walls.append(time.perf_counter() - t1)
    finally:
        server.stop()
    plans = [r.plan for r in results if r.WhichOneof("outcome") == "plan"]
    return {
        "replicas": replicas,
        "startup": startup,
        "walls": walls,
        "plans": len(plans),
        "replicas_used": len({r.solved_by for r in results}),
        "objective_sum": sum(p.objective for p in plans),
        "solve_mean": statistics.mean(p.total_time_s for p in plans) if plans else float("nan"),
        "solve_max": max((p.total_time_s for p in plans), default=float("nan")),
        "rss_mb": max(rss.peak.values(), default=0) / 2**20,
    }


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    p.add_argument("--scenarios", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument(
        "--budget", type=float, default=20.0, help="seconds per scenario (time limit too)"
    )
    p.add_argument("--gap", type=float, default=0.01)
    p.add_argument("--problem", default="", help="JSON dump of a PlanningProblem")
    p.add_argument("--variants", type=int, default=150)
    p.add_argument("--periods", type=int, default=8)
    p.add_argument("--lines", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num-cpus", type=int, default=2, help="Ray's logical CPUs (at least replicas)")
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    before = uptime()
    results = [run(r, args) for r in args.replicas]
    after = uptime()
    shape = (
        args.problem
        or f"synthetic {args.variants} variants x {args.periods} weeks x {args.lines} lines"
    )
    print(
        f"\nstreaming re-planning: {args.scenarios} scenarios of {shape}, gap {args.gap:g},"
        f" budget {args.budget:g} s per scenario, {args.repeats} timed streams each,"
        f" {os.cpu_count()} CPUs\n"
    )
    print(
        "| Solver replicas | replicas that solved | stream wall s (median) | scenarios/s"
        " | speed-up | plans | solve s per scenario (mean / max) | Solver RSS MB (peak)"
        " | objective sum | Ray+Serve start s |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base_rate = None
    for r in results:
        wall = statistics.median(r["walls"])
        rate = args.scenarios / wall
        base_rate = base_rate or rate
        print(
            f"| {r['replicas']} | {r['replicas_used']} | {wall:.2f} | {rate:.3f}"
            f" | {rate / base_rate:.2f}x | {r['plans']}/{args.scenarios}"
            f" | {r['solve_mean']:.2f} / {r['solve_max']:.2f} | {r['rss_mb']:.0f}"
            f" | {r['objective_sum']:.1f} | {r['startup']:.1f} |"
        )
    print(f"\nbefore: {before}\nafter:  {after}")
    one = results[0]
    print(estimate(one["solve_max"], args.scenarios, one["replicas"]))


def replicas_needed(n: int, deadline_s: float, solve_s: float, most: int = 32) -> int | None:
    """Fewest replicas c with ceil(n / c) waves of at most ``solve_s`` each inside
    ``deadline_s`` (the makespan bound of n equal-length jobs on c servers); None above
    ``most`` or when one solve alone does not fit."""
    waves = int(deadline_s // solve_s)
    if waves < 1:
        return None
    c = -(-n // waves)
    return c if c <= most else None


def estimate(solve_s: float, measured_n: int, replicas: int) -> str:
    """Replicas needed for N scenarios within a deadline, from the slowest measured solve."""
    deadlines = (60, 120, 300, 600)
    rows = [
        f"\nreplicas needed (makespan bound, slowest solve {solve_s:.1f} s at {replicas}"
        f" replica(s), {measured_n} scenarios measured; '>32' = more than the chart's 32):\n",
        "| scenarios | " + " | ".join(f"within {d} s" for d in deadlines) + " |",
        "|---:|" + "---:|" * len(deadlines),
    ]
    for n in (16, 64, 256):
        cells = []
        for d in deadlines:
            c = replicas_needed(n, d, solve_s)
            cells.append(">32" if c is None else str(c))
        rows.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
