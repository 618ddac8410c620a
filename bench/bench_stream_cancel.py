"""Does cancelling a ``SolveStream`` stop its queued scenarios? Measured in solve times.

    .venv/bin/python bench/bench_stream_cancel.py [--runs 4] [--time-limit 1.5] [--slow-reader]

Starts a local Ray + Serve optimizer (2 CPUs), then ``--runs`` times: one ``SolveStream`` of 16
scenarios of a half-year, 20-variant problem at gap 0 (every solve runs into its limit); the first
result read, the call cancelled, then a one-scenario call timed. Had the queue gone on, that call
waits for it: its wait in solve times tells the two apart (under 4: stopped). ``--slow-reader``
holds the client's HTTP/2 window at 1 KB and waits 2 solve times before cancelling, so the
cancellation finds Serve's proxy in gRPC's send of the next result (the path that
``optimizer.serving.servicer`` closes; docs/optimizer-serve.md). Prints one line a run, a summary,
and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import time

import grpc
from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc
from tailorline.optimizer.v1 import problem_pb2 as pb

from optimizer.core.problem import SolveOptions
from optimizer.core.synthetic import synthetic_problem
from optimizer.serving import local
from optimizer.serving.client import APP_METADATA, OptimizerClient
from optimizer.serving.convert import problem_to_proto

SLOW_READER = [
    ("grpc.max_receive_message_length", 256 << 20),
    ("grpc.http2.lookahead_bytes", 1024),
    ("grpc.http2.bdp_probe", 0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--time-limit", type=float, default=1.5)
    parser.add_argument("--slow-reader", action="store_true")
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()}", flush=True)
    problem = synthetic_problem(20, 26, 2, seed=1)
    options = SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=0.0)
    scenarios = [svc_pb.Scenario(id=f"s{k}", demand_factor=1.0 + k / 20) for k in range(16)]
    request = svc_pb.SolveStreamRequest(
        batch=svc_pb.SolveBatchRequest(
            problem=problem_to_proto(problem),
            scenarios=scenarios,
            options=pb.SolveOptions(time_limit_s=args.time_limit, mip_rel_gap=0.0),
        ),
        scenario_budget_s=60.0,
    )
    server = local.start(grpc_port=local.free_port(), num_cpus=2, timeout_s=300)
    ratios = []
    try:
        channel_options = SLOW_READER if args.slow_reader else SLOW_READER[:1]
        with (
            grpc.insecure_channel(server.grpc_target, options=channel_options) as channel,
            OptimizerClient(server.grpc_target) as client,
        ):
            stub = svc_grpc.OptimizerServiceStub(channel)
            for run in range(args.runs):
                call = stub.SolveStream(request, metadata=list(APP_METADATA), timeout=600)
                solve_s = next(call).result.plan.total_time_s
                if args.slow_reader:
                    time.sleep(2 * solve_s)  # the next result is now in the proxy's send
                call.cancel()
                t0 = time.monotonic()
                (after,) = list(
                    client.solve_stream(
                        problem, scenarios[:1], options, budget_s=60.0, deadline=t0 + 600
                    )
                )
                waited = time.monotonic() - t0
                ratio = waited / max(solve_s, after[1].total_time_s)
                ratios.append(ratio)
                verdict = "stopped" if ratio < 4 else "THE QUEUE WENT ON"
                print(f"run {run}: waited {waited:.1f} s, {ratio:.1f} solve times: {verdict}")
    finally:
        server.stop()
    stopped = sum(r < 4 for r in ratios)
    print(
        f"stopped {stopped} of {len(ratios)}; follow-up waits {min(ratios):.1f}-{max(ratios):.1f}"
        " solve times"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
