"""Benchmark ``tailorline ingest``: throughput of a first import and of an idempotent re-import.

Usage: ``python bench/bench_ingest.py [--presets standard,large] [--backends sqlite,postgresql]
[--seed 1] [--data DIR]``. For each preset the data set is generated once with datagen (CSV, into
DIR or a temporary folder), then imported into an empty store of each backend (a SQLite file; a
throw-away PostgreSQL server started from Debian's binaries), then imported again (must load 0
rows). Prints a markdown table plus the load average, for docs/benchmarks.md.

Memory mode: ``python bench/bench_ingest.py --big-gb 2 [--data DIR]`` writes datagen's ``tiny``
master data plus an ``orders.csv`` of about that many GB (checks the free disk first; the file
is deleted afterwards unless ``--data`` is given), then runs the real ``tailorline ingest`` on it
in a child process into an empty SQLite store and reports the child's peak RSS, wall time and
rows, with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from services.common.settings import CoreSettings
from services.datagen import generate
from services.ingest import ingest_dir
from services.store import make_engine, migrate
from services.store.testing import PostgresServer, unavailable_reason


def _run(url: str, folder: Path) -> tuple[int, float, int, float, int]:
    """(rows read, first import s, rows loaded, re-import s, rows loaded by the re-import)."""
    engine = make_engine(url)
    try:
        migrate(engine)
        settings = CoreSettings(pseudonym_key=BENCH_KEY)
        t0 = time.perf_counter()
        first = ingest_dir(folder, engine, settings)
        t1 = time.perf_counter()
        second = ingest_dir(folder, engine, settings)
        t2 = time.perf_counter()
    finally:
        engine.dispose()
    read = sum(t.read for t in first.tables)
    return read, t1 - t0, first.loaded_rows, t2 - t1, second.loaded_rows


ORDER_BATCH = 1_000_000  # generated orders per write
BENCH_KEY = "bench-pseudonym-key"  # the benchmark's pseudonyms never leave the machine


def _write_big_orders(folder: Path, target_bytes: int, seed: int) -> int:
    """datagen ``tiny`` master data plus a generated orders.csv of about ``target_bytes``."""
    generate("tiny", seed, folder, "csv", overwrite=True)
    variants = pd.read_csv(folder / "variants.csv", dtype=str)
    ids = variants["variant_id"].to_numpy()
    price = variants["list_price"].astype(float).to_numpy()
    rng = np.random.default_rng(seed)
    path = folder / "orders.csv"
    rows = 0
    with path.open("w", newline="") as fh:
        header = True
        while fh.tell() < target_bytes:
            n = ORDER_BATCH
            pick = rng.integers(0, len(ids), n)
            day = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.integers(0, 700, n), "D")
            frame = pd.DataFrame(
                {
                    "order_id": [f"BIG{rows + i:010d}" for i in range(n)],
                    "customer_id": [f"C{c:07d}" for c in rng.integers(0, 2_000_000, n)],
                    "customer_name": "Jane Doe",
                    "customer_email": "jane@example.com",
                    "variant_id": ids[pick],
                    "quantity": rng.integers(1, 5, n),
                    "unit_price": price[pick],
                    "order_date": day.strftime("%Y-%m-%d"),
                    "due_date": (day + pd.Timedelta(days=14)).strftime("%Y-%m-%d"),
                    "kind": rng.choice(["stock", "custom"], n),
                    "promo": rng.integers(0, 2, n),
                }
            )
            frame.to_csv(fh, index=False, header=header)
            header = False
            rows += n
    return rows


def big(args: argparse.Namespace) -> None:
    """Peak RSS of ``tailorline ingest`` on one big orders file (see the module doc)."""
    target = int(args.big_gb * 1e9)
    root = args.data or Path(tempfile.mkdtemp(prefix="bench-ingest-big-"))
    free = shutil.disk_usage(root if root.exists() else root.parent).free
    need = int(target * 3.5)  # the CSV, the SQLite store with its index, the journal
    if free < need:
        raise SystemExit(f"{root}: {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed")
    folder = root / f"big-{args.big_gb:g}gb"
    t0 = time.perf_counter()
    rows = _write_big_orders(folder, target, args.seed)
    size = (folder / "orders.csv").stat().st_size
    print(f"wrote {rows:,} orders, {size / 1e9:.2f} GB in {time.perf_counter() - t0:.0f} s")
    db = root / "big.db"
    db.unlink(missing_ok=True)
    args_ = ["--db", f"sqlite:///{db}", "--json", "ingest", str(folder), "--quiet"]
    # The child reports its own peak (VmHWM, of its own address space): getrusage's maxrss of a
    # child would count the parent's pages it shared between fork and exec.
    code = (
        "import atexit, sys\n"
        "def peak():\n"
        "    hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
        "    print('PEAK_KB', hwm.split()[1], file=sys.stderr)\n"
        "atexit.register(peak)\n"
        "from services.cli import main\n"
        f"main({args_!r})\n"
    )
    cmd = [sys.executable, "-c", code]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    env = {**os.environ, "TAILORLINE_PSEUDONYM_KEY": BENCH_KEY}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    load_after = os.getloadavg()
    if done.returncode != 0:
        raise SystemExit(f"ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = next(x for x in done.stderr.splitlines() if x.startswith("PEAK_KB")).split()[1]
    peak_mb = int(peak_kb) / 1024
    report = json.loads(done.stdout)
    orders = next(t for t in report["tables"] if t["table"] == "orders")
    print()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average before "
          f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, after "
          f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}")  # fmt: skip
    print(f"command: tailorline {' '.join(args_)}")
    print()
    print("| orders.csv | orders read | loaded | rejected | wall s | rows/s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {size / 1e9:.2f} GB | {orders['read']:,} | {orders['loaded']:,} | "
          f"{orders['rejected']:,} | {seconds:.0f} | {orders['read'] / seconds:,.0f} | "
          f"{peak_mb:,.0f} |")  # fmt: skip
    if args.data is None:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presets", default="standard,large")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None, help="Keep generated data sets here.")
    ap.add_argument(
        "--big-gb", type=float, default=None, help="Memory mode: one orders.csv of this many GB."
    )
    args = ap.parse_args()
    if args.big_gb:
        big(args)
        return
    backends = args.backends.split(",")
    pg: PostgresServer | None = None
    if "postgresql" in backends:
        reason = unavailable_reason()
        if reason:
            print(f"skipping PostgreSQL: {reason}")
            backends.remove("postgresql")
        else:
            pg = PostgresServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    data_root = args.data or tmp
    load_before = os.getloadavg()
    rows = []
    try:
        for preset in args.presets.split(","):
            folder = data_root / f"{preset}-{args.seed}"
            if not (folder / "orders.csv").exists():
                generate(preset, args.seed, folder, "csv", overwrite=True)
            for backend in backends:
                if backend == "sqlite":
                    url = f"sqlite:///{tmp / f'{preset}.db'}"
                else:
                    assert pg is not None
                    url = pg.create_database(f"bench_{preset}")
                read, s1, loaded, s2, again = _run(url, folder)
                rows.append((preset, backend, read, loaded, s1, read / s1, s2, read / s2, again))
                print(f"{preset} {backend}: {loaded} rows in {s1:.1f} s", flush=True)
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    print()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")  # fmt: skip
    print()
    print("| preset | store | rows read | rows loaded | first import s | rows/s | "
          "re-import s | re-import rows/s | re-import loaded |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for p, b, read, loaded, s1, r1, s2, r2, again in rows:
        print(f"| {p} | {b} | {read:,} | {loaded:,} | {s1:.1f} | {r1:,.0f} | {s2:.1f} | "
              f"{r2:,.0f} | {again} |")  # fmt: skip


if __name__ == "__main__":
    main()
