"""One bootstrap of a home: synthetic data -> the store -> trained, served models.

:func:`bootstrap_home` makes a data directory usable: it generates the synthetic manufacturer
(``preset``, ``seed``) into a data-set folder, migrates the store and ingests the folder, then
trains the demand and cost models on the store's frames with the caller's
:class:`~services.training.train.TrainConfig` (scored against the data set's ground truth) and
serves them. The demo, the simulator, ``tailorline up`` and the gateway tests all set a home up
with it; each passes its own training config and data-set folder. It reports each step to
``progress`` when the step starts and when it is done (:class:`SetupStep`), and every training
epoch to ``train_progress``. :func:`needs_setup` says whether a home has served models yet.

A home without a configured pseudonym key gets its own first (:mod:`services.common.keys`).
``keep_data=False`` removes the generated data set (raw CSVs with customer names and e-mails)
once it is ingested; ``tailorline up`` does that. :func:`main` runs one bootstrap in a child
process and reports on stdout as JSON lines, so that ``up`` never loads TensorFlow itself.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from services.common.keys import ensure_pseudonym_key
from services.common.settings import CoreSettings
from services.datagen.generate import generate
from services.features.tables import read_truth
from services.ingest import IngestReport, ingest_dir
from services.registry.repository import ModelRepository
from services.store.db import make_engine, migrate
from services.store.frames import load_frames
from services.training.run import run_training
from services.training.train import Progress, TrainConfig

STEPS = 3


@dataclass(frozen=True)
class SetupStep:
    """One step of the bootstrap: reported when it starts (``seconds`` None), then when done
    with ``detail`` (one line: what it made) and its duration."""

    number: int  # 1 .. STEPS
    name: str  # "datagen", "ingest" or "train"
    what: str  # what the step does, e.g. "generating the synthetic data set"
    detail: str = ""
    seconds: float | None = None

    @property
    def done(self) -> bool:
        return self.seconds is not None


@dataclass
class Home:
    """A bootstrapped home: its data set, the open store (the caller disposes of ``engine``), the
    frames the models were trained on, and what ingest and training reported."""

    data_dir: Path
    engine: Engine
    frames: dict[str, pd.DataFrame]
    ingested: IngestReport
    trained: dict[str, Any]
    steps: list[SetupStep] = field(default_factory=list)


def needs_setup(settings: CoreSettings) -> bool:
    """True when the model repository has no served demand or cost model."""
    repo = ModelRepository(settings.resolved_models_dir)
    return any(repo.served_version(n) is None for n in ("demand", "cost"))


def up_train_config(preset: str) -> TrainConfig:
    """What ``tailorline up`` trains a fresh home with: ``tailorline train``'s defaults, with a
    4-week hold-out on the tiny preset (30 weeks of history)."""
    holdout = 4 if preset == "tiny" else 13
    return TrainConfig(seed=7, holdout_weeks=holdout, epochs=30, origin_stride=2)


def _quiet(_step: SetupStep) -> None:
    return None


def bootstrap_home(
    settings: CoreSettings,
    *,
    preset: str = "small",
    seed: int = 1,
    train_config: TrainConfig,
    progress: Callable[[SetupStep], None] = _quiet,
    data_dir: Path | None = None,
    train_progress: Progress | None = None,
    keep_data: bool = True,
) -> Home:
    """datagen ``preset``/``seed`` into ``data_dir`` (default ``<home>/data/<preset>``; a data
    set already there is replaced) -> migrate + ingest into ``settings``' store -> train with
    ``train_config`` into its model repository and serve the new versions. ``keep_data=False``
    removes ``data_dir`` once ingested (its ground truth is read first)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    settings = ensure_pseudonym_key(settings)
    data = data_dir or settings.home / "data" / preset
    steps: list[SetupStep] = []

    def step(number: int, name: str, what: str) -> Callable[[str], None]:
        started = SetupStep(number, name, what)
        progress(started)
        t0 = time.perf_counter()

        def finish(detail: str) -> None:
            done = replace(started, detail=detail, seconds=time.perf_counter() - t0)
            steps.append(done)
            progress(done)

        return finish

    finish = step(1, "datagen", "generating the synthetic data set")
    summary = generate(preset, seed, data, "csv", overwrite=True)
    finish(f"preset {preset}, seed {seed}: {sum(summary.counts.values()):,} rows")

    finish = step(2, "ingest", "loading it into the store")
    url = settings.resolved_db_url
    migrate(url)
    engine = make_engine(url)
    ingested = ingest_dir(data, engine, settings)
    truth = read_truth(data)
    if not keep_data:  # the raw files hold names and e-mails; the store has none of them
        shutil.rmtree(data, ignore_errors=True)
    finish(
        f"{ingested.loaded_rows:,} rows loaded, {ingested.rejected_rows:,} rejected"
        + ("" if keep_data else "; raw data set removed")
    )

    finish = step(3, "train", "training the demand and cost models")
    frames = load_frames(engine)
    trained = run_training(
        frames,
        ModelRepository(settings.resolved_models_dir),
        train_config,
        truth=truth,
        progress=train_progress,
        engine=engine,
    )
    finish(_trained_line(trained))
    return Home(data, engine, frames, ingested, trained, steps)


def _trained_line(trained: dict[str, Any]) -> str:
    dm, versions = trained["demand"], trained["versions"]
    # the cost of the recorded runs (fixed cost per run + unit cost x lot): what the planner
    # pays for. The marginal unit cost alone is barely identified by lots of a few units: on the
    # small preset 26.6% where the runs' cost was 6.6% off (services/training/cost_fit.py)
    cost = trained["cost"]
    if "lot_cost_mape_vs_truth" in cost:
        what, mape = "run-cost", cost["lot_cost_mape_vs_truth"]
    else:
        what, mape = "unit-cost", cost.get("unit_cost_mape_vs_truth", float("nan"))
    return (
        f"demand v{versions['demand']} (hold-out WAPE {dm['model']['wape']:.3f} vs seasonal "
        f"naive {dm['seasonal_naive']['wape']:.3f}), cost v{versions['cost']} "
        f"({what} MAPE vs truth {mape:.2%})"
    )


def main(argv: list[str] | None = None) -> None:
    """One bootstrap of the home the environment names (``tailorline up`` runs this in a child
    process): each step and each training epoch as one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="services.local.bootstrap")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args(argv)

    def emit(kind: str, **data: Any) -> None:
        sys.stdout.write(json.dumps({"kind": kind, **data}) + "\n")
        sys.stdout.flush()

    home = bootstrap_home(
        CoreSettings(),
        preset=args.preset,
        train_config=up_train_config(args.preset),
        progress=lambda step: emit("step", **asdict(step)),
        train_progress=lambda stage, done, total: emit(
            "epoch", stage=stage, done=done, total=total
        ),
        keep_data=args.keep_data,
    )
    home.engine.dispose()
    emit("done")


if __name__ == "__main__":
    main()
