"""The retrain trigger: window metrics per family, the rule, the cooldown, the record.

:func:`evaluate` looks at the ``window_weeks`` complete weeks before the as-of week. Per family
with at least ``min_actual_units`` actual units in the window (thinner ones are ignored):
unit-weighted WAPE = sum |a - P50| / sum a, bias = (sum mean - sum a) / sum a (the forecast
distributions' means: :mod:`services.monitoring.accuracy` says why not the P50), coverage, and the
input drift of :mod:`services.monitoring.drift`. It fires when any family's WAPE exceeds
``wape_threshold``, or its |bias| ``abs_bias_threshold``, or its drift ``drift_threshold``
(reason: the first of wape, bias, drift that is exceeded), unless

* the policy is disabled (``disabled``),
* a retrain job is pending or running (``job running``; a job created more than
  ``stale_job_hours`` ago by the wall clock counts as dead: a killed job leaves its row
  ``running``),
* the last trigger fired fewer than ``cooldown_weeks`` data weeks before the as-of week
  (``cooldown``; data weeks, so a simulator that runs a week a second and a gateway that sees one
  a week behave the same; triggers recorded for later data weeks are ignored).

Other outcomes: ``below threshold``, and ``no data`` (no judged family). A fired trigger is
stored in ``retrain_triggers`` in the same transaction that re-checks the cooldown and the jobs
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock), so two gateway
replicas evaluating at once fire at most once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, func, insert, select, text, update

from services.common.errors import InvalidArgument, NotFound
from services.monitoring.accuracy import as_of_week as _as_of_week
from services.monitoring.accuracy import segment_errors, variant_errors
from services.monitoring.drift import input_drift
from services.store import schema
from services.store.db import writer

REASONS = ("wape", "bias", "drift", "cooldown", "job running", "below threshold", "no data",
           "disabled")  # fmt: skip
ACTIVE_JOB_STATUSES = ("pending", "running")
_LOCK_KEY = 0x7461696C  # pg advisory lock id of the trigger record ("tail")


@dataclass(frozen=True)
class TriggerPolicy:
    """When a retrain is triggered. Defaults suit weekly made-to-order demand (docs/monitoring.md).

    Attributes:
        enabled: False: :func:`evaluate` still measures, never fires (reason ``disabled``).
        wape_threshold: fire when a family's window WAPE (variant level, unit-weighted) is above.
            Variant-week WAPE of even a perfect model is 0.5-0.9 on small weekly counts (the
            noise floor), so the default (1.0: the error is as large as the demand) only catches
            forecasts that stopped making sense; bias is the sensitive signal.
        abs_bias_threshold: fire when |bias| over the window is above, for a family or for one
            of its segments (0.4: the forecasts' means 40% too high or too low in total).
        drift_threshold: fire when a family's input drift (max of |trend shift| and attribute-mix
            total variation distance) is above. ``math.inf`` switches drift triggers off.
        window_weeks: complete weeks before the as-of week that the metrics cover.
        min_weeks: a family's errors are judged only when at least this many of those weeks
            have served forecasts (a first week or two look biased by chance).
        min_actual_units: families with fewer actual units in the window are not judged.
        cooldown_weeks: no new trigger within this many data weeks after the last fired one.
        reference_weeks: length of the training window drift compares against (the last weeks
            up to the served model's ``data_end``).
        stale_job_hours: a pending/running retrain job older than this (wall clock) no longer
            blocks triggers (a killed job never updates its row).
        model_name: the model whose forecasts are judged (``forecasts_served.model_name``).
        segment_attributes: variant attributes whose values split a family into segments for
            the bias check (a family x fabric cell with ``min_actual_units`` is judged like a
            family); ``()``: families only.
    """

    enabled: bool = True
    wape_threshold: float = 1.0
    abs_bias_threshold: float = 0.4
    drift_threshold: float = 0.3
    window_weeks: int = 4
    min_weeks: int = 4
    min_actual_units: float = 150.0
    cooldown_weeks: int = 4
    reference_weeks: int = 52
    stale_job_hours: float = 6.0
    model_name: str = "demand"
    segment_attributes: tuple[str, ...] = ("fabric",)

    def __post_init__(self) -> None:
        for name in ("wape_threshold", "abs_bias_threshold", "drift_threshold"):
            value = getattr(self, name)
            if not value > 0:
                raise InvalidArgument(f"must be > 0, got {value}", field=name)
        for name in ("window_weeks", "reference_weeks"):
            if getattr(self, name) < 1:
                raise InvalidArgument(f"must be >= 1, got {getattr(self, name)}", field=name)
        if not 1 <= self.min_weeks <= self.window_weeks:
            raise InvalidArgument(
                f"must lie in [1, window_weeks={self.window_weeks}], got {self.min_weeks}",
                field="min_weeks",
            )
        for name in ("cooldown_weeks", "min_actual_units", "stale_job_hours"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"must be >= 0, got {getattr(self, name)}", field=name)


@dataclass(frozen=True)
class FamilyHealth:
    """One family's window metrics (None where not measurable)."""

    family_id: str
    weeks: int  # complete weeks with forecasts in the window
    actual: float  # units
    forecast: float  # sum of P50, units
    wape: float | None
    bias: float | None  # (mean - actual) / actual
    coverage: float | None  # share of variant-weeks with the actual in [P10, P90]
    mean: float = 0.0  # sum of the forecasts' means (their P50 where none was stored), units
    segment: str | None = None  # the family's judged segment with the largest |bias|
    segment_actual: float | None = None
    segment_bias: float | None = None
    trend_shift: float | None = None
    mix_shift: float | None = None
    mix_change: str | None = None  # e.g. "fabric=linen 0.20->0.41"
    drift: float | None = None
    severity: float = 0.0  # largest metric / its threshold (how near to firing, 1 = at it)


@dataclass(frozen=True)
class TriggerDecision:
    """What :func:`evaluate` decided. ``metrics()`` is what ``retrain_triggers.metrics`` holds."""

    fire: bool
    reason: str
    as_of_week: date | None
    wape: float | None = None  # the worst judged family's window WAPE
    bias: float | None = None  # the signed bias of the family with the largest |bias|
    drift: float | None = None  # the largest family drift
    segment: str | None = None  # the judged segment with the largest |bias|, e.g. "A fabric=linen"
    segment_bias: float | None = None  # its signed bias
    families: tuple[FamilyHealth, ...] = ()  # judged families, most severe first
    trigger_id: int | None = None  # the retrain_triggers row when fired
    detail: str = ""  # one human sentence
    policy: TriggerPolicy = field(default_factory=TriggerPolicy)

    def worst(self, n: int = 3) -> tuple[FamilyHealth, ...]:
        return self.families[:n]

    def metrics(self, top: int = 5) -> dict[str, Any]:
        return {
            "as_of_week": self.as_of_week.isoformat() if self.as_of_week else None,
            "reason": self.reason,
            "wape": self.wape,
            "bias": self.bias,
            "drift": self.drift,
            "segment": self.segment,
            "segment_bias": self.segment_bias,
            "detail": self.detail,
            "policy": _json_dict(asdict(self.policy)),
            "worst_families": [_json_dict(asdict(f)) for f in self.worst(top)],
        }


@dataclass(frozen=True)
class TriggerRecord:
    """A row of ``retrain_triggers``."""

    id: int
    model_name: str
    fired_at: datetime
    as_of_week: date
    reason: str
    metrics: dict[str, Any]
    job_id: str | None


def _json(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _json_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _json(v) for k, v in d.items()}


def _num(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def _error_tables(
    engine: Engine, rows: pd.DataFrame, policy: TriggerPolicy
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per family: window sums; per family: its judged segment with the largest |bias|."""
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    covered = (rows["actual"] >= rows["p10"]) & (rows["actual"] <= rows["p90"])
    work = rows.assign(abs_error=(rows["actual"] - rows["p50"]).abs(), covered=covered)
    err = work.groupby("family_id").agg(
        weeks=("week", "nunique"),
        actual=("actual", "sum"),
        forecast=("p50", "sum"),
        mean=("mean", "sum"),
        abs_error=("abs_error", "sum"),
        coverage=("covered", "mean"),
    )
    cells = segment_errors(engine, rows, policy.segment_attributes)
    cells = cells[cells["actual"] >= max(policy.min_actual_units, 1e-9)]
    cells = cells.assign(size=cells["bias"].abs()).sort_values(
        ["size", "attribute", "value"], ascending=[False, True, True]
    )
    return err, cells.groupby("family_id").head(1).set_index("family_id")


def family_health(engine: Engine, policy: TriggerPolicy, as_of_week: date) -> list[FamilyHealth]:
    """Window metrics of every judged family (``>= min_actual_units``), most severe first."""
    first = (pd.Timestamp(as_of_week) - policy.window_weeks * pd.Timedelta(days=7)).date()
    rows = variant_errors(engine, model_name=policy.model_name, since=first, as_of=as_of_week)
    drift = input_drift(
        engine,
        as_of_week,
        model_name=policy.model_name,
        window_weeks=policy.window_weeks,
        reference_weeks=policy.reference_weeks,
    ).set_index("family_id")
    err, segments = _error_tables(engine, rows, policy)
    out: list[FamilyHealth] = []
    for family in sorted(set(err.index) | set(drift.index)):
        e = err.loc[family] if family in err.index else None
        d = drift.loc[family] if family in drift.index else None
        weeks = int(e["weeks"]) if e is not None else 0
        if weeks < policy.min_weeks:  # too few weeks to judge its errors: drift only
            e = None
        actual = float(e["actual"]) if e is not None else 0.0
        units = actual if e is not None else float(d["recent_units"]) if d is not None else 0.0
        if units < policy.min_actual_units or units <= 0:
            continue
        wape = bias = coverage = None
        if e is not None and actual > 0:
            wape = float(e["abs_error"]) / actual
            bias = (float(e["mean"]) - actual) / actual
            coverage = float(e["coverage"])
        change = None
        if (
            d is not None
            and isinstance(d["mix_attribute"], str)
            and (_num(d["mix_shift"]) or 0) >= 0.01
        ):
            change = (f"{d['mix_attribute']}={d['mix_value']} "
                      f"{d['share_reference']:.2f}->{d['share_recent']:.2f}")  # fmt: skip
        drift_value = _num(d["drift"]) if d is not None else None
        seg = segments.loc[family] if e is not None and family in segments.index else None
        seg_bias = _num(seg["bias"]) if seg is not None else None
        ratios = [
            (wape or 0.0) / policy.wape_threshold,
            max(abs(bias or 0.0), abs(seg_bias or 0.0)) / policy.abs_bias_threshold,
            (drift_value or 0.0) / policy.drift_threshold,
        ]
        out.append(
            FamilyHealth(
                family_id=str(family),
                weeks=weeks,
                actual=actual,
                forecast=float(e["forecast"]) if e is not None else 0.0,
                mean=float(e["mean"]) if e is not None else 0.0,
                wape=wape,
                bias=bias,
                coverage=coverage,
                segment=f"{seg['attribute']}={seg['value']}" if seg is not None else None,
                segment_actual=float(seg["actual"]) if seg is not None else None,
                segment_bias=seg_bias,
                trend_shift=_num(d["trend_shift"]) if d is not None else None,
                mix_shift=_num(d["mix_shift"]) if d is not None else None,
                mix_change=change,
                drift=drift_value,
                severity=max(ratios),
            )
        )
    out.sort(key=lambda f: (-f.severity, f.family_id))
    return out


def _active_job(conn: Connection, policy: TriggerPolicy) -> str | None:
    j = schema.retrain_jobs
    since = datetime.now(UTC) - timedelta(hours=policy.stale_job_hours)
    stmt = (
        select(j.c.job_id)
        .where(j.c.status.in_(ACTIVE_JOB_STATUSES), j.c.created_at >= since)
        .order_by(j.c.created_at.desc())
        .limit(1)
    )
    return conn.execute(stmt).scalar()


def _last_trigger_week(conn: Connection, policy: TriggerPolicy, as_of_week: date) -> date | None:
    t = schema.retrain_triggers
    stmt = select(func.max(t.c.as_of_week)).where(
        t.c.model_name == policy.model_name, t.c.as_of_week <= as_of_week
    )
    return conn.execute(stmt).scalar()


def _rules(policy: TriggerPolicy) -> list[tuple[str, Callable[[FamilyHealth], float], float]]:
    """(reason, a family's figure, its limit), in the order the reasons are tried."""
    return [
        ("wape", lambda f: f.wape or 0.0, policy.wape_threshold),
        (
            "bias",
            lambda f: max(abs(f.bias or 0.0), abs(f.segment_bias or 0.0)),
            policy.abs_bias_threshold,
        ),
        ("drift", lambda f: f.drift or 0.0, policy.drift_threshold),
    ]


def _exceeded(policy: TriggerPolicy, families: list[FamilyHealth]) -> str | None:
    for reason, key, limit in _rules(policy):
        if any(key(f) > limit for f in families):
            return reason
    return None


def _detail(reason: str, families: list[FamilyHealth], policy: TriggerPolicy) -> str:
    """One line on the most severe family; when a rule fired, the most severe family that
    crossed that rule's limit (the most severe one overall may be near another limit only)."""
    if not families:
        return "no family with enough complete weeks of forecasts and actuals"
    f = families[0]
    rule = {name: (key, limit) for name, key, limit in _rules(policy)}.get(reason)
    if rule is not None:
        key, limit = rule
        f = next((g for g in families if key(g) > limit), f)
    parts = [f"worst family {f.family_id}:"]
    if f.wape is not None and f.bias is not None:
        parts.append(f"WAPE {f.wape:.2f} (limit {policy.wape_threshold:.2f}),")
        parts.append(f"bias {f.bias:+.2f} (limit +-{policy.abs_bias_threshold:.2f}),")
    if f.segment is not None and f.segment_bias is not None:
        parts.append(f"{f.segment} bias {f.segment_bias:+.2f} ({f.segment_actual:.0f} units),")
    if f.drift is not None:
        parts.append(f"drift {f.drift:.2f} (limit {policy.drift_threshold:.2f})")
    if f.mix_change:
        parts.append(f"[{f.mix_change}]")
    return f"{reason}: " + " ".join(parts).rstrip(",")


def evaluate(
    engine: Engine, policy: TriggerPolicy, *, as_of: date | datetime | str | None = None
) -> TriggerDecision:
    """Measure the last ``policy.window_weeks`` complete weeks and decide whether to retrain.

    ``as_of``: the current data week (any day of it); weeks before it are complete. Default: the
    latest order week in the store. When it fires, a ``retrain_triggers`` row is written and its
    id is in ``trigger_id``; start the retrain job, then :func:`attach_job`.
    """
    week = _as_of_week(engine, as_of)
    if week is None:
        return TriggerDecision(False, "no data", None, detail="no orders in the store",
                               policy=policy)  # fmt: skip
    families = family_health(engine, policy, week)
    by_bias = [f for f in families if f.bias is not None]
    by_segment = [f for f in families if f.segment_bias is not None]
    top_segment = max(by_segment, key=lambda f: abs(f.segment_bias or 0.0), default=None)
    base = TriggerDecision(
        fire=False,
        reason="no data",
        as_of_week=week,
        wape=max((f.wape for f in families if f.wape is not None), default=None),
        bias=max(by_bias, key=lambda f: abs(f.bias or 0.0)).bias if by_bias else None,
        drift=max((f.drift for f in families if f.drift is not None), default=None),
        segment=f"{top_segment.family_id} {top_segment.segment}" if top_segment else None,
        segment_bias=top_segment.segment_bias if top_segment else None,
        families=tuple(families),
        detail=_detail("no data", [], policy),
        policy=policy,
    )
    if not families:
        return base
    exceeded = _exceeded(policy, families)
    if not policy.enabled or exceeded is None:
        reason = "disabled" if not policy.enabled else "below threshold"
        return replace(base, reason=reason, detail=_detail(reason, families, policy))
    fired = replace(base, fire=True, reason=exceeded, detail=_detail(exceeded, families, policy))
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        job = _active_job(conn, policy)
        if job is not None:
            held = f"job {job} is pending or running; {fired.detail}"
            return replace(base, reason="job running", detail=held)
        last = _last_trigger_week(conn, policy, week)
        if last is not None and (week - last).days < 7 * policy.cooldown_weeks:
            held = (f"last trigger {(week - last).days // 7} week(s) before (as of {last}), "
                    f"cooldown {policy.cooldown_weeks} weeks; {fired.detail}")  # fmt: skip
            return replace(base, reason="cooldown", detail=held)
        trigger_id = conn.execute(
            insert(schema.retrain_triggers)
            .values(
                model_name=policy.model_name,
                fired_at=datetime.now(UTC),
                as_of_week=week,
                reason=exceeded,
                metrics=fired.metrics(),
                job_id=None,
            )
            .returning(schema.retrain_triggers.c.id)
        ).scalar_one()
    return replace(fired, trigger_id=int(trigger_id))


def attach_job(engine: Engine, trigger_id: int, job_id: str) -> None:
    """Link the retrain job started for a fired trigger (raises NotFound for an unknown id)."""
    t = schema.retrain_triggers
    with writer(engine).begin() as conn:
        done = conn.execute(update(t).where(t.c.id == trigger_id).values(job_id=job_id))
        if done.rowcount == 0:
            raise NotFound(f"no retrain trigger {trigger_id}", field="trigger_id")


def list_triggers(
    engine: Engine, *, model_name: str | None = "demand", limit: int | None = None
) -> list[TriggerRecord]:
    """Fired triggers, oldest data week first (``model_name=None``: every model)."""
    t = schema.retrain_triggers
    stmt = select(t).order_by(t.c.as_of_week, t.c.id)
    if model_name is not None:
        stmt = stmt.where(t.c.model_name == model_name)
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        TriggerRecord(
            id=int(r.id),
            model_name=r.model_name,
            fired_at=r.fired_at if r.fired_at.tzinfo else r.fired_at.replace(tzinfo=UTC),
            as_of_week=r.as_of_week,
            reason=r.reason,
            metrics=dict(r.metrics or {}),
            job_id=r.job_id,
        )
        for r in rows
    ]
