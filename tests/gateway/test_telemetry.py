"""Operability on the real stack (issue 18): one trace per plan across the gateway, the predictor
call, the optimizer in Ray Serve and the store, with the trace id in the log lines and the
response; and every metric name a shipped alert rule or dashboard panel uses is exported.

The stack is the session's one (tests/gateway/conftest.py); its processes export their spans over
OTLP to a collector inside this test process (tests/telemetry/collector.py), the same wire protocol
an OpenTelemetry Collector receives.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from tailorline.optimizer.v1 import plan_pb2
from tailorline.v1 import feedback_service_pb2 as fb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from services.local.stack import LocalStack
from tests.gateway.helpers import AUTH
from tests.telemetry.collector import Collector
from tests.telemetry.promql import metric_names

pytestmark = pytest.mark.integration
FILES = Path(__file__).resolve().parents[2] / "helm" / "tailorline" / "files"
#: Exported by what the local stack does not run (Prometheus itself, kube-state-metrics, Ray's
#: metrics agent on Kubernetes): a rule may use them, the local scrape cannot show them.
FOREIGN = re.compile(r"^(up|ALERTS|ALERTS_FOR_STATE|absent.*|kube_\w+|ray_\w+|container_\w+)$")

GATEWAY_SPAN = "tailorline.v1.PlanningService/CreatePlan"
PREDICTOR_SPAN = "inference.GRPCInferenceService/ModelInfer"
OPTIMIZER_CLIENT_SPAN = "tailorline.optimizer.v1.OptimizerService/Solve"


def _scrape(url: str) -> set[str]:
    """Every series name an exposition offers (samples and declared families: a histogram's
    ``_bucket``/``_sum``/``_count``, a counter's ``_total``)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def _make_plan(channel: grpc.Channel, frames: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    ids = sorted(frames["variants"]["variant_id"])[:3]
    call = pb_grpc.PlanningServiceStub(channel).CreatePlan.with_call(
        pb.CreatePlanRequest(horizon=3, variant_ids=ids, time_limit_s=5.0, mip_rel_gap=0.05),
        metadata=AUTH,
        timeout=120,
    )
    response, rpc = call
    return response, {m.key: m.value for m in rpc.trailing_metadata()}


def test_a_plan_is_one_trace_across_gateway_predictor_optimizer_and_store(
    stack: LocalStack, channel: grpc.Channel, otlp: Collector, frames: dict[str, Any]
) -> None:
    response, trailing = _make_plan(channel, frames)
    assert response.result.plan.status in (
        plan_pb2.PLAN_STATUS_OPTIMAL,
        plan_pb2.PLAN_STATUS_FEASIBLE,
    )
    trace_id = trailing["trace-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id) and trace_id != "0" * 32

    optimizer_server = "tailorline.optimizer.v1.OptimizerService/Solve"
    spans = otlp.wait_for(trace_id, {GATEWAY_SPAN, PREDICTOR_SPAN, optimizer_server}, 60)
    by_service: dict[str, set[str]] = {}
    for s in spans:
        by_service.setdefault(s.service, set()).add(s.name)
    assert GATEWAY_SPAN in by_service.get("tailorline-gateway", set()), by_service
    assert PREDICTOR_SPAN in by_service["tailorline-gateway"], by_service
    # the store's statements of the plan's save, inside the same trace
    assert {"INSERT plans", "INSERT plan_lines"} <= by_service["tailorline-gateway"], by_service
    # the optimizer's span, made in a Ray Serve replica (another process), continues the trace
    solved = [
        s for s in spans if s.service == "tailorline-optimizer" and s.name == optimizer_server
    ]
    assert len(solved) == 1, by_service
    client = [
        s for s in spans if s.service == "tailorline-gateway" and s.name == OPTIMIZER_CLIENT_SPAN
    ]
    assert solved[0].parent_id == client[0].span_id
    attrs = solved[0].attributes
    assert attrs["tailorline.status"] in ("optimal", "feasible")
    assert attrs["tailorline.method"] in ("monolithic", "relax_and_fix", "fix_and_optimize", "auto")
    assert attrs["tailorline.variants"] == 3 and attrs["tailorline.periods"] == 3
    assert 0 <= attrs["tailorline.gap"] <= 0.05 + 1e-9
    # one trace: every span has the same trace id, and exactly one root (the gateway's)
    roots = [s for s in spans if not s.parent_id]
    assert [r.name for r in roots] == [GATEWAY_SPAN]

    # the gateway's log lines of this call carry the same trace id
    log = (stack.log_dir or Path()) / "gateway.log"
    deadline = time.monotonic() + 10
    while (
        f"trace={trace_id}" not in log.read_text(errors="replace") and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if trace_id in ln]
    assert any("CreatePlan OK" in ln for ln in lines), lines[-3:]


def test_a_failed_call_names_its_trace_id_to_the_client(channel: grpc.Channel) -> None:
    # a call without the token fails before any servicer runs; its trace id still comes back
    stub = fb_grpc.FeedbackServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordEvents(iter(()), metadata=(), timeout=30)
    trailing = {m.key: m.value for m in err.value.trailing_metadata() or ()}
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert re.fullmatch(r"[0-9a-f]{32}", trailing["trace-id"])


def test_every_metric_an_alert_or_dashboard_uses_is_exported(
    stack: LocalStack, channel: grpc.Channel, frames: dict[str, Any]
) -> None:
    _make_plan(channel, frames)  # plans, predictor calls and solves have samples now
    stub = fb_grpc.FeedbackServiceStub(channel)
    stub.RecordEvents(iter([fb.RecordEventsRequest()]), metadata=AUTH, timeout=30)  # 1 rejected
    exported = _scrape(f"http://127.0.0.1:{stack.metrics_port}/metrics")
    exported |= _scrape(f"http://127.0.0.1:{stack.predictor_http_port}/metrics")

    rule_files = sorted(FILES.glob("*rules*.y*ml"))
    dashboards = sorted((FILES / "dashboards").glob("*.json"))
    assert rule_files and dashboards, f"no alert rules or dashboards under {FILES}"
    used: dict[str, set[str]] = {}
    for path in rule_files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for name in metric_names(str(rule["expr"])):
                    used.setdefault(name, set()).add(
                        f"{path.name}:{rule.get('alert') or rule.get('record')}"
                    )
    for path in dashboards:
        board = json.loads(path.read_text())  # valid JSON, or this fails
        for panel in _panels(board):
            for target in panel.get("targets", []):
                for name in metric_names(str(target.get("expr", ""))):
                    used.setdefault(name, set()).add(f"{path.name}:{panel.get('title')}")
    assert used, "no metric names found in the rules and dashboards"
    missing = {n: sorted(w) for n, w in used.items() if n not in exported and not FOREIGN.match(n)}
    assert not missing, f"used by alerts/dashboards but not exported: {missing}"
    # and the loop's gauges are there with the values of this store
    assert "tailorline_retrains_total" in exported and "tailorline_model_served_version" in exported


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in board.get("panels", []):
        out.append(panel)
        out.extend(_panels(panel))  # rows hold panels
    return out
