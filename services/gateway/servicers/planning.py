"""``tailorline.v1.PlanningService``: forecasts, cost estimates, plans and scenario batches.

Translation only: protos -> :class:`~services.planning.request.PlanRequest` (whose defaults and
checks live in :mod:`services.planning.request`) -> the Planner -> protos.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from tailorline.optimizer.v1 import problem_pb2 as problem_pb
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from optimizer.serving.convert import plan_to_proto
from services.common.errors import InvalidArgument, clip, code_of
from services.gateway.interceptors import MAX_DETAILS_CHARS, grpc_status
from services.planning.batch import SolveStreamFn, start_replan
from services.planning.request import (
    DEFAULT_BACKLOG_RATE,
    DEFAULT_DEMAND_MODE,
    DEFAULT_HOLDING_RATE,
    DEFAULT_HORIZON,
    DEFAULT_LOST_SALE_RATE,
    DEFAULT_SCENARIO_COUNT,
    DEFAULT_SERVICE_LEVEL,
    DEFAULT_SOLVE_METHOD,
    NewVariant,
    PlanRequest,
    Scenario,
)
from services.planning.service import Planner, PlanOutcome


def deadline_of(context: grpc.aio.ServicerContext, cap_s: float) -> float:
    """Absolute ``time.monotonic()`` deadline: the client's, capped by the gateway's own."""
    left = context.time_remaining()
    budget = cap_s if left is None else min(cap_s, max(0.0, left))
    return time.monotonic() + budget


def _new_variant(msg: pb.NewVariant) -> NewVariant:
    return NewVariant(
        variant_id=msg.variant_id,
        family_id=msg.family_id,
        list_price=msg.list_price,
        attributes=tuple(sorted(msg.attributes.items())),
    )


def _refs(refs: Any) -> list[str | NewVariant]:
    out: list[str | NewVariant] = []
    for i, ref in enumerate(refs):
        kind = ref.WhichOneof("kind")
        if kind == "variant_id":
            out.append(ref.variant_id)
        elif kind == "configuration":
            out.append(_new_variant(ref.configuration))
        else:
            raise InvalidArgument("set variant_id or configuration", field=f"variants[{i}]")
    return out


def _opt(msg: Any, name: str, default: Any) -> Any:
    """An ``optional`` proto field's value, or ``default`` when it is absent."""
    return getattr(msg, name) if msg.HasField(name) else default


def plan_request(msg: pb.CreatePlanRequest) -> PlanRequest:
    """The request as the Planner takes it; absent fields take the defaults of
    :mod:`services.planning.request` (a zero ``horizon`` is absent too)."""
    return PlanRequest(
        start_week=msg.start_week,
        horizon=msg.horizon or DEFAULT_HORIZON,
        service_level=_opt(msg, "service_level", DEFAULT_SERVICE_LEVEL),
        variant_ids=tuple(msg.variant_ids),
        new_variants=tuple(_new_variant(v) for v in msg.new_variants),
        holding_rate=_opt(msg, "holding_rate", DEFAULT_HOLDING_RATE),
        backlog_rate=_opt(msg, "backlog_rate", DEFAULT_BACKLOG_RATE),
        lost_sale_rate=_opt(msg, "lost_sale_rate", DEFAULT_LOST_SALE_RATE),
        allow_backlog=_opt(msg, "allow_backlog", True),
        name=msg.name,
        time_limit_s=_opt(msg, "time_limit_s", None),
        mip_rel_gap=_opt(msg, "mip_rel_gap", None),
        initial_inventory=tuple(msg.initial_inventory.items()),
        demand_mode=_enum(msg.demand_mode, DEMAND_MODES_PB, DEFAULT_DEMAND_MODE, "demand_mode"),
        scenario_count=_opt(msg, "scenario_count", DEFAULT_SCENARIO_COUNT),
        scenario_seed=_opt(msg, "scenario_seed", 0),
        previous_plan_id=msg.previous_plan_id,
        frozen_periods=msg.frozen_periods,
        change_penalty=_opt(msg, "change_penalty", 0.0),
        solve_method=_enum(msg.solve_method, METHODS_PB, DEFAULT_SOLVE_METHOD, "solve_method"),
        week_correlation=_opt(msg, "week_correlation", None),
    )


#: The proto enums' values as the request's names (0, unspecified: the default).
DEMAND_MODES_PB = {
    problem_pb.DEMAND_MODE_QUANTILE: "quantile",
    problem_pb.DEMAND_MODE_EXPECTED_PROFIT: "expected_profit",
}
METHODS_PB = {
    problem_pb.SOLVE_METHOD_AUTO: "auto",
    problem_pb.SOLVE_METHOD_MONOLITHIC: "monolithic",
    problem_pb.SOLVE_METHOD_RELAX_AND_FIX: "relax_and_fix",
    problem_pb.SOLVE_METHOD_FIX_AND_OPTIMIZE: "fix_and_optimize",
}


def _enum(value: int, names: dict[int, str], default: str, field: str) -> str:
    if value == 0:
        return default
    if value not in names:
        raise InvalidArgument(f"unknown value {value}", field=field)
    return names[value]


def scenario(msg: pb.Scenario) -> Scenario:
    return Scenario(
        id=msg.id,
        service_level=_opt(msg, "service_level", None),
        demand_factor=_opt(msg, "demand_factor", None),
        capacity_factors=tuple(sorted(msg.capacity_factors.items())),
    )


def plan_result(outcome: PlanOutcome) -> pb.PlanResult:
    return pb.PlanResult(
        plan_id=outcome.plan_id,
        name=outcome.name,
        created_at=outcome.created_at,
        periods=list(outcome.periods),
        plan=plan_to_proto(outcome.plan),
        model_versions=pb.ModelVersions(demand=outcome.demand_version, cost=outcome.cost_version),
        service_level=outcome.service_level,
        week_correlation=outcome.week_correlation,
        week_correlation_paths=outcome.week_correlation_paths,
    )


class PlanningServicer(pb_grpc.PlanningServiceServicer):
    """``solve_stream``: the optimizer's streaming solve that ``ReplanBatch`` uses (None: the
    Planner's one-call ``replan_batch``, every result sent once the whole batch is solved)."""

    def __init__(
        self,
        planner: Planner,
        *,
        timeout_s: float,
        solve_stream: SolveStreamFn | None = None,
        metrics: Any = None,
    ) -> None:
        self.planner = planner
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.solve_stream = solve_stream

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
        plan = plan_request(request)
        deadline = deadline_of(context, self.timeout_s)
        outcome = await asyncio.to_thread(self.planner.create_plan, plan, deadline)
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
        """One forecast for the batch, then each scenario's plan as soon as it is solved and
        stored. The call ending early (the client cancels, its deadline passes) cancels the
        scenarios not solved yet: the handler is cancelled at its ``await``, the ``finally``
        cancels the optimizer call, which cancels the queued solves."""
        base = plan_request(request.base)
        scenarios = [scenario(sc) for sc in request.scenarios]
        budget = _opt(request, "scenario_budget_s", None)
        deadline = deadline_of(context, self.timeout_s)
        if self.solve_stream is None:
            if budget is not None:
                raise InvalidArgument(
                    "this gateway has no streaming optimizer client", field="scenario_budget_s"
                )
            results = await asyncio.to_thread(self.planner.replan_batch, base, scenarios, deadline)
            for sid, outcome in results:
                yield self._scenario_response(sid, outcome)
            return
        stream = await asyncio.to_thread(
            start_replan,
            self.planner,
            self.solve_stream,
            base,
            scenarios,
            budget_s=budget,
            deadline=deadline,
        )
        # the call's end, however it comes, cancels the optimizer call: also when this generator
        # is paused at ``yield`` as the client cancels (then its ``finally`` runs only when the
        # generator is collected)
        context.add_done_callback(lambda _: stream.cancel())
        try:
            while True:
                item = await asyncio.to_thread(next, stream, None)
                if item is None:
                    return
                yield self._scenario_response(*item)
        finally:
            stream.cancel()

    def _scenario_response(
        self, sid: str, outcome: PlanOutcome | Exception
    ) -> pb.ReplanBatchResponse:
        if isinstance(outcome, PlanOutcome):
            self._observe_solve(outcome)
            return pb.ReplanBatchResponse(scenario_id=sid, result=plan_result(outcome))
        code = code_of(outcome)  # one scenario's failure is its result, not the call's
        if code is None:
            raise outcome
        return pb.ReplanBatchResponse(
            scenario_id=sid,
            error=pb.ScenarioError(
                code=grpc_status(code).value[0],
                message=clip(str(outcome), MAX_DETAILS_CHARS),
            ),
        )
