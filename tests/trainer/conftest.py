"""A tiny data set in a SQLite store, and two demand models fitted once: a sound one and one
trained on corrupted labels (every demand figure x20, a high learning rate: a hold-out WAPE
several times the sound model's)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from services.training.train import TrainConfig

BASE = TrainConfig(seed=3, holdout_weeks=6, epochs=3, origin_stride=2)


@dataclass(frozen=True)
class Store:
    data: Path
    home: Path
    db_url: str


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from services.cli import main
    from services.datagen import generate

    data = tmp_path_factory.mktemp("tiny") / "data"
    generate("tiny", 1, data)
    home = tmp_path_factory.mktemp("home")
    db_url = f"sqlite:///{home / 'store.db'}"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["--home", str(home), "--db", db_url, "ingest", str(data), "--quiet"])
    return Store(data, home, db_url)


@pytest.fixture(scope="session")
def panel(tiny_store: Store):
    from services.features import build_panel
    from services.store.db import make_engine
    from services.store.frames import load_frames

    engine = make_engine(tiny_store.db_url)
    try:
        return build_panel(load_frames(engine))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def good_fit(panel):
    from services.training.fit import fit

    return fit({"layers": 2, "units": 32, "learning_rate": 3e-3}, panel, BASE)


@pytest.fixture(scope="session")
def bad_fit(panel):
    from services.training.fit import fit

    corrupted = replace(panel, demand=panel.demand * 20.0)
    config = {"layers": 2, "units": 32, "learning_rate": 1e-2, "epochs": 5}
    return fit(config, corrupted, BASE)


@pytest.fixture()
def fresh(tmp_path: Path):
    """An empty, migrated store and an empty model repository."""
    from services.registry.repository import ModelRepository
    from services.store.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    engine = make_engine(url)
    yield engine, ModelRepository(tmp_path / "models")
    engine.dispose()


def _serve(engine, repo, fitted) -> int:
    """Publish ``fitted`` as the served demand version, as ``tailorline train`` would."""
    from services.registry.promote import promote
    from services.registry.publish import publish, register_version

    t = fitted.trained
    v = publish(repo, "demand", t.model, t.inputs, {"metrics": t.metrics})
    register_version(engine, repo, "demand", v)
    promote(engine, repo, "demand", v)
    return v


def _registry(engine) -> list[tuple[int, str]]:
    from sqlalchemy import select

    from services.store import schema

    t = schema.model_versions
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.version, t.c.status).where(t.c.name == "demand"))
        return sorted((int(v), str(s)) for v, s in rows)


@pytest.fixture()
def serve():
    return _serve


@pytest.fixture()
def registry():
    return _registry


@pytest.fixture()
def base() -> TrainConfig:
    return BASE
