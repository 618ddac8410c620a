"""Data sets and the local Ray of the distributed-training tests.

Ray is module-scoped and shut down after each module: other suites (the optimizer's Serve, the
trainer's Tune search) start their own Ray with ``ray.init`` after this one, and a process can
hold only one Ray at a time."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Exported:
    db_url: str
    parquet: Path


def _store(tmp: Path, preset: str) -> Exported:
    from services.cli import main
    from services.datagen import generate
    from services.store.db import make_engine
    from services.store.export import export_parquet

    data = tmp / "data"
    generate(preset, 1, data)
    db_url = f"sqlite:///{tmp / 'store.db'}"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["--home", str(tmp / "home"), "--db", db_url, "ingest", str(data), "--quiet"])
    engine = make_engine(db_url)
    try:  # small files: the orders span several blocks, as a big export does
        export_parquet(engine, tmp / "parquet", rows_per_file=4000)
    finally:
        engine.dispose()
    return Exported(db_url, tmp / "parquet")


@pytest.fixture(scope="session")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return _store(tmp_path_factory.mktemp("small"), "small")


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return _store(tmp_path_factory.mktemp("tiny"), "tiny")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray with 2 CPUs per test module (2 training workers), shut down at its end so
    that the next module or suite can start its own."""
    import ray

    from services.training.ray_local import shutdown_ray

    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        shutdown_ray()
