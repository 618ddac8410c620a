"""Plans and the forecasts they were made from: ``plans``, ``plan_lines`` and ``forecasts_served``.

A plan is written once, in one transaction: its ``plans`` row (status, objective, the request it
answers and a JSON summary holding the whole plan) and one ``plan_lines`` row per production line
(variant, line, week, quantity, setup) and per variant and week (sales, inventory, backlog,
demand; ``line_id`` NULL). ``forecasts_served`` keeps every demand quantile served for a plan, so
the actuals can be compared with them later (services.monitoring).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select

from services.store import schema
from services.store.db import writer


@dataclass(frozen=True)
class StoredPlan:
    """A ``plans`` row as written by :func:`save_plan`."""

    plan_id: str
    created_at: dt.datetime  # UTC
    status: str
    request: dict[str, Any]
    summary: dict[str, Any]


def save_plan(
    engine: Engine,
    *,
    plan_id: str,
    created_at: dt.datetime,
    plan: Any,
    periods: Sequence[str],
    request: Mapping[str, Any],
    summary: Mapping[str, Any],
) -> None:
    """Write ``plan`` (an ``optimizer.Plan``) over ``periods`` (ISO Mondays) with the request it
    answers and its summary (both stored as JSON: NaN/inf become null, tuples lists)."""
    week = {p: dt.date.fromisoformat(p) for p in periods}
    rows = [
        {
            "plan_id": plan_id,
            "variant_id": ln.variant,
            "line_id": ln.line,
            "week": week[periods[ln.period]],
            "quantity": float(ln.quantity),
            "setup": bool(ln.setup),
            "inventory": None,
            "backlog": None,
            "demand": None,
        }
        for ln in plan.lines
    ] + [
        {
            "plan_id": plan_id,
            "variant_id": vp.variant,
            "line_id": None,
            "week": week[periods[vp.period]],
            "quantity": float(vp.sales),
            "setup": False,
            "inventory": float(vp.inventory),
            "backlog": float(vp.backlog),
            "demand": float(vp.demand),
        }
        for vp in plan.variants
    ]
    with writer(engine).begin() as conn:
        conn.execute(
            insert(schema.plans).values(
                plan_id=plan_id,
                created_at=created_at,
                status=str(plan.status),
                horizon_start=week[periods[0]] if periods else None,
                periods=len(periods),
                objective=plan.objective,
                request=jsonable(request),
                summary=jsonable(summary),
            )
        )
        if rows:
            conn.execute(insert(schema.plan_lines), rows)


def load_plan(engine: Engine, plan_id: str) -> StoredPlan | None:
    """The ``plans`` row of ``plan_id``, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(schema.plans).where(schema.plans.c.plan_id == plan_id)).first()
    if row is None:
        return None
    created = row.created_at
    return StoredPlan(
        plan_id=row.plan_id,
        created_at=created.replace(tzinfo=created.tzinfo or dt.UTC),
        status=str(row.status),
        request=dict(row.request or {}),
        summary=dict(row.summary or {}),
    )


def record_forecasts(
    engine: Engine, table: pd.DataFrame, model_version: int, *, model_name: str = "demand"
) -> int:
    """Store the quantiles served (``table``: variant_id, target_week, p10, p50, p90 and, when
    it has one, ``mean``, the distribution's mean; weeks normalised to their Monday) with the
    model version that made them; the rows written."""
    served = dt.datetime.now(dt.UTC)
    weeks = pd.to_datetime(table["target_week"]).dt.normalize()
    weeks = weeks - pd.to_timedelta(weeks.dt.weekday, unit="D")
    means = table["mean"] if "mean" in table.columns else [None] * len(table)
    rows = [
        {
            "variant_id": str(v),
            "week": w.date(),
            "model_name": model_name,
            "model_version": int(model_version),
            "p10": float(a),
            "p50": float(b),
            "p90": float(c),
            "mean": None if mu is None or pd.isna(mu) else float(mu),
            "served_at": served,
        }
        for v, w, a, b, c, mu in zip(
            table["variant_id"], weeks, table["p10"], table["p50"], table["p90"], means, strict=True
        )
    ]
    if rows:
        with writer(engine).begin() as conn:
            conn.execute(insert(schema.forecasts_served), rows)
    return len(rows)


def jsonable(value: Any) -> Any:
    """JSON-safe copy (NaN/inf become None, tuples lists, numpy scalars Python ones,
    timestamps ISO strings)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, dt.date | pd.Timestamp):
        return value.isoformat()
    return value


__all__ = ["StoredPlan", "jsonable", "load_plan", "record_forecasts", "save_plan"]
