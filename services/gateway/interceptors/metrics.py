"""Prometheus metrics of the gateway (their own registry) and the interceptor that counts RPCs
(and the events ``RecordEvents`` stored, found duplicate or rejected, from its responses)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from services.gateway.interceptors.base import Interceptor, rewrap, timed

#: Relative MIP gap buckets (0..1).
GAP_BUCKETS = (0.0, 1e-4, 1e-3, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
#: Predictor call buckets, seconds.
PREDICTOR_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Prometheus metrics of the gateway, in their own registry (names, units and the questions
    they answer: docs/metrics.md; the loop's gauges come from :mod:`services.gateway.loop_metrics`
    registered on the same registry)."""

    def __init__(self, version: str = "") -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.build_info = Gauge(
            "tailorline_build_info", "1, labelled with the release", ["version"], registry=r
        )
        self.build_info.labels(version or _version()).set(1)
        self.requests = Counter(
            "tailorline_gateway_requests",
            "RPCs handled",
            ["method", "code"],
            registry=r,
        )
        self.errors = Counter(
            "tailorline_gateway_errors",
            "RPCs that ended with an error",
            ["method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "tailorline_gateway_request_seconds",
            "RPC latency",
            ["method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.solve_seconds = Histogram(
            "tailorline_gateway_solve_seconds",
            "Optimizer time per plan (total_time_s)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.downstream_up = Gauge(
            "tailorline_gateway_downstream_up",
            "1 while a downstream answers its health probe",
            ["downstream"],
            registry=r,
        )
        self.serving = Gauge(
            "tailorline_gateway_serving",
            "1 while the gateway's health is SERVING (both downstreams answer)",
            registry=r,
        )
        self.plans = Counter(
            "tailorline_plans",
            "Plans solved (a CreatePlan or one ReplanBatch scenario), by outcome and method",
            ["status", "method"],
            registry=r,
        )
        self.plan_gap = Histogram(
            "tailorline_plan_gap_ratio",
            "Relative MIP gap of each plan that has one (0 = proven optimal)",
            ["method"],
            buckets=GAP_BUCKETS,
            registry=r,
        )
        self.scenarios_in_flight = Gauge(
            "tailorline_scenarios_in_flight",
            "Solves in progress (a CreatePlan is one; a ReplanBatch counts its scenarios)",
            registry=r,
        )
        self.predictor_seconds = Histogram(
            "tailorline_predictor_request_seconds",
            "V2 inference calls of the gateway to the predictor, by model and served version",
            ["model", "version"],
            buckets=PREDICTOR_BUCKETS,
            registry=r,
        )
        self.predictor_requests = Counter(
            "tailorline_predictor_requests",
            "V2 inference calls of the gateway to the predictor, by model and status code",
            ["model", "code"],
            registry=r,
        )
        self.feedback_events = Counter(
            "tailorline_feedback_events",
            "Events received by RecordEvents, by outcome (stored, duplicate, rejected)",
            ["outcome"],
            registry=r,
        )
        for outcome in ("stored", "duplicate", "rejected"):
            self.feedback_events.labels(outcome)
        self.downstream_up.labels("predictor")
        self.downstream_up.labels("optimizer")

    # -- what the gateway's parts report ---------------------------------------------------
    def plan_solved(self, status: str, method: str, gap: float | None = None) -> None:
        self.plans.labels(status, method).inc()
        if gap is not None and gap == gap:  # not NaN
            self.plan_gap.labels(method).observe(min(max(gap, 0.0), 1.0))

    def predictor_call(self, model: str, version: str, code: str, seconds: float) -> None:
        self.predictor_requests.labels(model, code).inc()
        self.predictor_seconds.labels(model, version).observe(seconds)

    def feedback_response(self, response: Any) -> None:
        """Counts of a ``RecordEventsResponse``."""
        self.feedback_events.labels("stored").inc(int(getattr(response, "stored", 0)))
        self.feedback_events.labels("duplicate").inc(int(getattr(response, "duplicates", 0)))
        self.feedback_events.labels("rejected").inc(int(getattr(response, "rejected", 0)))


def _version() -> str:
    try:
        return importlib.metadata.version("tailorline")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class MetricsInterceptor(Interceptor):
    """Requests, errors and latency per method and final status code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method, m = details.method, self.metrics

        def done(code: grpc.StatusCode, seconds: float, _details: str) -> None:
            m.requests.labels(method, code.name).inc()
            m.latency.labels(method).observe(seconds)
            if code != grpc.StatusCode.OK:
                m.errors.labels(method, code.name).inc()

        observe = m.feedback_response if method.endswith("/RecordEvents") else None
        return rewrap(handler, scope=lambda context: timed(context, done), observe=observe)
