"""Migration 0002 (retrain_triggers) upgrades and downgrades on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from services.store import current_revision, make_engine, migrate, schema
from services.store.db import MIGRATIONS_DIR


def _alembic(url: str, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade revision`` on the store at ``url``."""
    engine = make_engine(url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def _downgrade(url: str, revision: str) -> None:
    _alembic(url, "downgrade", revision)


def test_0002_adds_retrain_triggers_and_downgrades_cleanly(store_url: str) -> None:
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        assert current_revision(engine) == "0006"
        assert "retrain_triggers" in inspect(engine).get_table_names()
        with engine.connect() as conn:  # the migration and schema.py agree
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []

        _downgrade(store_url, "0001")
        assert current_revision(engine) == "0001"
        names = set(inspect(engine).get_table_names())
        assert "retrain_triggers" not in names and "forecasts_served" in names

        migrate(store_url)  # and up again
        assert current_revision(engine) == "0006"
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("retrain_triggers")}
        assert indexes == {"ix_retrain_triggers_model_week"}
    finally:
        engine.dispose()


def test_0006_adds_the_forecast_mean_and_keeps_the_forecasts_served_before_it(
    store_url: str,
) -> None:
    """A store at 0005 with a served forecast: after 0006 the row is there, its mean NULL (the
    accuracy figures judge it by its P50); a new row carries its mean; back to 0005, both rows
    stay and the column goes."""
    import datetime as dt

    from sqlalchemy import text

    _alembic(store_url, "upgrade", "0005")
    engine = make_engine(store_url)
    row = ("V1", dt.date(2026, 1, 5), "demand", 1, 1.0, 2.0, 4.0)
    insert_old = text(
        "INSERT INTO forecasts_served (variant_id, week, model_name, model_version, p10, p50, "
        "p90, served_at) VALUES (:v, :w, :n, :m, :a, :b, :c, :s)"
    )
    try:
        with engine.begin() as conn:
            conn.execute(insert_old, dict(zip("vwnmabc", row, strict=True), s=dt.datetime.now()))
        migrate(store_url)
        assert current_revision(engine) == "0006"
        t = schema.forecasts_served
        with engine.begin() as conn:  # a row served since, with its mean
            new = dict(zip("vwnmabc", ("V2", *row[1:]), strict=True), s=dt.datetime.now())
            conn.execute(
                text(
                    "INSERT INTO forecasts_served (variant_id, week, model_name, model_version, "
                    "p10, p50, p90, mean, served_at) VALUES (:v, :w, :n, :m, :a, :b, :c, 2.4, :s)"
                ),
                new,
            )
            got = conn.execute(t.select().order_by(t.c.variant_id)).all()
        assert [(r.variant_id, r.p50, r.mean) for r in got] == [("V1", 2.0, None), ("V2", 2.0, 2.4)]
        _downgrade(store_url, "0005")
        cols = {c["name"] for c in inspect(engine).get_columns("forecasts_served")}
        assert "mean" not in cols and "p50" in cols
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT variant_id FROM forecasts_served")).scalars().all()
        assert sorted(kept) == ["V1", "V2"]
    finally:
        engine.dispose()
