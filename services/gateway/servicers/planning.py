"""``tailorline.v1.PlanningService``: forecasts, cost estimates, plans and scenario batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from services.common.errors import InvalidArgument, translate
from services.planning.service import NewVariantSpec, Planner, PlanOutcome, PlanSpec


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
