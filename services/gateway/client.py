"""A small Python client of the gateway's public API (what an internal service would write).

Wraps the generated stubs with the bearer token, deadlines and a large receive limit, and turns
protos into the project's own types where one exists (plans become ``optimizer.Plan``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pandas as pd
from tailorline.optimizer.v1 import problem_pb2 as problem_pb
from tailorline.v1 import feedback_service_pb2 as fb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from tailorline.v1 import model_service_pb2 as model_pb
from tailorline.v1 import model_service_pb2_grpc as model_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from optimizer.serving.convert import plan_from_proto
from services.planning.request import DEFAULT_HORIZON, DEFAULT_SERVICE_LEVEL

MAX_MESSAGE = 256 << 20


@dataclass(frozen=True)
class PlanReply:
    plan_id: str
    periods: tuple[str, ...]
    plan: Any  # optimizer.Plan
    demand_version: int
    cost_version: int
    #: expected-profit mode: the scenarios' week correlation, and the paths it was measured on
    week_correlation: float | None = None
    week_correlation_paths: int = 0


class GatewayClient:
    def __init__(self, target: str, token: str | None = None, timeout_s: float = 600.0) -> None:
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout_s
        self.planning = pb_grpc.PlanningServiceStub(self._channel)
        self.feedback = fb_grpc.FeedbackServiceStub(self._channel)
        self.models = model_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def forecast(
        self, variant_ids: Sequence[str], horizon: int, origin_week: str = ""
    ) -> tuple[pd.DataFrame, int]:
        """P10/P50/P90 per variant and week as a table, and the model version that answered."""
        request = pb.ForecastDemandRequest(
            variants=[pb.VariantRef(variant_id=v) for v in variant_ids],
            horizon=horizon,
            origin_week=origin_week,
        )
        reply = self.planning.ForecastDemand(
            request, timeout=self._timeout, metadata=self._metadata
        )
        rows = [
            (f.variant_id, w.week, w.p10, w.p50, w.p90) for f in reply.forecasts for w in f.weeks
        ]
        table = pd.DataFrame(rows, columns=["variant_id", "target_week", "p10", "p50", "p90"])
        return table, int(reply.model_version)

    def create_plan(
        self,
        *,
        horizon: int = DEFAULT_HORIZON,
        service_level: float = DEFAULT_SERVICE_LEVEL,
        **fields: Any,
    ) -> PlanReply:
        """CreatePlan with the request's fields (start_week, variant_ids, time_limit_s, ...);
        horizon and service level default like the API's (services.planning.request);
        ``demand_mode`` (``"expected_profit"``/``"quantile"``) and ``solve_method`` (``"auto"``,
        ...) may be given by name."""
        if isinstance(fields.get("demand_mode"), str):
            fields["demand_mode"] = problem_pb.DemandMode.Value(
                f"DEMAND_MODE_{fields['demand_mode'].upper()}"
            )
        if isinstance(fields.get("solve_method"), str):
            fields["solve_method"] = problem_pb.SolveMethod.Value(
                f"SOLVE_METHOD_{fields['solve_method'].upper()}"
            )
        request = pb.CreatePlanRequest(horizon=horizon, service_level=service_level, **fields)
        reply = self.planning.CreatePlan(request, timeout=self._timeout, metadata=self._metadata)
        r = reply.result
        return PlanReply(
            plan_id=r.plan_id,
            periods=tuple(r.periods),
            plan=plan_from_proto(r.plan),
            demand_version=int(r.model_versions.demand),
            cost_version=int(r.model_versions.cost),
            week_correlation=r.week_correlation if r.HasField("week_correlation") else None,
            week_correlation_paths=int(r.week_correlation_paths),
        )

    def record_events(self, events: Iterable[fb.RecordEventsRequest]) -> fb.RecordEventsResponse:
        """Stream events; the summary counts stored, duplicate and rejected ones."""
        return self.feedback.RecordEvents(
            iter(list(events)), timeout=self._timeout, metadata=self._metadata
        )

    def list_models(self, name: str = "") -> list[dict[str, Any]]:
        """ListModels as plain dicts (name, version, status, served, metrics, ...)."""
        from google.protobuf import json_format

        reply = self.models.ListModels(
            model_pb.ListModelsRequest(name=name), timeout=self._timeout, metadata=self._metadata
        )
        return [
            json_format.MessageToDict(m, preserving_proto_field_name=True) for m in reply.models
        ]

    def retrain(
        self, models: Sequence[str] = (), config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start a retraining job; the job as a dict (job_id, status, ...)."""
        from google.protobuf import json_format, struct_pb2

        cfg = struct_pb2.Struct()
        cfg.update(config or {})
        reply = self.models.Retrain(
            model_pb.RetrainRequest(models=list(models), config=cfg),
            timeout=self._timeout,
            metadata=self._metadata,
        )
        return json_format.MessageToDict(reply.job, preserving_proto_field_name=True)

    def get_retrain_job(self, job_id: str) -> dict[str, Any]:
        from google.protobuf import json_format

        reply = self.models.GetRetrainJob(
            model_pb.GetRetrainJobRequest(job_id=job_id),
            timeout=self._timeout,
            metadata=self._metadata,
        )
        return json_format.MessageToDict(reply.job, preserving_proto_field_name=True)


def order_events(orders: pd.DataFrame) -> list[fb.RecordEventsRequest]:
    """Order rows (docs/data-format.md columns) as RecordEvents messages."""
    return [
        fb.RecordEventsRequest(
            order=fb.Order(
                order_id=str(r.order_id),
                customer_id=str(r.customer_id),
                variant_id=str(r.variant_id),
                quantity=int(r.quantity),
                unit_price=float(r.unit_price),
                order_date=str(pd.Timestamp(r.order_date).date()),
                due_date=str(pd.Timestamp(r.due_date).date()),
                kind=str(r.kind),
                promo=bool(getattr(r, "promo", 0)),
            )
        )
        for r in orders.itertuples(index=False)
    ]


def market_events(market: pd.DataFrame) -> list[fb.RecordEventsRequest]:
    return [
        fb.RecordEventsRequest(
            market_signal=fb.MarketSignal(
                week=str(pd.Timestamp(r.week).date()),
                family_id=str(r.family_id),
                price_index=float(r.price_index),
                trend_index=float(r.trend_index),
            )
        )
        for r in market.itertuples(index=False)
    ]


def production_events(records: pd.DataFrame) -> list[fb.RecordEventsRequest]:
    """Production records (docs/data-format.md columns) as RecordEvents messages."""
    return [
        fb.RecordEventsRequest(
            production=fb.ProductionRecord(
                record_id=str(r.record_id),
                line_id=str(r.line_id),
                variant_id=str(r.variant_id),
                date=str(pd.Timestamp(r.date).date()),
                quantity=int(r.quantity),
                hours=float(r.hours),
                cost=float(r.cost),
                scrap=int(r.scrap),
            )
        )
        for r in records.itertuples(index=False)
    ]
