"""Retraining jobs: the ``retrain_jobs`` rows, their one life cycle and every read of them.

A row is created ``pending`` by a launcher (or ``running`` by a retrain started by hand), moved
to ``running`` once by the job that claims it, and ended once (``succeeded`` with its result, or
``failed`` with the error). An ended row stays as it ended.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update

from services.common.errors import FailedPrecondition, NotFound
from services.store import schema


def create_job(
    engine: Engine, config: dict[str, Any], launcher: str, *, status: str = "pending"
) -> str:
    """Insert a ``retrain_jobs`` row and return its id (a launcher's first step)."""
    job_id = uuid.uuid4().hex[:16]
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.retrain_jobs).values(
                job_id=job_id,
                status=status,
                launcher=launcher,
                created_at=now,
                started_at=now if status == "running" else None,
                config=config,
            )
        )
    return job_id


def start_job(engine: Engine, config: dict[str, Any], launcher: str = "cli") -> str:
    """A new job row, already ``running`` (a retrain started by hand, without a launcher)."""
    return create_job(engine, config, launcher, status="running")


def claim_job(engine: Engine, job_id: str) -> dict[str, Any]:
    """Move a ``pending`` job row to ``running``; return its config.

    Raises NotFound for an unknown id and FailedPrecondition for a job that is not pending (a
    job runs once: a retried RayJob must not redo a finished or running one).
    """
    t = schema.retrain_jobs
    with engine.begin() as conn:
        done = conn.execute(
            update(t)
            .where((t.c.job_id == job_id) & (t.c.status == "pending"))
            .values(status="running", started_at=dt.datetime.now(dt.UTC))
        )
        row = conn.execute(select(t.c.status, t.c.config).where(t.c.job_id == job_id)).first()
    if row is None:
        raise NotFound(f"no retraining job {job_id!r}", field="job_id")
    if done.rowcount != 1:
        raise FailedPrecondition(f"job {job_id} is {row.status}, not pending", field="job_id")
    return dict(row.config or {})


def finish_job(
    engine: Engine, job_id: str, *, result: Any = None, error: str | None = None
) -> None:
    """End a pending or running row: ``failed`` with ``error``, else ``succeeded`` with
    ``result``. A row that already ended is left as it is."""
    t = schema.retrain_jobs
    with engine.begin() as conn:
        conn.execute(
            update(t)
            .where((t.c.job_id == job_id) & t.c.status.in_(("pending", "running")))
            .values(
                status="failed" if error else "succeeded",
                finished_at=dt.datetime.now(dt.UTC),
                result=result,
                error=error,
            )
        )


def job_status(engine: Engine, job_id: str) -> str | None:
    """The row's status (pending, running, succeeded, failed), None for an unknown id."""
    t = schema.retrain_jobs
    with engine.connect() as conn:
        value = conn.execute(select(t.c.status).where(t.c.job_id == job_id)).scalar()
    return None if value is None else str(value)


def job_result(engine: Engine, job_id: str) -> dict[str, Any] | None:
    """The result a finished job stored (None while it runs, for a failure or an unknown id)."""
    t = schema.retrain_jobs
    with engine.connect() as conn:
        result = conn.execute(select(t.c.result).where(t.c.job_id == job_id)).scalar()
    return dict(result) if isinstance(result, dict) else None


def get_job(engine: Engine, job_id: str) -> Row[Any]:
    """The whole row; NotFound for an unknown id."""
    t = schema.retrain_jobs
    with engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.job_id == job_id)).first()
    if row is None:
        raise NotFound(f"no retraining job {job_id!r}", field="job_id")
    return row


def job_ids(engine: Engine) -> set[str]:
    """The ids of every job the store knows."""
    with engine.connect() as conn:
        return {str(r[0]) for r in conn.execute(select(schema.retrain_jobs.c.job_id))}
