"""Migration 0002 (retrain_triggers) upgrades and downgrades on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from services.store import current_revision, make_engine, migrate, schema
from services.store.db import MIGRATIONS_DIR


def _downgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def test_0002_adds_retrain_triggers_and_downgrades_cleanly(store_url: str) -> None:
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        assert current_revision(engine) == "0005"
        assert "retrain_triggers" in inspect(engine).get_table_names()
        with engine.connect() as conn:  # the migration and schema.py agree
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []

        _downgrade(store_url, "0001")
        assert current_revision(engine) == "0001"
        names = set(inspect(engine).get_table_names())
        assert "retrain_triggers" not in names and "forecasts_served" in names

        migrate(store_url)  # and up again
        assert current_revision(engine) == "0005"
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("retrain_triggers")}
        assert indexes == {"ix_retrain_triggers_model_week"}
    finally:
        engine.dispose()
