"""Benchmark ``tailorline ingest``: throughput of a first import and of an idempotent re-import.

Usage: ``python bench/bench_ingest.py [--presets standard,large] [--backends sqlite,postgresql]
[--seed 1] [--data DIR]``. For each preset the data set is generated once with datagen (CSV, into
DIR or a temporary folder), then imported into an empty store of each backend (a SQLite file; a
throw-away PostgreSQL server started from Debian's binaries), then imported again (must load 0
rows). Prints a markdown table plus the load average, for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

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
        settings = CoreSettings()
        t0 = time.perf_counter()
        first = ingest_dir(folder, engine, settings)
        t1 = time.perf_counter()
        second = ingest_dir(folder, engine, settings)
        t2 = time.perf_counter()
    finally:
        engine.dispose()
    read = sum(t.read for t in first.tables)
    return read, t1 - t0, first.loaded_rows, t2 - t1, second.loaded_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presets", default="standard,large")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=None, help="Keep generated data sets here.")
    args = ap.parse_args()
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
