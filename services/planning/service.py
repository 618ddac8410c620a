"""The gateway's planning logic: store -> predictions -> problem -> optimizer -> store.

Plain Python (no gRPC server types): the servicers translate protos to the specs here and back.
``predict``/``inputs``/``solve`` are injected (the V2 and optimizer clients in the gateway, fakes or
in-process models elsewhere), each taking the request's absolute deadline (``time.monotonic()``).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select

from services.common.errors import InvalidArgument, NotFound

Arrays = dict[str, np.ndarray]
PredictFactory = Callable[[float | None], Callable[[str, Arrays], tuple[Arrays, int]]]
InputsFn = Callable[[str, float | None], list[tuple[str, str]]]
SolveFn = Callable[[Any, Any, float | None], Any]
WEEK = pd.Timedelta(days=7)


@dataclass(frozen=True)
class NewVariantSpec:
    """A configuration not in the store."""

    variant_id: str
    family_id: str
    list_price: float
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PlanSpec:
    """What CreatePlan asks for (None = the default)."""

    start_week: str = ""
    horizon: int = 12
    service_level: float = 0.9
    variant_ids: tuple[str, ...] = ()
    new_variants: tuple[NewVariantSpec, ...] = ()
    holding_rate: float = 0.01
    backlog_rate: float = 0.02
    lost_sale_rate: float = 0.05
    allow_backlog: bool = True
    name: str = ""
    time_limit_s: float | None = None
    mip_rel_gap: float | None = None
    initial_inventory: tuple[tuple[str, float], ...] = ()  # (variant_id, units on hand)


@dataclass(frozen=True)
class PlanOutcome:
    plan_id: str
    name: str
    created_at: str
    periods: tuple[str, ...]
    plan: Any  # optimizer.Plan
    demand_version: int
    cost_version: int
    service_level: float


@dataclass(frozen=True)
class Prepared:
    """A built problem and what it was built from (for a plan or a batch of scenarios)."""

    spec: PlanSpec
    problem: Any  # optimizer.PlanningProblem
    demand_version: int
    cost_version: int
    options: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    forecast: pd.DataFrame | None = None


def parse_week(value: str, field_name: str) -> pd.Timestamp:
    """Monday of the week of an ISO date string."""
    try:
        day = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InvalidArgument(f"not an ISO date: {value!r}", field=field_name) from None
    if day is pd.NaT or pd.isna(day) or not 1900 <= day.year <= 2200:
        raise InvalidArgument(f"not a usable date: {value!r}", field=field_name)
    day = day.normalize()
    return day - pd.Timedelta(days=day.weekday())


def _finite(value: float, field_name: str, *, low: float = 0.0, strict: bool = False) -> float:
    if not math.isfinite(value) or value < low or (strict and value == low):
        op = ">" if strict else ">="
        raise InvalidArgument(
            f"must be a finite number {op} {low:g}, got {value}", field=field_name
        )
    return float(value)


class Planner:
    """Forecasts, cost estimates and plans against one store and two downstreams."""

    def __init__(
        self,
        engine: Engine,
        *,
        predict: PredictFactory,
        inputs: InputsFn,
        solve: SolveFn,
        max_variants: int = 5000,
        max_periods: int = 104,
    ) -> None:
        self.engine = engine
        self._predict = predict
        self._inputs = inputs
        self._solve = solve
        self.max_variants = max_variants
        self.max_periods = max_periods
        self._lock = threading.Lock()
        self._frames: tuple[tuple[Any, ...], dict[str, pd.DataFrame]] | None = None

    # ------------------------------------------------------------------ helpers
    def frames(self) -> dict[str, pd.DataFrame]:
        """The store's tables, re-read only when an import (a folder or streamed events) has
        committed since the last read: every import writes an ``ingest_runs`` row in its own
        transaction. Callers treat the frames as read-only (the feature code copies them)."""
        from sqlalchemy import func

        from services.store import schema
        from services.store.frames import load_frames

        runs = schema.ingest_runs
        with self.engine.connect() as conn:
            key = tuple(conn.execute(select(func.count(), func.max(runs.c.finished_at))).one())
        with self._lock:
            if self._frames is not None and self._frames[0] == key:
                return dict(self._frames[1])
        frames = load_frames(self.engine)
        with self._lock:
            self._frames = (key, frames)
        return dict(frames)

    @staticmethod
    def last_order_week(frames: Mapping[str, pd.DataFrame]) -> pd.Timestamp:
        orders = frames["orders"]
        if orders is None or orders.empty:
            raise InvalidArgument("the store holds no orders yet", field="origin_week")
        last = pd.to_datetime(orders["order_date"]).max().normalize()
        return last - pd.Timedelta(days=last.weekday())

    def _check_horizon(self, horizon: int, field_name: str = "horizon") -> int:
        if not 1 <= horizon <= min(52, self.max_periods):
            raise InvalidArgument(
                f"must be between 1 and {min(52, self.max_periods)} weeks, got {horizon}",
                field=field_name,
            )
        return horizon

    def _check_count(self, n: int, field_name: str) -> None:
        if n > self.max_variants:
            raise InvalidArgument(
                f"{n} variants; at most {self.max_variants} per request", field=field_name
            )

    def resolve(
        self, frames: Mapping[str, pd.DataFrame], refs: Sequence[str | NewVariantSpec], where: str
    ) -> list[Any]:
        """Stored ids (upper-cased, must exist) and new configurations as feature dicts."""
        self._check_count(len(refs), where)
        variants = frames["variants"]
        known = set(variants["variant_id"].astype(str))
        families = set(variants["family_id"].astype(str))
        attrs = {c[5:] for c in variants.columns if str(c).startswith("attr_")}
        out: list[Any] = []
        seen: set[str] = set()
        for i, ref in enumerate(refs):
            at = f"{where}[{i}]"
            if isinstance(ref, str):
                vid = ref.strip().upper()
                if vid not in known:
                    raise InvalidArgument(f"unknown variant {ref!r}", field=at)
                if vid in seen:
                    raise InvalidArgument(f"variant {vid!r} given twice", field=at)
                seen.add(vid)
                out.append(vid)
                continue
            vid = (ref.variant_id.strip() or f"NEW-{i + 1}").upper()
            if vid in known or vid in seen:
                raise InvalidArgument(f"id {vid!r} is already taken", field=f"{at}.variant_id")
            family = ref.family_id.strip().upper()
            if family not in families:
                raise InvalidArgument(f"unknown family {ref.family_id!r}", field=f"{at}.family_id")
            price = _finite(ref.list_price, f"{at}.list_price", strict=True)
            config: dict[str, Any] = {"variant_id": vid, "family_id": family, "list_price": price}
            for name in sorted(attrs):
                config[f"attr_{name}"] = ""
            for name, value in ref.attributes:
                key = name.strip().lower()
                if key not in attrs:
                    raise InvalidArgument(
                        f"unknown attribute {name!r} (known: {sorted(attrs)})",
                        field=f"{at}.attributes",
                    )
                config[f"attr_{key}"] = str(value).strip().lower()
            seen.add(vid)
            out.append(config)
        return out

    # ------------------------------------------------------------------ predictions
    def forecast(
        self,
        refs: Sequence[str | NewVariantSpec],
        origin_week: str,
        horizon: int,
        deadline: float | None = None,
    ) -> tuple[pd.Timestamp, pd.DataFrame, int]:
        from services.planning.predictions import forecast_demand

        self._check_horizon(horizon)
        if not refs:
            raise InvalidArgument("give at least one variant", field="variants")
        frames = self.frames()
        variants = self.resolve(frames, refs, "variants")
        origin = (
            parse_week(origin_week, "origin_week") if origin_week else self.last_order_week(frames)
        )
        table, version = forecast_demand(
            frames,
            origin,
            variants,
            horizon,
            self._predict(deadline),
            self._inputs("demand", deadline),
        )
        return origin, table, version

    def estimate_costs(
        self, refs: Sequence[str | NewVariantSpec], deadline: float | None = None
    ) -> tuple[pd.DataFrame, int]:
        from services.planning.predictions import estimate_costs

        if not refs:
            raise InvalidArgument("give at least one variant", field="variants")
        frames = self.frames()
        variants = self.resolve(frames, refs, "variants")
        return estimate_costs(
            frames, variants, self._predict(deadline), self._inputs("cost", deadline)
        )

    # ------------------------------------------------------------------ plans
    def prepare(self, spec: PlanSpec, deadline: float | None = None) -> Prepared:
        """Forecast and cost every planned variant, and build the problem."""
        import time

        from optimizer import SolveOptions
        from services.planning import PlanRequest, build_problem, default_variants
        from services.planning.predictions import estimate_costs, forecast_demand

        self._check_horizon(spec.horizon)
        if not 0.0 < spec.service_level < 1.0 or not math.isfinite(spec.service_level):
            raise InvalidArgument(
                f"must lie strictly between 0 and 1, got {spec.service_level}",
                field="service_level",
            )
        for name in ("holding_rate", "backlog_rate", "lost_sale_rate"):
            _finite(getattr(spec, name), name)
        options = None
        if spec.time_limit_s is not None or spec.mip_rel_gap is not None:
            kwargs: dict[str, Any] = {}
            if spec.time_limit_s is not None:
                kwargs["time_limit_s"] = _finite(spec.time_limit_s, "time_limit_s", strict=True)
            if spec.mip_rel_gap is not None:
                gap = _finite(spec.mip_rel_gap, "mip_rel_gap")
                if gap >= 1:
                    raise InvalidArgument("must lie in [0, 1)", field="mip_rel_gap")
                kwargs["mip_rel_gap"] = gap
            options = SolveOptions(**kwargs)
        self._check_count(len(spec.variant_ids) + len(spec.new_variants), "variant_ids")

        t0 = time.perf_counter()
        frames = self.frames()
        start = (
            parse_week(spec.start_week, "start_week")
            if spec.start_week
            else self.last_order_week(frames) + WEEK
        )
        origin = start - WEEK
        stored = (
            self.resolve(frames, list(spec.variant_ids), "variant_ids")
            if spec.variant_ids
            else default_variants(frames, start)
        )
        self._check_count(len(stored) + len(spec.new_variants), "variant_ids")
        new = self.resolve(frames, list(spec.new_variants), "new_variants")
        on_hand = _initial_inventory(spec.initial_inventory, [*stored, *new])
        taken = set(stored) & {v["variant_id"] for v in new}
        if taken:
            raise InvalidArgument(f"id {sorted(taken)[0]!r} is already taken", field="new_variants")
        everything = [*stored, *new]
        if not everything:
            raise InvalidArgument(
                "no variant is launched by the first planned week", field="start_week"
            )
        t1 = time.perf_counter()
        predict = self._predict(deadline)
        forecast, demand_version = forecast_demand(
            frames, origin, everything, spec.horizon, predict, self._inputs("demand", deadline)
        )
        t2 = time.perf_counter()
        costs, cost_version = estimate_costs(
            frames, everything, predict, self._inputs("cost", deadline)
        )
        t3 = time.perf_counter()
        request = PlanRequest(
            start_week=start,
            horizon=spec.horizon,
            service_level=spec.service_level,
            variant_ids=tuple(stored),
            holding_rate=spec.holding_rate,
            backlog_rate=spec.backlog_rate,
            lost_sale_rate=spec.lost_sale_rate,
            allow_backlog=spec.allow_backlog,
            name=spec.name,
            initial_inventory=on_hand,
        )
        problem = build_problem(frames, forecast, costs, request, new_variants=new)
        t4 = time.perf_counter()
        timings = {
            "load_s": t1 - t0,
            "forecast_s": t2 - t1,
            "cost_s": t3 - t2,
            "build_s": t4 - t3,
        }
        return Prepared(spec, problem, demand_version, cost_version, options, timings, forecast)

    def solve_and_store(
        self,
        prepared: Prepared,
        problem: Any = None,
        deadline: float | None = None,
        *,
        service_level: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> PlanOutcome:
        """Solve ``problem`` (default: the prepared one) and store the plan."""
        problem = problem if problem is not None else prepared.problem
        plan = self._solve(problem, prepared.options, deadline)
        return self.store(prepared, problem, plan, service_level=service_level, extra=extra)

    def create_plan(self, spec: PlanSpec, deadline: float | None = None) -> PlanOutcome:
        prepared = self.prepare(spec, deadline)
        outcome = self.solve_and_store(prepared, deadline=deadline)
        if prepared.forecast is not None:
            self.record_forecast(prepared.forecast, prepared.demand_version)
        return outcome

    def record_forecast(self, table: pd.DataFrame, version: int) -> int:
        """Store the quantiles served (``forecasts_served``), so actuals can be compared later."""
        from services.store import schema
        from services.store.db import writer

        served = datetime.now(UTC)
        weeks = pd.to_datetime(table["target_week"]).dt.normalize()
        weeks = weeks - pd.to_timedelta(weeks.dt.weekday, unit="D")
        rows = [
            {
                "variant_id": str(v),
                "week": w.date(),
                "model_name": "demand",
                "model_version": int(version),
                "p10": float(a),
                "p50": float(b),
                "p90": float(c),
                "served_at": served,
            }
            for v, w, a, b, c in zip(
                table["variant_id"], weeks, table["p10"], table["p50"], table["p90"], strict=True
            )
        ]
        if rows:
            with writer(self.engine).begin() as conn:
                conn.execute(insert(schema.forecasts_served), rows)
        return len(rows)

    def store(
        self,
        prepared: Prepared,
        problem: Any,
        plan: Any,
        *,
        service_level: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> PlanOutcome:
        from services.store import schema
        from services.store.db import writer

        plan_id = uuid.uuid4().hex
        created = datetime.now(UTC)
        periods = tuple(problem.periods)
        level = prepared.spec.service_level if service_level is None else service_level
        outcome = PlanOutcome(
            plan_id=plan_id,
            name=prepared.spec.name,
            created_at=created.isoformat(),
            periods=periods,
            plan=plan,
            demand_version=prepared.demand_version,
            cost_version=prepared.cost_version,
            service_level=level,
        )
        request = asdict(prepared.spec)
        request.update(extra or {})
        summary = {
            "plan": plan.to_dict(),
            "periods": list(periods),
            "model_versions": {"demand": outcome.demand_version, "cost": outcome.cost_version},
            "service_level": level,
            "name": outcome.name,
        }
        week = {p: datetime.fromisoformat(p).date() for p in periods}
        rows = [
            {
                "plan_id": plan_id,
                "variant_id": ln.variant,
                "line_id": ln.line,
                "week": week[periods[ln.period]],
                "quantity": float(ln.quantity),
                "setup": bool(ln.setup),
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
        with writer(self.engine).begin() as conn:
            conn.execute(
                insert(schema.plans).values(
                    plan_id=plan_id,
                    created_at=created,
                    status=str(plan.status),
                    horizon_start=week[periods[0]] if periods else None,
                    periods=len(periods),
                    objective=plan.objective,
                    request=_jsonable(request),
                    summary=_jsonable(summary),
                )
            )
            if rows:
                for r in rows:
                    r.setdefault("inventory", None)
                    r.setdefault("backlog", None)
                    r.setdefault("demand", None)
                conn.execute(insert(schema.plan_lines), rows)
        return outcome

    def get_plan(self, plan_id: str) -> PlanOutcome:
        from optimizer.core.problem import Plan
        from services.store import schema

        if not plan_id or len(plan_id) > 64:
            raise InvalidArgument("give the id CreatePlan returned", field="plan_id")
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.plans).where(schema.plans.c.plan_id == plan_id)
            ).first()
        if row is None:
            raise NotFound(f"no plan {plan_id!r}", field="plan_id")
        summary = row.summary or {}
        versions = summary.get("model_versions", {})
        created = row.created_at
        return PlanOutcome(
            plan_id=row.plan_id,
            name=str(summary.get("name", "")),
            created_at=created.replace(tzinfo=created.tzinfo or UTC).isoformat(),
            periods=tuple(summary.get("periods", ())),
            plan=Plan.from_dict(summary["plan"]),
            demand_version=int(versions.get("demand", 0)),
            cost_version=int(versions.get("cost", 0)),
            service_level=float(summary.get("service_level", 0.0)),
        )


def _initial_inventory(
    given: Sequence[tuple[str, float]], planned: Sequence[str | Mapping[str, Any]]
) -> tuple[tuple[str, float], ...]:
    """Units on hand per planned variant (ids upper-cased like ``resolve``); a variant that is
    not planned or a negative/non-finite amount is an InvalidArgument."""
    ids = {v if isinstance(v, str) else str(v["variant_id"]) for v in planned}
    out: dict[str, float] = {}
    for vid, units in given:
        key = str(vid).strip().upper()
        where = f"initial_inventory[{vid}]"
        if key not in ids:
            raise InvalidArgument(f"variant {vid!r} is not planned", field=where)
        out[key] = _finite(float(units), where)
    return tuple(sorted(out.items()))


def _jsonable(value: Any) -> Any:
    """JSON-safe copy (NaN/inf become None, tuples lists)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value
