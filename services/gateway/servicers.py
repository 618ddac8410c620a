"""The tailorline.v1 servicers: thin translations between protos and the plain logic.

Errors are raised (``services.common.errors`` or the optimizer's) and turned into statuses by the
error interceptor alone. Blocking work (store, downstream clients) runs in worker threads; every
downstream call gets the request's deadline, capped by ``request_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from tailorline.v1 import feedback_service_pb2 as fb_pb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from tailorline.v1 import model_service_pb2 as model_pb
from tailorline.v1 import model_service_pb2_grpc as model_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from services.common.errors import FailedPrecondition, InvalidArgument, translate
from services.gateway.feedback import Event, FeedbackSummary, record_batch
from services.planning.service import NewVariantSpec, Planner, PlanOutcome, PlanSpec

log = logging.getLogger("tailorline.gateway")


def deadline_of(context: grpc.aio.ServicerContext, cap_s: float) -> float:
    """Absolute ``time.monotonic()`` deadline: the client's, capped by the gateway's own."""
    left = context.time_remaining()
    budget = cap_s if left is None else min(cap_s, max(0.0, left))
    return time.monotonic() + budget


def _new_variant(msg: pb.NewVariant) -> NewVariantSpec:
    return NewVariantSpec(
        variant_id=msg.variant_id,
        family_id=msg.family_id,
        list_price=msg.list_price,
        attributes=tuple(sorted(msg.attributes.items())),
    )


def _refs(refs: Any) -> list[str | NewVariantSpec]:
    out: list[str | NewVariantSpec] = []
    for i, ref in enumerate(refs):
        kind = ref.WhichOneof("kind")
        if kind == "variant_id":
            out.append(ref.variant_id)
        elif kind == "configuration":
            out.append(_new_variant(ref.configuration))
        else:
            raise InvalidArgument("set variant_id or configuration", field=f"variants[{i}]")
    return out


def plan_spec(msg: pb.CreatePlanRequest) -> PlanSpec:
    def opt(name: str, default: Any) -> Any:
        return getattr(msg, name) if msg.HasField(name) else default  # type: ignore[arg-type]

    return PlanSpec(
        start_week=msg.start_week,
        horizon=msg.horizon or 12,
        service_level=opt("service_level", 0.9),
        variant_ids=tuple(msg.variant_ids),
        new_variants=tuple(_new_variant(v) for v in msg.new_variants),
        holding_rate=opt("holding_rate", 0.01),
        backlog_rate=opt("backlog_rate", 0.02),
        lost_sale_rate=opt("lost_sale_rate", 0.05),
        allow_backlog=opt("allow_backlog", True),
        name=msg.name,
        time_limit_s=opt("time_limit_s", None),
        mip_rel_gap=opt("mip_rel_gap", None),
        initial_inventory=tuple(msg.initial_inventory.items()),
    )


def plan_result(outcome: PlanOutcome) -> pb.PlanResult:
    from optimizer.serving.convert import plan_to_proto

    return pb.PlanResult(
        plan_id=outcome.plan_id,
        name=outcome.name,
        created_at=outcome.created_at,
        periods=list(outcome.periods),
        plan=plan_to_proto(outcome.plan),
        model_versions=pb.ModelVersions(demand=outcome.demand_version, cost=outcome.cost_version),
        service_level=outcome.service_level,
    )


class PlanningServicer(pb_grpc.PlanningServiceServicer):
    def __init__(self, planner: Planner, *, timeout_s: float, metrics: Any = None) -> None:
        self.planner = planner
        self.timeout_s = timeout_s
        self.metrics = metrics

    def _observe_solve(self, outcome: PlanOutcome) -> None:
        if self.metrics is not None:
            self.metrics.solve_seconds.observe(outcome.plan.total_time_s)

    async def ForecastDemand(
        self, request: pb.ForecastDemandRequest, context: grpc.aio.ServicerContext
    ) -> pb.ForecastDemandResponse:
        refs = _refs(request.variants)
        deadline = deadline_of(context, self.timeout_s)
        origin, table, version = await asyncio.to_thread(
            self.planner.forecast, refs, request.origin_week, request.horizon, deadline
        )
        response = pb.ForecastDemandResponse(origin_week=str(origin.date()), model_version=version)
        for vid, rows in table.groupby("variant_id", sort=False):
            fc = response.forecasts.add(variant_id=str(vid))
            for r in rows.itertuples(index=False):
                fc.weeks.add(week=str(r.target_week.date()), p10=r.p10, p50=r.p50, p90=r.p90)
        return response

    async def EstimateCost(
        self, request: pb.EstimateCostRequest, context: grpc.aio.ServicerContext
    ) -> pb.EstimateCostResponse:
        refs = _refs(request.variants)
        deadline = deadline_of(context, self.timeout_s)
        table, version = await asyncio.to_thread(self.planner.estimate_costs, refs, deadline)
        return pb.EstimateCostResponse(
            estimates=[
                pb.CostEstimate(
                    variant_id=r.variant_id,
                    line_id=r.line_id,
                    unit_cost=r.unit_cost,
                    hours_per_unit=r.hours_per_unit,
                )
                for r in table.itertuples(index=False)
            ],
            model_version=version,
        )

    async def CreatePlan(
        self, request: pb.CreatePlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreatePlanResponse:
        spec = plan_spec(request)
        deadline = deadline_of(context, self.timeout_s)
        outcome = await asyncio.to_thread(self.planner.create_plan, spec, deadline)
        self._observe_solve(outcome)
        return pb.CreatePlanResponse(result=plan_result(outcome))

    async def GetPlan(
        self, request: pb.GetPlanRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPlanResponse:
        outcome = await asyncio.to_thread(self.planner.get_plan, request.plan_id)
        return pb.GetPlanResponse(result=plan_result(outcome))

    async def ReplanBatch(
        self, request: pb.ReplanBatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ReplanBatchResponse]:
        from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb

        from optimizer.serving.convert import scenario_problem

        if not request.scenarios:
            raise InvalidArgument("give at least one scenario", field="scenarios")
        if len(request.scenarios) > 256:
            raise InvalidArgument("at most 256 scenarios per batch", field="scenarios")
        spec = plan_spec(request.base)
        deadline = deadline_of(context, self.timeout_s)
        prepared = await asyncio.to_thread(self.planner.prepare, spec, deadline)
        if prepared.forecast is not None:
            await asyncio.to_thread(
                self.planner.record_forecast, prepared.forecast, prepared.demand_version
            )
        jobs = []
        for i, sc in enumerate(request.scenarios):
            sid = sc.id or str(i)
            what = svc_pb.Scenario(id=sid, capacity_factors=dict(sc.capacity_factors))
            if sc.HasField("service_level"):
                what.service_level = sc.service_level
            if sc.HasField("demand_factor"):
                what.demand_factor = sc.demand_factor
            # a malformed scenario fails the whole call before any solve starts
            problem = scenario_problem(prepared.problem, what, f"scenarios[{i}]")
            level = sc.service_level if sc.HasField("service_level") else spec.service_level
            extra = {"scenario": json_format.MessageToDict(sc)}
            jobs.append((sid, problem, level, extra))

        async def run(sid: str, problem: Any, level: float, extra: Any) -> pb.ReplanBatchResponse:
            try:
                outcome = await asyncio.to_thread(
                    self.planner.solve_and_store,
                    prepared,
                    problem,
                    deadline,
                    service_level=level,
                    extra=extra,
                )
            except Exception as exc:  # one scenario's failure is its result, not the call's
                err = translate(exc)
                if err is None:
                    raise
                return pb.ReplanBatchResponse(
                    scenario_id=sid,
                    error=pb.ScenarioError(code=err.grpc_code.value[0], message=str(err)),
                )
            self._observe_solve(outcome)
            return pb.ReplanBatchResponse(scenario_id=sid, result=plan_result(outcome))

        tasks = [asyncio.ensure_future(run(*job)) for job in jobs]
        try:
            for finished in asyncio.as_completed(tasks):
                yield await finished
        finally:
            for t in tasks:
                t.cancel()


_EVENT_TABLES = {
    "order": "orders",
    "production": "production",
    "review": "reviews",
    "market_signal": "market",
}


def event_row(msg: fb_pb.RecordEventsRequest) -> tuple[str, dict[str, Any]] | None:
    kind = msg.WhichOneof("event")
    if kind is None:
        return None
    body = getattr(msg, kind)
    row = json_format.MessageToDict(
        body, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    if kind == "order":
        row["promo"] = int(body.promo)
        row["quantity"] = int(body.quantity)
    if kind == "production":
        row["quantity"], row["scrap"] = int(body.quantity), int(body.scrap)
    # empty strings are missing values for the importer
    row = {k: (None if v == "" else v) for k, v in row.items()}
    return _EVENT_TABLES[kind], row


class FeedbackServicer(fb_grpc.FeedbackServiceServicer):
    """``on_orders()`` runs after a stream stored orders (the retrain trigger; it must return at
    once: it schedules work, never does it)."""

    def __init__(
        self,
        engine: Any,
        core: Any,
        *,
        batch_size: int,
        max_events: int,
        on_orders: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.core = core
        self.batch_size = batch_size
        self.max_events = max_events
        self.on_orders = on_orders

    async def RecordEvents(
        self, request_iterator: AsyncIterator[fb_pb.RecordEventsRequest], context: Any
    ) -> fb_pb.RecordEventsResponse:
        total = FeedbackSummary()
        batch: list[Event] = []
        empty: list[fb_pb.EventError] = []
        index = 0
        orders_stored = False

        async def flush() -> None:
            nonlocal orders_stored
            if batch:
                part = await asyncio.to_thread(record_batch, list(batch), self.engine, self.core)
                total.add(part)
                orders_stored |= part.stored > 0 and any(e.table == "orders" for e in batch)
                batch.clear()

        async for msg in request_iterator:
            if index >= self.max_events:
                raise InvalidArgument(
                    f"more than {self.max_events} events in one stream", field="events"
                )
            parsed = event_row(msg)
            if parsed is None:
                empty.append(fb_pb.EventError(index=index, field="event", reason="empty event"))
            else:
                batch.append(Event(index, *parsed))
                if len(batch) >= self.batch_size:
                    await flush()
            index += 1
        await flush()
        if orders_stored and self.on_orders is not None:
            try:
                self.on_orders()
            except Exception:  # the trigger never fails the feedback that set it off
                log.exception("retrain trigger: scheduling failed")
        errors = [
            fb_pb.EventError(index=e.index, event_id=e.event_id, field=e.field, reason=e.reason)
            for e in total.errors
        ]
        errors = sorted([*errors, *empty], key=lambda e: e.index)
        return fb_pb.RecordEventsResponse(
            received=index,
            stored=total.stored,
            duplicates=total.duplicates,
            rejected=total.rejected + len(empty),
            errors=errors,
        )


def _struct(value: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if isinstance(value, dict):
        json_format.ParseDict(_plain(value), s)
    return s


def _plain(value: Any) -> Any:
    import math

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso(value: Any) -> str:
    return "" if value is None else value.isoformat()


class ModelServicer(model_grpc.ModelServiceServicer):
    """The registry (store's ``model_versions``, else the repository) and retraining jobs."""

    def __init__(self, engine: Any, models_dir: Any, retraining: Any = None) -> None:
        self.engine = engine
        self.models_dir = models_dir
        # services.gateway.feedback.Retraining (submit(models, config) -> job_id), or None
        self.retraining = retraining

    def _list(self, name: str) -> list[model_pb.ModelVersion]:
        from sqlalchemy import select

        from services.registry.repository import ModelRepository
        from services.store import schema

        repo = ModelRepository(self.models_dir)
        served = {n: repo.served_version(n) for n in repo.names()} if repo.root.is_dir() else {}
        t = schema.model_versions
        query = select(t).order_by(t.c.name, t.c.version)
        if name:
            query = query.where(t.c.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = [
            model_pb.ModelVersion(
                name=r.name,
                version=r.version,
                status=r.status,
                served=served.get(r.name) == r.version,
                metrics=_struct(r.metrics),
                created_at=_iso(r.created_at),
                data_start=_iso(r.data_start),
                data_end=_iso(r.data_end),
            )
            for r in rows
        ]
        listed = {(m.name, m.version) for m in out}
        for n in served:  # versions in the repository the registry does not know
            if name and n != name:
                continue
            for v in repo.versions(n):
                if (n, v) not in listed:
                    meta = repo.read_metadata(n, v)
                    out.append(
                        model_pb.ModelVersion(
                            name=n,
                            version=v,
                            status="served" if served[n] == v else "candidate",
                            served=served[n] == v,
                            metrics=_struct(meta.get("metrics")),
                        )
                    )
        return out

    async def ListModels(
        self, request: model_pb.ListModelsRequest, context: Any
    ) -> model_pb.ListModelsResponse:
        if request.name and request.name not in ("demand", "cost"):
            raise InvalidArgument(f"unknown model {request.name!r}", field="name")
        models = await asyncio.to_thread(self._list, request.name)
        return model_pb.ListModelsResponse(models=models)

    async def Retrain(
        self, request: model_pb.RetrainRequest, context: Any
    ) -> model_pb.RetrainResponse:
        from services.gateway.feedback import NO_LAUNCHER
        from services.training.launch import check_request

        config = json_format.MessageToDict(request.config)
        models = list(request.models) or ["demand"]
        # The request is checked before the launcher is: a model that is not retrained is
        # the caller's error with or without a launcher configured.
        check_request(models, config)
        if self.retraining is None:
            raise FailedPrecondition(NO_LAUNCHER)
        job_id = await asyncio.to_thread(self.retraining.submit, models, config)
        return model_pb.RetrainResponse(job=await asyncio.to_thread(self._job, job_id))

    def _job(self, job_id: str) -> model_pb.RetrainJob:
        from sqlalchemy import select

        from services.common.errors import NotFound
        from services.store import schema

        t = schema.retrain_jobs
        with self.engine.connect() as conn:
            r = conn.execute(select(t).where(t.c.job_id == job_id)).first()
        if r is None:
            raise NotFound(f"no retraining job {job_id!r}", field="job_id")
        return model_pb.RetrainJob(
            job_id=r.job_id,
            status=r.status,
            launcher=r.launcher or "",
            created_at=_iso(r.created_at),
            started_at=_iso(r.started_at),
            finished_at=_iso(r.finished_at),
            result=_struct(r.result),
            error=r.error or "",
        )

    async def GetRetrainJob(
        self, request: model_pb.GetRetrainJobRequest, context: Any
    ) -> model_pb.GetRetrainJobResponse:
        if not request.job_id or len(request.job_id) > 64:
            raise InvalidArgument("give the id Retrain returned", field="job_id")
        return model_pb.GetRetrainJobResponse(
            job=await asyncio.to_thread(self._job, request.job_id)
        )
