"""Model versions: the ``model_versions`` rows (the registry's record of each published version).

``status`` is ``candidate`` when a version is registered, ``served`` for the one version of a
model that is served, ``retired`` for those served before. Which version is served is decided by
:func:`services.registry.promote.promote` alone, through :func:`set_served`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update

from services.store import schema


def insert_version(
    engine: Engine,
    *,
    name: str,
    version: int,
    path: str,
    metrics: Any = None,
    data_start: dt.date | None = None,
    data_end: dt.date | None = None,
) -> None:
    """Record a published version as a ``candidate``."""
    with engine.begin() as conn:
        conn.execute(
            insert(schema.model_versions).values(
                name=name,
                version=version,
                path=path,
                metrics=metrics,
                data_start=data_start,
                data_end=data_end,
                status="candidate",
                created_at=dt.datetime.now(dt.UTC),
            )
        )


def set_served(conn: Connection, name: str, version: int) -> bool:
    """In the caller's transaction: the served version of ``name`` becomes ``retired`` and
    ``version`` becomes ``served``. False (and nothing changed) when ``version`` is not
    registered."""
    t = schema.model_versions
    # lock the model's rows first (PostgreSQL; SQLite serialises writers anyway): two promotions
    # at once must not each retire the other's "served" row before it exists and leave two
    conn.execute(select(t.c.id).where(t.c.name == name).with_for_update()).all()
    known = conn.execute(
        select(t.c.id).where((t.c.name == name) & (t.c.version == version))
    ).first()
    if known is None:
        return False
    conn.execute(
        update(t).where((t.c.name == name) & (t.c.status == "served")).values(status="retired")
    )
    conn.execute(
        update(t).where((t.c.name == name) & (t.c.version == version)).values(status="served")
    )
    return True


def list_versions(engine: Engine, name: str = "") -> list[Row[Any]]:
    """Every registered version (of ``name`` when given), by name and version."""
    t = schema.model_versions
    query = select(t).order_by(t.c.name, t.c.version)
    if name:
        query = query.where(t.c.name == name)
    with engine.connect() as conn:
        return list(conn.execute(query).all())
