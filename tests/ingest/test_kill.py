"""SIGKILL in the middle of ``tailorline ingest`` leaves the store as it was.

A real ``tailorline ingest`` process loads a data set with 60,000 orders; as soon as it reports
the first written chunk of orders (it is then inside its one transaction) it is killed with
SIGKILL. The store must still hold exactly what an earlier import had committed, and a re-run must
end with exactly the row counts of an uninterrupted import.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from services.common.settings import CoreSettings
from services.ingest import ingest_dir
from services.store import make_engine, schema

from .conftest import MINI_COUNTS, write_big, write_mini

N_ORDERS = 60_000
REPO = Path(__file__).resolve().parents[2]


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (*schema.DATA_TABLES, schema.ingest_runs)
            }
    finally:
        engine.dispose()


def _kill_inside_transaction(url: str, folder: Path) -> None:
    cmd = [sys.executable, "-m", "services.cli", "--db", url, "ingest", str(folder)]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("loading orders:"):  # a chunk of orders is written, uncommitted
                os.kill(proc.pid, signal.SIGKILL)
                break
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == -signal.SIGKILL, f"ingest was not killed half-way (rc={rc}): {seen[-5:]}"


def test_sigkill_half_way_then_rerun_gives_the_uninterrupted_counts(
    store_url: str, tmp_path: Path
) -> None:
    settings = CoreSettings()
    engine = make_engine(store_url)
    try:  # an earlier, committed import
        ingest_dir(write_mini(tmp_path / "mini"), engine, settings)
    finally:
        engine.dispose()
    before = _counts(store_url)
    assert before["orders"] == MINI_COUNTS["orders"] and before["ingest_runs"] == 1

    folder = write_big(tmp_path / "big", N_ORDERS)
    _kill_inside_transaction(store_url, folder)
    assert _counts(store_url) == before

    engine = make_engine(store_url)
    try:
        report = ingest_dir(folder, engine, settings)
    finally:
        engine.dispose()
    assert report.counts()["orders"]["loaded"] == N_ORDERS
    after = _counts(store_url)
    expected = {**MINI_COUNTS, "orders": MINI_COUNTS["orders"] + N_ORDERS, "ingest_runs": 2}
    assert after == expected
