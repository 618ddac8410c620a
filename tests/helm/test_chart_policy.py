"""Security and exposure policy of everything the chart renders, for every values file:
every container has requests and limits, runs as non-root on a read-only root filesystem without
privilege escalation or capabilities, and is probed where it serves; only the gateway accepts
traffic from outside the release; the gateway may create/get RayJobs, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
VALUES = sorted((CHART / "ci").glob("*.yaml")) + sorted((REPO / "k8s").glob("values-*.yaml"))
ALL = [None, *VALUES]
IDS = ["defaults", *(str(v.relative_to(REPO)) for v in VALUES)]
RELEASE_LABELS = {"app.kubernetes.io/name": "tailorline", "app.kubernetes.io/instance": "rel"}
#: Ports of the Ray head the KubeRay operator calls (dashboard: Serve deploys, job submission).
OPERATOR_PORTS = {8265, 52365}
#: networkPolicy.metricsFrom's default (values.yaml).
DEFAULT_SCRAPERS = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
]


def containers_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_every_container_is_locked_down(render, pods, values):
    rendered = render(values)
    specs = pods(rendered)
    assert {p.component for p in specs} >= {"gateway", "predictor", "optimizer", "retrain"}
    problems = []
    for pod in specs:
        pod_sc = pod.spec.get("securityContext", {})
        for c in containers_of(pod.spec):
            where = f"{pod.where}:{c['name']}"
            sc = c.get("securityContext", {})
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(res.get(kind, {})):
                    problems.append(f"{where}: resources.{kind} needs cpu and memory")
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) in (0, None):
                problems.append(f"{where}: runAsUser must be a non-zero uid")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{where}: capabilities.drop [ALL]")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            if c.get("ports") and not (c.get("readinessProbe") and c.get("livenessProbe")):
                problems.append(f"{where}: serves ports but lacks readiness/liveness probes")
        if pod.spec.get("automountServiceAccountToken") is not False and not (
            pod.component == "gateway"
            or (pod.where.startswith("RayService/") and "head" in pod.where)
        ):
            problems.append(f"{pod.where}: only the gateway and the Ray autoscaler mount a token")
    assert not problems, "\n".join(problems)
    # the token-mounting pods use ServiceAccounts of their own, shared with no other pod
    accounts: dict[str, set[str]] = {}
    for pod in specs:
        accounts.setdefault(pod.spec["serviceAccountName"], set()).add(pod.component)
    for pod in specs:
        if pod.spec.get("automountServiceAccountToken") is not False:
            assert accounts[pod.spec["serviceAccountName"]] == {pod.component}, pod.where


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_ray_autoscaler_sidecar_is_locked_down_too(render, values):
    options = render(values).one("RayService")["spec"]["rayClusterConfig"]["autoscalerOptions"]
    assert {"cpu", "memory"} <= set(options["resources"]["limits"])
    assert options["securityContext"]["readOnlyRootFilesystem"] is True
    assert options["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_gateway_probes_are_native_grpc_on_the_health_service(default_render):
    deployment = default_render.one("Deployment", "gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert container["livenessProbe"] and container["startupProbe"]


def _admits_outsiders(rule: dict[str, Any]) -> bool:
    """Does this ingress rule let in a peer that is not a pod of this release?"""
    peers = rule.get("from")
    if not peers:
        return True  # no `from`: every source
    for peer in peers:
        if "ipBlock" in peer or "namespaceSelector" in peer:
            return True
        labels = peer.get("podSelector", {}).get("matchLabels", {})
        if not RELEASE_LABELS.items() <= labels.items():
            return True
    return False


def _is_operator_rule(rule: dict[str, Any], operator_ns: str) -> bool:
    peers = rule.get("from", [])
    ports = {p.get("port") for p in rule.get("ports", [])}
    return (
        len(peers) == 1
        and peers[0].get("namespaceSelector", {}).get("matchLabels")
        == {"kubernetes.io/metadata.name": operator_ns}
        and bool(peers[0].get("podSelector", {}).get("matchLabels"))
        and ports <= OPERATOR_PORTS
        and bool(ports)
    )


#: The one port per component a Prometheus outside the release may scrape (monitoring.*).
METRICS_PORTS = {"predictor": {8080}, "optimizer": {"metrics"}}


def _is_scraper_rule(rule: dict[str, Any], component: str | None, scrapers: Any) -> bool:
    """A rule that opens only the component's metrics port, only to networkPolicy.metricsFrom."""
    ports = {p.get("port") for p in rule.get("ports", [])}
    return (
        bool(ports)
        and ports <= METRICS_PORTS.get(component or "", set())
        and (rule.get("from") == scrapers)
    )


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_only_the_gateway_is_reachable_from_outside_the_release(render, pods, values):
    rendered = render(values)
    policies = rendered.of_kind("NetworkPolicy")
    if values is not None and "networkPolicy:\n  enabled: false" in values.read_text():
        assert not policies, "networkPolicy.enabled=false must render no NetworkPolicy"
        return
    deny = [p for p in policies if "ingress" not in p["spec"]]
    assert len(deny) == 1, "one default-deny policy"
    assert deny[0]["spec"]["podSelector"]["matchLabels"] == RELEASE_LABELS
    assert deny[0]["spec"]["policyTypes"] == ["Ingress"]
    operator_ns = "kuberay-system"
    for pod in pods(rendered):  # every pod of the release falls under the default deny
        assert RELEASE_LABELS.items() <= pod.labels.items(), pod.where
    given = yaml.safe_load(values.read_text()) if values else {}
    scrapers = given.get("networkPolicy", {}).get("metricsFrom", DEFAULT_SCRAPERS)
    open_to_outside, scraped = set(), set()
    for policy in policies:
        component = policy["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for rule in policy["spec"].get("ingress", []):
            if _is_scraper_rule(rule, component, scrapers):
                scraped.add(component)
            elif _admits_outsiders(rule) and not _is_operator_rule(rule, operator_ns):
                open_to_outside.add(component)
    assert open_to_outside == {"gateway"}
    # the predictor's and the optimizer's metrics ports open to the scrapers only when scraped
    monitoring = given.get("monitoring", {}).get("podMonitor", {})
    assert scraped == {c for c in METRICS_PORTS if monitoring.get(c, {}).get("enabled")}


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_only_the_gateway_service_may_leave_the_cluster_network(render, values):
    rendered = render(values)
    for service in rendered.of_kind("Service"):
        component = service["metadata"]["labels"]["app.kubernetes.io/component"]
        if component != "gateway":
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]
    serve = rendered.one("RayService")["spec"]["serveService"]["spec"]
    assert serve["type"] == "ClusterIP"


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_rbac_lets_the_gateway_create_and_get_rayjobs_and_nothing_else(render, values):
    rendered = render(values)
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")
    roles = rendered.of_kind("Role")
    if values is not None and "rbac:\n  create: false" in values.read_text():
        assert not roles and not rendered.of_kind("RoleBinding"), "rbac.create=false"
        return
    assert len(roles) == 1
    assert roles[0]["rules"] == [
        {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get"]}
    ]
    (binding,) = rendered.of_kind("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": roles[0]["metadata"]["name"],
    }
    gateway_sa = rendered.one("Deployment", "gateway")["spec"]["template"]["spec"][
        "serviceAccountName"
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": gateway_sa, "namespace": "tl-test"}
    ]


def test_helm_test_hook_checks_the_gateway_health(default_render):
    hooks = [
        p
        for p in default_render.of_kind("Pod")
        if p["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    assert len(hooks) == 1
    container = hooks[0]["spec"]["containers"][0]
    service = default_render.one("Service", "gateway")
    assert f"{service['metadata']['name']}:50051" in container["args"]
    assert "grpc_health.v1" in container["args"][0]
    assert "SERVING" in container["args"][0]
