"""Fixtures of the monitoring tests: a migrated, empty store on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from services.store import make_engine, migrate


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """A migrated, empty store (SQLite file or PostgreSQL database)."""
    migrate(store_url)
    eng = make_engine(store_url)
    try:
        yield eng
    finally:
        eng.dispose()
