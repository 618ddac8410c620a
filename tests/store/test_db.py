"""Migrations, engine settings and sessions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from services.store import current_revision, make_engine, migrate, schema, session_scope
from services.store.db import normalise_url


def test_migrate_builds_the_whole_schema_and_is_idempotent(store_url: str) -> None:
    migrate(store_url)
    migrate(store_url)  # second run: nothing to do, no error
    engine = make_engine(store_url)
    try:
        assert current_revision(engine) == "0006"
        names = set(inspect(engine).get_table_names())
        expected = {
            "families", "family_attributes", "variants", "variant_attributes", "lines",
            "line_eligibility", "materials", "material_arrivals", "bom", "orders", "production",
            "reviews", "market", "plans", "plan_lines", "model_versions", "forecasts_served",
            "retrain_jobs", "ingest_runs", "retrain_triggers", "unobserved_weeks",
            "cost_predictions", "family_setups", "changeovers", "variant_weeks",
        }  # fmt: skip
        assert expected <= names
        with engine.connect() as conn:  # the migrations and the table definitions agree
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        engine.dispose()


def test_foreign_keys_and_checks_are_enforced(store_url: str) -> None:
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                insert(schema.variants).values(
                    variant_id="V1", family_id="NOPE", list_price=10.0, flagged=False
                )
            )
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(schema.families).values(family_id="F", name="F", base_price=-1))
    finally:
        engine.dispose()


def test_session_scope_rolls_back_everything_on_error(store_url: str) -> None:
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        with pytest.raises(RuntimeError), session_scope(engine) as session:
            session.execute(insert(schema.families).values(family_id="F", name="F", base_price=1))
            raise RuntimeError("boom")
        with session_scope(engine) as session:
            session.execute(insert(schema.families).values(family_id="G", name="G", base_price=2))
        with engine.connect() as conn:
            assert conn.execute(select(schema.families.c.family_id)).scalars().all() == ["G"]
    finally:
        engine.dispose()


def test_dates_and_json_round_trip(store_url: str) -> None:
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        from datetime import UTC, datetime

        with engine.begin() as conn:
            conn.execute(
                insert(schema.model_versions).values(
                    name="demand",
                    version=1,
                    path="/m/demand/1",
                    metrics={"wape": 0.31},
                    data_start=date(2025, 1, 6),
                    data_end=date(2026, 1, 5),
                    status="served",
                    created_at=datetime(2026, 11, 27, 12, tzinfo=UTC),
                )
            )
        with engine.connect() as conn:
            row = conn.execute(select(schema.model_versions)).one()
        assert row.metrics == {"wape": 0.31}
        assert row.data_start == date(2025, 1, 6)
        with pytest.raises(IntegrityError), engine.begin() as conn:  # status is checked
            conn.execute(
                insert(schema.model_versions).values(
                    name="demand",
                    version=2,
                    path="p",
                    status="bogus",
                    created_at=datetime(2026, 11, 27, tzinfo=UTC),
                )
            )
    finally:
        engine.dispose()


def test_sqlite_engine_uses_wal_foreign_keys_and_busy_timeout(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")  # the folder is created
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        engine.dispose()


def test_plain_postgresql_urls_mean_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_default_store_is_a_sqlite_file_under_home(tmp_path, monkeypatch) -> None:
    from services.common.settings import CoreSettings

    monkeypatch.setenv("TAILORLINE_HOME", str(tmp_path / "home"))
    url = CoreSettings().resolved_db_url
    migrate(url)
    assert (tmp_path / "home" / "tailorline.db").exists()
