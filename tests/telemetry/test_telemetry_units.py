"""Traces, logs and metrics without a stack: what an operator reads off each piece."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
from tailorline.optimizer.v1 import plan_pb2, problem_pb2

from optimizer.core.errors import Infeasible
from optimizer.core.problem import Diagnosis, Plan
from optimizer.serving.client import Unreachable
from optimizer.serving.tracing import describe_span
from services.common.errors import Unavailable
from services.common.telemetry import (
    JsonFormatter,
    TraceContextFilter,
    current_trace_id,
    setup_tracing,
    trace_engine,
)
from services.gateway.downstream import optimizer_solvers
from services.gateway.interceptors import Metrics
from services.gateway.loop_metrics import LoopMetrics
from tests.telemetry.promql import metric_names


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    provider = setup_tracing("tailorline-test", endpoint="")
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _samples(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_log_lines_carry_the_trace_id_as_text_and_as_json(spans: InMemorySpanExporter) -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tailorline.test.json")
    log.addHandler(handler)
    log.propagate = False
    try:
        with trace.get_tracer("t").start_as_current_span("call"):
            trace_id = current_trace_id()
            log.warning("plan %s failed", "p1", extra={"plan_id": "p1"})
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    inside, outside = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert inside["trace_id"] == trace_id and len(trace_id) == 32
    assert inside["message"] == "plan p1 failed" and inside["plan_id"] == "p1"
    assert inside["level"] == "WARNING" and inside["logger"] == "tailorline.test.json"
    assert outside["trace_id"] == "-"


def test_store_statements_are_spans_inside_a_call_only(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    from services.store.db import make_engine, migrate
    from services.store.jobs import create_job

    url = f"sqlite:///{tmp_path / 's.db'}"
    migrate(url)
    engine = make_engine(url)
    trace_engine(engine)
    spans.clear()
    create_job(engine, {}, "test")  # outside a call: no span of its own
    assert spans.get_finished_spans() == ()
    with trace.get_tracer("t").start_as_current_span("call") as parent:
        create_job(engine, {}, "test")
    names = [s.name for s in spans.get_finished_spans() if s.name != "call"]
    assert names == ["INSERT retrain_jobs"]
    store_span = next(s for s in spans.get_finished_spans() if s.name == "INSERT retrain_jobs")
    assert store_span.parent is not None
    assert store_span.parent.span_id == parent.get_span_context().span_id
    assert store_span.attributes is not None and store_span.attributes["db.system"] == "sqlite"
    engine.dispose()


def test_loop_metrics_count_retrains_by_outcome_from_the_store(tmp_path: Path) -> None:
    from services.store.db import make_engine, migrate
    from services.store.jobs import create_job, finish_job

    url = f"sqlite:///{tmp_path / 's.db'}"
    migrate(url)
    engine = make_engine(url)
    for result, error in (({"promoted": True}, None), ({"promoted": False}, None), (None, "oom")):
        finish_job(engine, create_job(engine, {}, "test"), result=result, error=error)
    create_job(engine, {}, "test")  # still pending
    metrics = Metrics()
    loop = LoopMetrics(engine).register(metrics.registry)
    assert loop.refresh() is not None
    got = _samples(metrics.registry)
    for outcome, n in (("started", 4), ("promoted", 1), ("rejected", 1), ("failed", 1)):
        assert got[("tailorline_retrains_total", (("outcome", outcome),))] == n
    assert got[("tailorline_retrains_running", ())] == 1
    assert got[("tailorline_loop_metrics_refresh_errors_total", ())] == 0
    assert ("tailorline_retrain_last_promotion_timestamp_seconds", ()) in got
    assert got[("tailorline_retrain_trigger_threshold", (("metric", "wape"),))] == 1.0
    engine.dispose()
    # a store that cannot be read keeps the last values and counts the failure
    loop.engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    assert loop.refresh() is None
    got = _samples(metrics.registry)
    assert got[("tailorline_loop_metrics_refresh_errors_total", ())] == 1
    assert got[("tailorline_retrains_total", (("outcome", "started"),))] == 4


class _Client:
    """An optimizer client whose answers the test sets."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.in_flight_seen: list[float] = []
        self.metrics: Metrics | None = None

    def _seen(self) -> None:
        assert self.metrics is not None
        self.in_flight_seen.append(self.metrics.scenarios_in_flight._value.get())

    def solve(self, problem: Any, options: Any, deadline: Any) -> Plan:
        self._seen()
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def solve_batch(self, problem: Any, scenarios: Any, options: Any, deadline: Any) -> Any:
        self._seen()
        return [(str(i), self.outcomes.pop(0)) for i, _ in enumerate(scenarios)]


def _plan(status: str, gap: float | None, method: str = "monolithic") -> Plan:
    return Plan(status=status, objective=1.0, best_bound=1.0, gap=gap, method=method)  # type: ignore[arg-type]


def test_plans_are_counted_by_status_and_method_with_their_gap() -> None:
    metrics = Metrics()
    client = _Client(
        [
            _plan("optimal", 0.0),
            _plan("feasible", 0.08, "relax_and_fix"),
            Infeasible(Diagnosis(summary="capacity")),
            Unreachable("optimizer is unreachable"),
            _plan("optimal", 0.001),
            Infeasible(Diagnosis(summary="materials")),
            _plan("no_solution", None),
        ]
    )
    client.metrics = metrics
    solve, solve_batch = optimizer_solvers(client, metrics)  # type: ignore[arg-type]
    solve(None, None, None)  # type: ignore[arg-type]
    solve(None, None, None)  # type: ignore[arg-type]
    with pytest.raises(Infeasible):
        solve(None, None, None)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        solve(None, None, None)  # type: ignore[arg-type]
    results = solve_batch(None, [object()] * 3, None, None)  # type: ignore[arg-type]
    assert [type(r).__name__ for _, r in results] == ["Plan", "Infeasible", "Plan"]
    assert client.in_flight_seen == [1, 1, 1, 1, 3]  # a batch counts its scenarios
    got = _samples(metrics.registry)
    assert got[("tailorline_scenarios_in_flight", ())] == 0
    expected = {
        ("optimal", "monolithic"): 2,
        ("feasible", "relax_and_fix"): 1,
        ("infeasible", "unknown"): 2,
        ("unavailable", "unknown"): 1,
        ("no_solution", "monolithic"): 1,
    }
    for (status, method), n in expected.items():
        key = ("tailorline_plans_total", (("method", method), ("status", status)))
        assert got[key] == n, key
    # the gap of the three plans that have one: 0, 0.001 (monolithic) and 0.08 (relax_and_fix)
    assert got[("tailorline_plan_gap_ratio_count", (("method", "monolithic"),))] == 2
    assert got[("tailorline_plan_gap_ratio_sum", (("method", "relax_and_fix"),))] == 0.08
    bucket = ("tailorline_plan_gap_ratio_bucket", (("le", "0.05"), ("method", "relax_and_fix")))
    assert got[bucket] == 0  # 8% is above the 5% bucket


def test_a_solve_span_says_status_gap_method_and_size(spans: InMemorySpanExporter) -> None:
    request = svc_pb.SolveRequest()
    request.problem.periods.extend(["2025-01-06", "2025-01-13"])
    for k in range(3):
        request.problem.variants.add(id=f"v{k}")
    plan = plan_pb2.Plan(
        status=plan_pb2.PLAN_STATUS_FEASIBLE,
        gap=0.02,
        method=problem_pb2.SOLVE_METHOD_RELAX_AND_FIX,
        total_time_s=4.5,
    )
    spans.clear()
    with trace.get_tracer("t").start_as_current_span("solve") as span:
        describe_span(span, request, [svc_pb.SolveResponse(plan=plan)], None)
    (done,) = spans.get_finished_spans()
    attrs = dict(done.attributes or {})
    assert attrs["tailorline.status"] == "feasible"
    assert attrs["tailorline.method"] == "relax_and_fix"
    assert attrs["tailorline.gap"] == pytest.approx(0.02)
    assert (attrs["tailorline.variants"], attrs["tailorline.periods"]) == (3, 2)
    assert attrs["rpc.grpc.status_code"] == "OK"


def test_feedback_responses_count_events_by_outcome() -> None:
    from tailorline.v1 import feedback_service_pb2 as fb

    metrics = Metrics()
    metrics.feedback_response(
        fb.RecordEventsResponse(received=10, stored=6, duplicates=1, rejected=3)
    )
    got = _samples(metrics.registry)
    for outcome, n in (("stored", 6), ("duplicate", 1), ("rejected", 3)):
        assert got[("tailorline_feedback_events_total", (("outcome", outcome),))] == n


def test_promql_names() -> None:
    expr = (
        'sum by (namespace) (rate(tailorline_plans_total{status=~"infeasible|error"}[15m]))'
        " / clamp_min(sum by (namespace) (rate(tailorline_plans_total[15m])), 1e-9) > 0.1"
        ' and on(namespace) up{job="$job"} == 1'
    )
    assert metric_names(expr) == {"tailorline_plans_total", "up"}
