"""Session-wide test settings shared by every test package.

Each area keeps its own fixtures in ``tests/<area>/conftest.py``. Environment variables that
keep Ray, TensorFlow and the data directory local to the test run are set here, before any of
those libraries is imported by a test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.store.testing import PostgresServer, unavailable_reason

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# the public development pseudonym key (a real home gets its own: tests/local checks that)
os.environ.setdefault("TAILORLINE_DEV_PSEUDONYM_KEY", "true")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the user's ~/.tailorline."""
    home = tmp_path / "tailorline-home"
    monkeypatch.setenv("TAILORLINE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def lotsizing_dir() -> Path:
    path = SHARED / "data" / "lotsizing" / "trigeiro"
    if not path.is_dir():
        pytest.skip(f"published lot-sizing instances not found at {path}")
    return path


@pytest.fixture(scope="session")
def k8s_schemas_dir() -> Path:
    path = SHARED / "k8s-schemas"
    if not path.is_dir():
        pytest.skip(f"KServe/KubeRay CRD schemas not found at {path}")
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (Debian's binaries, run as the postgres user)."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Any]:
    """A migrated SQLite store in the test's folder (for tests that need one store, not both)."""
    from services.store.db import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    eng = make_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store: a SQLite file, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url.rsplit("/", 1)[1])
