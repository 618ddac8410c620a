"""What the planning tests share: the ``tiny`` preset ingested into a SQLite store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from services.common.settings import CoreSettings
from services.ingest import ingest_dir
from services.store import make_engine, migrate


def tiny_store(folder: Path, seed: int = 3) -> tuple[Engine, Any]:
    """The ``tiny`` preset (20 variants, 30 weeks) generated in ``folder / "data"`` and ingested
    into ``folder / "store.db"``: the engine and the ingest report."""
    from services.datagen import generate

    generate("tiny", seed, folder / "data")
    url = f"sqlite:///{folder / 'store.db'}"
    migrate(url)
    engine = make_engine(url)
    return engine, ingest_dir(folder / "data", engine, CoreSettings(home=folder))
