"""The gateway's peak memory for a CreatePlan of many variants on a big store (issue 17).

    .venv/bin/python bench/bench_plan_memory.py --home DIR [--preset large] [--variants 200] \
        [--horizon 8] [--plans 2] [--epochs 30] [--compare-reads]

Sets up ``--home`` once (datagen PRESET + ingest + train, as ``tailorline up`` does; ``--epochs``
shortens the training, which the gateway's memory does not depend on; an existing home is used
as it is), starts the local stack (predictor, optimizer on a local Ray, gateway) on free ports,
and sends ``--plans`` CreatePlan calls of ``--variants`` stored variants (spread evenly over the
sorted catalogue) through the gateway. After each it reads the gateway process's resident memory
from /proc/<pid>/status: VmRSS (now) and VmHWM (the peak since it started). Prints a markdown
table, the store's size and the load average before and after: run it on an otherwise quiet
machine. The target of issue 17 is a peak under 1.5 GB on the ``large`` preset (1.3M orders,
5,000 variants); the first plan reads the store (the demand panel from the orders streamed in
chunks), the next ones reuse it. ``--compare-reads`` also prints the peak memory of a fresh
interpreter reading the store every table whole (what the planner did before) and as a plan now
reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET_BYTES = 1.5e9

#: A fresh interpreter's peak RSS after reading the store for a plan, the old way (every table
#: whole) and the new one (services.planning.reads), to show what the bounded read saves.
READ_PEAK = """
import sys
from pathlib import Path
from services.store.db import make_engine

def hwm():  # VmHWM, bytes: this process's own peak (ru_maxrss would carry the parent's over)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

engine = make_engine(sys.argv[1])
if sys.argv[2] == "whole":
    from services.features import clean_frames
    from services.store.frames import load_frames
    base = hwm()
    data = clean_frames(load_frames(engine))
else:
    from services.planning.reads import read_store_view
    base = hwm()
    data = read_store_view(engine)
print(base, hwm())
"""


def read_peaks(url: str) -> dict[str, tuple[int, int]]:
    """(peak RSS before the read, after it) in bytes of a fresh interpreter, per way of reading."""
    import subprocess

    out = {}
    for way in ("whole", "view"):
        done = subprocess.run(
            [sys.executable, "-c", READ_PEAK, url, way], capture_output=True, text=True, check=True
        )
        before, after = done.stdout.split()[-2:]
        out[way] = (int(before), int(after))
    return out


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes (Linux /proc)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024  # kB
    return out


def store_counts(engine: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from services.store import schema

    with engine.connect() as conn:
        return {
            t: int(
                conn.execute(select(func.count()).select_from(schema.metadata.tables[t])).one()[0]
            )
            for t in ("orders", "variants", "production", "reviews")
        }


def bench_home(home: Path | None, preset: str, epochs: int | None, prefix: str) -> Any:
    """The ``CoreSettings`` of ``home`` (a fresh temporary folder when None), set up once as
    ``tailorline up`` does (datagen PRESET + ingest + train; ``epochs`` shortens the training)
    unless it already serves both models. Shared by the benches that need a stack on a preset."""
    from services.common.settings import CoreSettings
    from services.local.bootstrap import bootstrap_home, needs_setup, up_train_config

    core = CoreSettings(home=home or Path(tempfile.mkdtemp(prefix=prefix)))
    if needs_setup(core):
        config = up_train_config(preset)
        if epochs is not None:
            config = dataclasses.replace(config, epochs=epochs)
        t = time.perf_counter()
        bootstrap_home(
            core,
            preset=preset,
            train_config=config,
            progress=lambda s: print(f"[setup] {s.what}: {s.detail or '...'}", file=sys.stderr),
        ).engine.dispose()
        print(f"[setup] {preset} home in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return core


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="data directory (default: temporary)")
    ap.add_argument("--preset", default="large", help="data set for a fresh home")
    ap.add_argument("--variants", type=int, default=200, help="stored variants per plan")
    ap.add_argument("--horizon", type=int, default=8, help="weeks planned")
    ap.add_argument("--plans", type=int, default=2, help="CreatePlan calls (first reads the store)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs of a fresh home")
    ap.add_argument("--time-limit", type=float, default=60.0, help="solver time limit, s")
    ap.add_argument("--gap", type=float, default=0.01, help="relative MIP gap")
    ap.add_argument(
        "--compare-reads",
        action="store_true",
        help="also the peak memory of reading the store whole vs as a plan now reads it",
    )
    args = ap.parse_args()

    import grpc
    from tailorline.optimizer.v1 import plan_pb2
    from tailorline.v1 import planning_service_pb2 as pb
    from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

    from services.local.stack import LocalStack
    from services.store.db import make_engine
    from services.store.frames import load_frames

    core = bench_home(args.home, args.preset, args.epochs, "bench-plan-memory-")
    engine = make_engine(core.resolved_db_url)
    counts = store_counts(engine)
    ids = sorted(load_frames(engine, ["variants"])["variants"]["variant_id"].astype(str))
    engine.dispose()
    peaks = read_peaks(core.resolved_db_url) if args.compare_reads else {}
    n = min(args.variants, len(ids))
    step = len(ids) / n
    chosen = [ids[int(k * step)] for k in range(n)]

    load_before = os.getloadavg()
    stack = LocalStack(core, ray_jobs=False).start(say=lambda m: print(m, file=sys.stderr))
    rows = []
    try:
        pid = stack.procs["gateway"].pid
        started = proc_status(pid)
        channel = grpc.insecure_channel(
            stack.gateway_target, options=[("grpc.max_receive_message_length", 256 << 20)]
        )
        stub = pb_grpc.PlanningServiceStub(channel)
        request = pb.CreatePlanRequest(
            horizon=args.horizon,
            variant_ids=chosen,
            time_limit_s=args.time_limit,
            mip_rel_gap=args.gap,
            name="bench-plan-memory",
        )
        for k in range(args.plans):
            t = time.perf_counter()
            response = stub.CreatePlan(request, timeout=1800)
            took = time.perf_counter() - t
            plan = response.result.plan
            mem = proc_status(pid)
            rows.append(
                (
                    k + 1,
                    took,
                    len({v.variant for v in plan.variants}),
                    plan_pb2.PlanStatus.Name(plan.status).removeprefix("PLAN_STATUS_").lower(),
                    plan.total_time_s,
                    mem["VmRSS"],
                    mem["VmHWM"],
                )
            )
        channel.close()
    finally:
        stack.stop()
    load_after = os.getloadavg()

    gb = 1e9
    print(f"\nstore: {counts['orders']:,} orders, {counts['variants']:,} variants, "
          f"{counts['production']:,} production records, {counts['reviews']:,} reviews "
          f"({args.preset}, {core.home})")  # fmt: skip
    print(f"gateway after start: VmRSS {started['VmRSS'] / gb:.3f} GB, "
          f"VmHWM {started['VmHWM'] / gb:.3f} GB")  # fmt: skip
    print(f"\nCreatePlan of {n} variants x {args.horizon} weeks through the gateway\n")
    print("| plan | seconds | variants planned | status | optimizer s | gateway VmRSS GB "
          "| gateway peak (VmHWM) GB |")  # fmt: skip
    print("|---:|---:|---:|---|---:|---:|---:|")
    for k, took, planned, status, solve_s, rss, hwm in rows:
        print(f"| {k} | {took:.1f} | {planned} | {status} | {solve_s:.1f} | {rss / gb:.3f} "
              f"| {hwm / gb:.3f} |")  # fmt: skip
    for way, (before, after) in peaks.items():
        what = "every table whole (before)" if way == "whole" else "the plan's view (now)"
        print(f"reading the store, {what}: peak RSS {after / gb:.3f} GB "
              f"(+{(after - before) / gb:.3f} GB over the interpreter)")  # fmt: skip
    peak = max(r[6] for r in rows) if rows else 0
    verdict = "under" if peak < TARGET_BYTES else "OVER"
    print(f"\npeak {peak / gb:.3f} GB: {verdict} the {TARGET_BYTES / gb:.1f} GB target")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} ({os.cpu_count()} CPUs)")  # fmt: skip


if __name__ == "__main__":
    main()
