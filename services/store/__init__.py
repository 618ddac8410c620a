"""The store: SQLAlchemy tables, Alembic migrations, engines and the frames contract.

Public surface::

    from services.store import make_engine, migrate, session_scope, writer, load_frames, schema
    from services.store import jobs, models    # repositories: retrain_jobs, model_versions
    from services.store import plans  # plans, plan lines and the forecasts they were made from
"""

from __future__ import annotations

from services.store import jobs, models, plans, schema
from services.store.db import (
    SchemaState,
    current_revision,
    make_engine,
    migrate,
    require_migrated,
    schema_state,
    session_scope,
    writer,
)
from services.store.frames import FRAME_COLUMNS, load_frames

__all__ = [
    "FRAME_COLUMNS",
    "SchemaState",
    "current_revision",
    "jobs",
    "load_frames",
    "make_engine",
    "migrate",
    "models",
    "plans",
    "require_migrated",
    "schema",
    "schema_state",
    "session_scope",
    "writer",
]
