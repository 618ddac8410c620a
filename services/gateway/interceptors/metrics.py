"""Prometheus metrics of the gateway (their own registry) and the interceptor that counts RPCs."""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.gateway.interceptors.base import Interceptor, rewrap, timed


class Metrics:
    """Prometheus metrics of the gateway, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tailorline_gateway_requests",
            "RPCs handled",
            ["method", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "tailorline_gateway_errors",
            "RPCs that ended with an error",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tailorline_gateway_request_seconds",
            "RPC latency",
            ["method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.solve_seconds = Histogram(
            "tailorline_gateway_solve_seconds",
            "Optimizer time per plan (total_time_s)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.downstream_up = Gauge(
            "tailorline_gateway_downstream_up",
            "1 while a downstream answers its health probe",
            ["downstream"],
            registry=self.registry,
        )


class MetricsInterceptor(Interceptor):
    """Requests, errors and latency per method and final status code."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def wrap(
        self, handler: grpc.RpcMethodHandler, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        method, m = details.method, self.metrics

        def done(code: grpc.StatusCode, seconds: float) -> None:
            m.requests.labels(method, code.name).inc()
            m.latency.labels(method).observe(seconds)
            if code != grpc.StatusCode.OK:
                m.errors.labels(method, code.name).inc()

        return rewrap(handler, scope=lambda context: timed(context, done))
