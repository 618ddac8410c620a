"""One tiny synthetic data set, ingested into a SQLite store and trained once per session."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Trained:
    data: Path
    home: Path
    db_url: str
    models: Path
    report: dict[str, Any]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from services.datagen import generate

    out = tmp_path_factory.mktemp("tiny") / "data"
    generate("tiny", 1, out)
    return out


@pytest.fixture(scope="session")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """``tailorline ingest`` then ``tailorline train --json`` in-process, as a user runs them."""
    from services.cli import main

    home = tmp_path_factory.mktemp("home")
    db_url = f"sqlite:///{home / 'store.db'}"
    base = ["--home", str(home), "--db", db_url]
    with contextlib.redirect_stdout(io.StringIO()):
        main([*base, "ingest", str(tiny_data), "--quiet"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main([*base, "train", "--json", "--epochs", "3", "--holdout-weeks", "6", "--seed", "3"])
    return Trained(tiny_data, home, db_url, home / "models", json.loads(out.getvalue()))
