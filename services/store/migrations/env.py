"""Alembic environment of the store (used programmatically by ``services.store.db.migrate``).

A connection handed in through ``config.attributes["connection"]`` is used as is; otherwise one is
opened from the ``sqlalchemy.url`` option (``alembic -c services/store/migrations/alembic.ini``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from services.store.db import make_engine
from services.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
