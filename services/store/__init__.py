"""The store: SQLAlchemy tables, Alembic migrations, engines and the frames contract.

Public surface::

    from services.store import make_engine, migrate, session_scope, writer, load_frames, schema
    from services.store import jobs, models    # repositories: retrain_jobs, model_versions
"""

from __future__ import annotations

from services.store import jobs, models, schema
from services.store.db import current_revision, make_engine, migrate, session_scope, writer
from services.store.frames import FRAME_COLUMNS, load_frames

__all__ = [
    "FRAME_COLUMNS",
    "current_revision",
    "jobs",
    "load_frames",
    "make_engine",
    "migrate",
    "models",
    "schema",
    "session_scope",
    "writer",
]
