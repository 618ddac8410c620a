"""The loop at a glance, read from the store: what the gateway exports as metrics and what
``tailorline status`` prints.

:func:`loop_snapshot` measures the served forecasts the way the retrain trigger does
(:func:`~services.monitoring.triggers.family_health` over the policy's window, judged families
only) and reads the retraining record (``retrain_jobs``, ``retrain_triggers``), the served model
versions and the newest plan. Plain data, no Prometheus: the gateway turns it into gauges
(``services.gateway.loop_metrics``), names in docs/metrics.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from services.monitoring.accuracy import as_of_week
from services.monitoring.triggers import FamilyHealth, TriggerPolicy, family_health
from services.store import schema

#: Outcomes of ``tailorline_retrains_total``.
RETRAIN_OUTCOMES = ("started", "promoted", "rejected", "failed")
#: The reasons a trigger fires for (``retrain_triggers.reason``).
FIRING_REASONS = ("wape", "bias", "drift")


@dataclass(frozen=True)
class LoopSnapshot:
    """The loop's state: forecast health per judged family, retrains, served versions, plans."""

    as_of_week: dt.date | None
    window_weeks: int
    thresholds: dict[str, float]
    families: tuple[FamilyHealth, ...] = ()
    retrains: dict[str, int] = field(default_factory=dict)  # RETRAIN_OUTCOMES -> count
    retrains_running: int = 0
    last_promotion: dt.datetime | None = None
    triggers: dict[str, int] = field(default_factory=dict)  # reason -> count
    served_versions: dict[str, int] = field(default_factory=dict)  # model -> version
    last_plan_at: dt.datetime | None = None


def _utc(value: Any) -> dt.datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def retrain_counts(engine: Engine) -> tuple[dict[str, int], int, dt.datetime | None]:
    """(``started``/``promoted``/``rejected``/``failed`` job counts, jobs pending or running,
    when the last promoting job finished)."""
    t = schema.retrain_jobs
    counts = dict.fromkeys(RETRAIN_OUTCOMES, 0)
    running = 0
    last: dt.datetime | None = None
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.status, t.c.result, t.c.finished_at)).all()
    for status, result, finished in rows:
        counts["started"] += 1
        if status == "failed":
            counts["failed"] += 1
        elif status == "succeeded":
            promoted = isinstance(result, dict) and bool(result.get("promoted"))
            counts["promoted" if promoted else "rejected"] += 1
            when = _utc(finished)
            if promoted and when is not None and (last is None or when > last):
                last = when
        else:
            running += 1
    return counts, running, last


def loop_snapshot(engine: Engine, policy: TriggerPolicy | None = None) -> LoopSnapshot:
    """Everything above, now (a few queries and one window of forecast errors)."""
    policy = policy or TriggerPolicy()
    week = as_of_week(engine, None)
    families = tuple(family_health(engine, policy, week)) if week is not None else ()
    retrains, running, last_promotion = retrain_counts(engine)
    with engine.connect() as conn:
        tr = schema.retrain_triggers
        fired = conn.execute(select(tr.c.reason, func.count()).group_by(tr.c.reason)).all()
        triggers = {str(reason): int(n) for reason, n in fired}
        mv = schema.model_versions
        served = {
            str(name): int(version)
            for name, version in conn.execute(
                select(mv.c.name, func.max(mv.c.version))
                .where(mv.c.status == "served")
                .group_by(mv.c.name)
            ).all()
        }
        last_plan = conn.execute(select(func.max(schema.plans.c.created_at))).scalar()
    return LoopSnapshot(
        as_of_week=week,
        window_weeks=policy.window_weeks,
        thresholds={
            "wape": policy.wape_threshold,
            "bias": policy.abs_bias_threshold,
            "drift": policy.drift_threshold,
        },
        families=families,
        retrains=retrains,
        retrains_running=running,
        last_promotion=last_promotion,
        triggers={reason: triggers.get(reason, 0) for reason in FIRING_REASONS} | triggers,
        served_versions=served,
        last_plan_at=_utc(last_plan),
    )
