"""Benchmark ``tailorline datagen``: wall time, rows and bytes per preset and format.

Usage: ``python bench/bench_datagen.py [--presets tiny,small,standard,large]
[--formats csv,parquet] [--seed 1]``. Prints a markdown table (one row per preset x format) and
the load average before and after, for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from services.datagen import generate


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presets", default="tiny,small,standard,large")
    ap.add_argument("--formats", default="csv,parquet")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    load_before = os.getloadavg()
    rows = []
    for preset in args.presets.split(","):
        for fmt in args.formats.split(","):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-datagen-{preset}-"))
            try:
                t0 = time.perf_counter()
                s = generate(preset, args.seed, tmp / "data", fmt)
                wall = time.perf_counter() - t0
                size = _size_mb(tmp / "data")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            c = s.counts
            total = sum(c.values()) + sum(s.truth_counts.values())
            rows.append(
                f"| {preset} | {fmt} | {c['variants']:,} | {c['lines']} | {c['orders']:,} "
                f"| {c['production']:,} | {c['reviews']:,} "
                f"| {s.truth_counts['expected_demand']:,} | {total:,} | {size:.1f} "
                f"| {wall:.2f} | {c['orders'] / wall:,.0f} |"
            )
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    la = os.getloadavg()
    print(f"load average after: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}")
    print()
    print(
        "| preset | format | variants | lines | orders | production | reviews "
        "| truth demand rows | rows total | MB | seconds | order rows/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
