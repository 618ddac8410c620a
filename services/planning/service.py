"""The Planner: store -> predictions -> problem -> optimizer -> store.

Plain Python (no gRPC server types): the servicers translate protos to a
:class:`~services.planning.request.PlanRequest` and back. ``predict``/``inputs``/``solve``/
``solve_batch`` are injected (the V2 and optimizer clients in the gateway, fakes or in-process
models elsewhere), each taking the request's absolute deadline (``time.monotonic()``). What is
read from and written to the store goes through :mod:`services.store.plans`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from optimizer import WEEK_CORRELATION, Plan, PlanningProblem, PreviousPlanLine, SolveOptions
from services.common.errors import Code, InvalidArgument, NotFound, code_of, shown
from services.features import clean_frames
from services.monitoring.correlation import Correlation, measure
from services.planning.builder import WEEK, build_problem, default_variants, previous_lines
from services.planning.inputs import require_cost_inputs
from services.planning.predictions import estimate_costs, forecast_demand
from services.planning.reads import StoreView, read_store_view
from services.planning.request import (
    NewVariant,
    PlanRequest,
    Scenario,
    check_horizon,
    check_id,
    check_initial_inventory,
    check_refs,
    check_scenarios,
    parse_week,
)
from services.store import plans as plan_store
from services.store import schema
from services.store.frames import load_frames

Arrays = dict[str, np.ndarray]
PredictFactory = Callable[[float | None], Callable[[str, Arrays], tuple[Arrays, int]]]
InputsFn = Callable[[str, float | None], list[tuple[str, str]]]
SolveFn = Callable[[PlanningProblem, SolveOptions | None, float | None], Plan]
#: ``(base problem, scenarios, options, deadline)`` -> one ``(scenario id, Plan or the error that
#: scenario ended with)`` per scenario, in order; a malformed scenario raises for the whole call.
SolveBatchFn = Callable[
    [PlanningProblem, Sequence[Scenario], SolveOptions | None, float | None],
    Sequence[tuple[str, Plan | Exception]],
]


@dataclass(frozen=True)
class PlanOutcome:
    plan_id: str
    name: str
    created_at: str
    periods: tuple[str, ...]
    plan: Plan
    demand_version: int
    cost_version: int
    service_level: float
    #: Expected-profit mode: the correlation between any two weeks of a variant in the scenarios,
    #: and the forecast paths it was measured on (0: the request's value or the default).
    week_correlation: float | None = None
    week_correlation_paths: int = 0


@dataclass(frozen=True)
class Prepared:
    """A built problem and what it was built from (for a plan or a batch of scenarios)."""

    request: PlanRequest
    problem: PlanningProblem
    demand_version: int
    cost_version: int
    options: SolveOptions | None = None
    timings: dict[str, float] = field(default_factory=dict)
    forecast: pd.DataFrame | None = None
    week_correlation: float | None = None
    week_correlation_paths: int = 0


#: Share of what is left of a call's deadline (after DEADLINE_MARGIN_S) that the solver's time
#: limit may take: the rest covers building and translating the model, the explanation (up to a
#: quarter of the limit), whole-unit rounding and the transfers, so a short deadline returns the
#: best plan found instead of DEADLINE_EXCEEDED.
DEADLINE_SOLVE_SHARE = 0.6
#: The same in expected-profit mode, whose solve takes up to 1.7x its time limit in all (the
#: scenario model's build and translation, the explanation and rounding over every scenario;
#: quantile mode's up to 1.3x: docs/benchmarks.md, "what a solve with time_limit_s takes in all"):
#: 0.45 x 1.7 leaves a quarter of the deadline for the forecast and the transfers.
DEADLINE_SOLVE_SHARE_EXPECTED_PROFIT = 0.45
DEADLINE_MARGIN_S = 1.0
#: The solver's time limit when neither the request nor the deadline bounds it (the optimizer
#: service's own default, optimizer/serving/serve_config.yaml, applies only without a deadline).
DEFAULT_TIME_LIMIT_S = 60.0


def solve_options(request: PlanRequest, deadline: float | None) -> SolveOptions | None:
    """The optimizer options of a plan request: its method, gap and time limit, the limit never
    more than :data:`DEADLINE_SOLVE_SHARE` (expected-profit mode:
    :data:`DEADLINE_SOLVE_SHARE_EXPECTED_PROFIT`) of what is left of the deadline."""
    kwargs: dict[str, Any] = {"method": request.solve_method}
    limit = request.time_limit_s
    if deadline is not None:
        left = deadline - time.monotonic() - DEADLINE_MARGIN_S
        share = (
            DEADLINE_SOLVE_SHARE_EXPECTED_PROFIT
            if request.demand_mode == "expected_profit"
            else DEADLINE_SOLVE_SHARE
        )
        cap = max(1.0, share * left)
        limit = min(limit if limit is not None else DEFAULT_TIME_LIMIT_S, cap)
    if limit is not None:
        kwargs["time_limit_s"] = float(limit)
    if request.mip_rel_gap is not None:
        kwargs["mip_rel_gap"] = float(request.mip_rel_gap)
    return SolveOptions(**kwargs)


def _panel(view: StoreView) -> Mapping[str, pd.DataFrame]:
    """The view's demand panel where the prediction code takes frames: its feature builder
    (``build_serving_frame``) takes a built panel as well, and then builds none. A store without
    variants has no panel: its frames, so the feature code names what is missing."""
    if view.panel is None:
        return view.frames
    return cast("Mapping[str, pd.DataFrame]", view.panel)


class Planner:
    """Forecasts, cost estimates and plans against one store and two downstreams."""

    def __init__(
        self,
        engine: Engine,
        *,
        predict: PredictFactory,
        inputs: InputsFn,
        solve: SolveFn,
        solve_batch: SolveBatchFn | None = None,
        max_variants: int = 5000,
        max_periods: int = 104,
    ) -> None:
        self.engine = engine
        self._predict = predict
        self._inputs = inputs
        self._solve = solve
        self._solve_batch = solve_batch
        self.max_variants = max_variants
        self.max_periods = max_periods
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._view: tuple[tuple[Any, ...], StoreView] | None = None
        self._rho_lock = threading.Lock()
        self._rho: tuple[tuple[Any, ...], Correlation] | None = None

    # ------------------------------------------------------------------ helpers
    def _import_key(self) -> tuple[Any, ...]:
        """Changes whenever an import (a folder or streamed events) commits: every import writes
        an ``ingest_runs`` row in its own transaction."""
        runs = schema.ingest_runs
        with self.engine.connect() as conn:
            return tuple(conn.execute(select(func.count(), func.max(runs.c.finished_at))).one())

    def week_correlation(self) -> Correlation:
        """The correlation between any two weeks of a variant that the store's feedback data shows:
        every demand forecast path served in the last 26 weeks against the units then ordered
        (:func:`services.monitoring.correlation.measure`; ``rho`` None while fewer than 50 paths
        from 4 forecast origins have two complete weeks). Actuals arrive by imports, so it is
        re-read only when one has committed since the last read."""
        key = self._import_key()
        with self._rho_lock:
            if self._rho is None or self._rho[0] != key:
                self._rho = (key, measure(self.engine))
            return self._rho[1]

    def scenario_correlation(self, request: PlanRequest) -> tuple[float | None, int]:
        """The week correlation a plan's scenarios are drawn with, and the paths it rests on:
        the request's value; else the store's (:meth:`week_correlation`); else, with too little
        feedback data, the optimizer's default (``WEEK_CORRELATION``). None in quantile mode."""
        if request.demand_mode != "expected_profit":
            return None, 0
        if request.week_correlation is not None:
            return float(request.week_correlation), 0
        measured = self.week_correlation()
        if measured.rho is None:
            return WEEK_CORRELATION, 0
        return measured.rho, measured.paths

    def store_view(self) -> StoreView:
        """The store as a plan reads it (:mod:`services.planning.reads`: every table but the
        orders, and the demand panel summed from the orders streamed in chunks), re-read only
        when an import (a folder or streamed events) has committed since the last read: every
        import writes an ``ingest_runs`` row in its own transaction. Two plans arriving after an
        import read it once. Callers treat the frames and the panel as read-only."""
        key = self._import_key()
        with self._read_lock:  # one reader per version; the others wait for its result
            with self._lock:
                if self._view is not None and self._view[0] == key:
                    return self._view[1]
            # a bad stored row (a date outside the calendar, a quantity out of range) is skipped
            # and reported once per store version, so it can neither fail nor move a plan
            view = read_store_view(self.engine)
            with self._lock:
                self._view = (key, view)
        return view

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table read whole (orders included), without the rows no feature can be built
        from: for tools and checks on a small store. Plans never call it (:meth:`store_view`)."""
        return clean_frames(load_frames(self.engine))[0]

    @staticmethod
    def last_order_week(store: StoreView | Mapping[str, pd.DataFrame]) -> pd.Timestamp:
        """The Monday of the last week with an order (of a view, or of whole frames)."""
        if isinstance(store, StoreView):
            if store.last_order_week is None:
                raise InvalidArgument("the store holds no orders yet", field="origin_week")
            return store.last_order_week
        orders = store["orders"]
        if orders is None or orders.empty:
            raise InvalidArgument("the store holds no orders yet", field="origin_week")
        last = pd.to_datetime(orders["order_date"]).max().normalize()
        return last - pd.Timedelta(days=last.weekday())

    def _check_count(self, n: int, field_name: str) -> None:
        if n > self.max_variants:
            raise InvalidArgument(
                f"{n} variants; at most {self.max_variants} per request", field=field_name
            )

    def resolve(
        self, frames: Mapping[str, pd.DataFrame], refs: Sequence[str | NewVariant], where: str
    ) -> list[Any]:
        """Stored ids (upper-cased, must exist) and new configurations as feature dicts."""
        self._check_count(len(refs), where)
        check_refs(refs, where)
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
                    raise InvalidArgument(f"unknown variant {shown(ref)}", field=at)
                if vid in seen:
                    raise InvalidArgument(f"variant {shown(vid)} given twice", field=at)
                seen.add(vid)
                out.append(vid)
                continue
            vid = (ref.variant_id.strip() or f"NEW-{i + 1}").upper()
            if vid in known or vid in seen:
                raise InvalidArgument(f"id {shown(vid)} is already taken", field=f"{at}.variant_id")
            family = ref.family_id.strip().upper()
            if family not in families:
                raise InvalidArgument(
                    f"unknown family {shown(ref.family_id)}", field=f"{at}.family_id"
                )
            price = float(ref.list_price)
            config: dict[str, Any] = {"variant_id": vid, "family_id": family, "list_price": price}
            for name in sorted(attrs):
                config[f"attr_{name}"] = ""
            for name, value in ref.attributes:
                key = name.strip().lower()
                if key not in attrs:
                    raise InvalidArgument(
                        f"unknown attribute {shown(name)} (known: {shown(sorted(attrs), 200)})",
                        field=f"{at}.attributes",
                    )
                config[f"attr_{key}"] = str(value).strip().lower()
            seen.add(vid)
            out.append(config)
        return out

    # ------------------------------------------------------------------ predictions
    def forecast(
        self,
        refs: Sequence[str | NewVariant],
        origin_week: str,
        horizon: int,
        deadline: float | None = None,
    ) -> tuple[pd.Timestamp, pd.DataFrame, int]:
        check_horizon(horizon, max_weeks=self.max_periods)
        if not refs:
            raise InvalidArgument("give at least one variant", field="variants")
        view = self.store_view()
        variants = self.resolve(view.frames, refs, "variants")
        origin = (
            parse_week(origin_week, "origin_week") if origin_week else self.last_order_week(view)
        )
        table, version = forecast_demand(
            _panel(view),
            origin,
            variants,
            horizon,
            self._predict(deadline),
            self._inputs("demand", deadline),
        )
        return origin, table, version

    def estimate_costs(
        self, refs: Sequence[str | NewVariant], deadline: float | None = None
    ) -> tuple[pd.DataFrame, int]:
        if not refs:
            raise InvalidArgument("give at least one variant", field="variants")
        frames = self.store_view().frames
        require_cost_inputs(frames)
        variants = self.resolve(frames, refs, "variants")
        return estimate_costs(
            frames, variants, self._predict(deadline), self._inputs("cost", deadline)
        )

    # ------------------------------------------------------------------ plans
    def prepare(self, request: PlanRequest, deadline: float | None = None) -> Prepared:
        """Forecast and cost every planned variant, and build the problem."""
        request.validate(max_horizon=self.max_periods)
        options = solve_options(request, deadline)
        self._check_count(len(request.variant_ids) + len(request.new_variants), "variant_ids")
        previous = self.get_plan(request.previous_plan_id) if request.previous_plan_id else None

        t0 = time.perf_counter()
        view = self.store_view()
        require_cost_inputs(view.frames)
        start = request.first_week() or self.last_order_week(view) + WEEK
        origin = start - WEEK
        stored = (
            self.resolve(view.frames, list(request.variant_ids), "variant_ids")
            if request.variant_ids
            else default_variants(view.frames, start)
        )
        self._check_count(len(stored) + len(request.new_variants), "variant_ids")
        new = self.resolve(view.frames, list(request.new_variants), "new_variants")
        on_hand = check_initial_inventory(request.initial_inventory, [*stored, *new])
        taken = set(stored) & {v["variant_id"] for v in new}
        if taken:
            raise InvalidArgument(
                f"id {shown(sorted(taken)[0])} is already taken", field="new_variants"
            )
        everything = [*stored, *new]
        if not everything:
            raise InvalidArgument(
                "no variant is launched by the first planned week", field="start_week"
            )
        # of the order history, the plan reads only its variants' open custom orders
        frames = view.plan_frames(self.engine, stored, start, request.horizon)
        t1 = time.perf_counter()
        predict = self._predict(deadline)
        forecast, demand_version = forecast_demand(
            _panel(view),
            origin,
            everything,
            request.horizon,
            predict,
            self._inputs("demand", deadline),
        )
        t2 = time.perf_counter()
        costs, cost_version = estimate_costs(
            frames, everything, predict, self._inputs("cost", deadline)
        )
        t3 = time.perf_counter()
        rho, rho_paths = self.scenario_correlation(request)  # timed with the build
        resolved = dataclasses.replace(
            request,
            start_week=start,
            variant_ids=tuple(stored),
            initial_inventory=on_hand,
            week_correlation=rho,
        )
        before: tuple[PreviousPlanLine, ...] = ()
        if previous is not None:
            weeks = [start + k * WEEK for k in range(request.horizon)]
            given = [(pl.variant, pl.line, pl.period, pl.quantity) for pl in previous.plan.lines]
            before = tuple(previous_lines(previous.periods, given, weeks))
        problem = build_problem(
            frames, forecast, costs, resolved, new_variants=new, previous=before
        )
        t4 = time.perf_counter()
        timings = {
            "load_s": t1 - t0,
            "forecast_s": t2 - t1,
            "cost_s": t3 - t2,
            "build_s": t4 - t3,
        }
        return Prepared(
            request,
            problem,
            demand_version,
            cost_version,
            options,
            timings,
            forecast,
            week_correlation=rho,
            week_correlation_paths=rho_paths,
        )

    def create_plan(self, request: PlanRequest, deadline: float | None = None) -> PlanOutcome:
        prepared = self.prepare(request, deadline)
        plan = self._solve(prepared.problem, prepared.options, deadline)
        outcome = self.store(prepared, prepared.problem, plan)
        if prepared.forecast is not None:
            self.record_forecast(prepared.forecast, prepared.demand_version)
        return outcome

    def prepare_batch(
        self,
        request: PlanRequest,
        scenarios: Sequence[Scenario],
        deadline: float | None = None,
    ) -> tuple[Prepared, list[Scenario]]:
        """The base problem of a batch of scenarios, its forecast fetched (and recorded) once
        for all of them, and the scenarios checked against it, each named (an unnamed one by
        its index). A malformed scenario fails before anything is forecast when it can."""
        check_scenarios(scenarios)
        request.validate(max_horizon=self.max_periods)
        for i, sc in enumerate(scenarios):  # what needs no problem: before any forecast
            sc.validate(f"scenarios[{i}]")
        prepared = self.prepare(request, deadline)
        if prepared.forecast is not None:
            self.record_forecast(prepared.forecast, prepared.demand_version)
        lines = [ln.id for ln in prepared.problem.lines]
        named = [
            dataclasses.replace(sc.validate(f"scenarios[{i}]", lines), id=sc.id or str(i))
            for i, sc in enumerate(scenarios)
        ]
        return prepared, named

    def store_scenario(self, prepared: Prepared, given: Scenario, plan: Plan) -> PlanOutcome:
        """Store one scenario's plan with the scenario it answers (``given``: as the caller
        sent it) in the plan's request."""
        level = (
            prepared.request.service_level if given.service_level is None else given.service_level
        )
        return self.store(
            prepared,
            prepared.problem,
            plan,
            service_level=level,
            extra={"scenario": given.record()},
        )

    def replan_batch(
        self,
        request: PlanRequest,
        scenarios: Sequence[Scenario],
        deadline: float | None = None,
    ) -> list[tuple[str, PlanOutcome | Exception]]:
        """Plan every scenario (a what-if of ``request``) with one batch call to the optimizer;
        forecasts and costs are fetched once. One ``(scenario id, stored plan or the error that
        scenario ended with)`` per scenario, in order. A malformed scenario fails the whole call
        before anything is solved."""
        if self._solve_batch is None:
            raise NotImplementedError("this Planner was made without solve_batch")
        prepared, named = self.prepare_batch(request, scenarios, deadline)
        try:
            results: Sequence[tuple[str, Plan | Exception]] = self._solve_batch(
                prepared.problem, named, prepared.options, deadline
            )
        except Exception as exc:
            # A malformed scenario (the optimizer checks too) fails the call, nothing was
            # solved; a bug propagates; e.g. an unreachable optimizer is every scenario's result.
            if code_of(exc) in (None, Code.INVALID_ARGUMENT):
                raise
            results = [(sc.id, exc) for sc in named]
        out: list[tuple[str, PlanOutcome | Exception]] = []
        for given, (sid, result) in zip(scenarios, results, strict=True):
            if isinstance(result, Exception):
                out.append((sid, result))
                continue
            out.append((sid, self.store_scenario(prepared, given, result)))
        return out

    def record_forecast(self, table: pd.DataFrame, version: int) -> int:
        """Store the quantiles served (``forecasts_served``), so actuals can be compared later."""
        return plan_store.record_forecasts(self.engine, table, version)

    def store(
        self,
        prepared: Prepared,
        problem: PlanningProblem,
        plan: Plan,
        *,
        service_level: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> PlanOutcome:
        plan_id = uuid.uuid4().hex
        created = datetime.now(UTC)
        periods = tuple(problem.periods)
        level = prepared.request.service_level if service_level is None else service_level
        drawn = plan.kpis.scenarios > 0  # e.g. not a quantile what-if of an expected-profit batch
        outcome = PlanOutcome(
            plan_id=plan_id,
            name=prepared.request.name,
            created_at=created.isoformat(),
            periods=periods,
            plan=plan,
            demand_version=prepared.demand_version,
            cost_version=prepared.cost_version,
            service_level=level,
            week_correlation=prepared.week_correlation if drawn else None,
            week_correlation_paths=prepared.week_correlation_paths if drawn else 0,
        )
        request = dataclasses.asdict(prepared.request)
        request.update(extra or {})
        summary = {
            "plan": plan.to_dict(),
            "periods": list(periods),
            "model_versions": {"demand": outcome.demand_version, "cost": outcome.cost_version},
            "service_level": level,
            "name": outcome.name,
            "week_correlation": {
                "value": outcome.week_correlation,
                "paths": outcome.week_correlation_paths,
            },
        }
        plan_store.save_plan(
            self.engine,
            plan_id=plan_id,
            created_at=created,
            plan=plan,
            periods=periods,
            request=request,
            summary=summary,
        )
        return outcome

    def get_plan(self, plan_id: str) -> PlanOutcome:
        if not plan_id:
            raise InvalidArgument("give the id CreatePlan returned", field="plan_id")
        check_id(plan_id, "plan_id")
        row = plan_store.load_plan(self.engine, plan_id)
        if row is None:
            raise NotFound(f"no plan {plan_id!r}", field="plan_id")
        summary = row.summary
        versions = summary.get("model_versions", {})
        rho = summary.get("week_correlation") or {}  # plans stored before it was recorded: {}
        return PlanOutcome(
            plan_id=row.plan_id,
            name=str(summary.get("name", "")),
            created_at=row.created_at.isoformat(),
            periods=tuple(summary.get("periods", ())),
            # a plan stored by a newer version (a rolling upgrade) keeps what this one knows
            plan=Plan.from_dict(summary["plan"], strict=False),
            demand_version=int(versions.get("demand", 0)),
            cost_version=int(versions.get("cost", 0)),
            service_level=float(summary.get("service_level", 0.0)),
            week_correlation=rho.get("value"),
            week_correlation_paths=int(rho.get("paths") or 0),
        )
