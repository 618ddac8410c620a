"""The chart lints and renders for every values file, and what it renders is valid Kubernetes:
core objects against the Kubernetes 1.31 OpenAPI schemas (kubernetes-validate, strict), custom
resources (InferenceService, RayService, RayJob, RayCronJob; ServiceMonitor, PodMonitor,
PrometheusRule) against their CRDs' schemas."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
VALUES = sorted((CHART / "ci").glob("*.yaml")) + sorted((REPO / "k8s").glob("values-*.yaml"))
VALUE_IDS = [str(v.relative_to(REPO)) for v in VALUES]
CUSTOM_KINDS = {
    "InferenceService",
    "RayService",
    "RayJob",
    "RayCronJob",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
}
K8S_VERSION = "1.31"


def test_values_files_cover_both_profiles_and_both_databases():
    texts = {v.name: v.read_text() for v in VALUES}
    assert any("profile: cpu" in t for t in texts.values()), texts.keys()
    assert any("mode: external" in t for t in texts.values()), texts.keys()


def test_lint_strict_defaults(helm):
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.output


@pytest.mark.parametrize("values", VALUES, ids=VALUE_IDS)
def test_lint_strict(helm, values):
    result = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert result.returncode == 0, result.output


@pytest.mark.parametrize("values", [None, *VALUES], ids=["defaults", *VALUE_IDS])
def test_core_objects_pass_kubernetes_schemas(render, values):
    rendered = render(values)
    kinds = {o["kind"] for o in rendered.objects}
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= kinds
    checked = 0
    for obj in rendered.objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(map(str, exc.absolute_path))
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} at {where}: {exc.message}")
        checked += 1
    assert checked >= 10


def test_defaults_render_every_kind_the_release_needs(default_render):
    kinds = {o["kind"] for o in default_render.objects}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "PersistentVolumeClaim",
        "StatefulSet",
        "Secret",
        "InferenceService",
        "RayService",
        "RayCronJob",
    } <= kinds


@pytest.mark.parametrize("values", [None, *VALUES], ids=["defaults", *VALUE_IDS])
def test_custom_resources_pass_crd_schemas(render, crd_validate, rayjobs_in_configmaps, values):
    rendered = render(values)
    customs = [o for o in rendered.objects if o["kind"] in CUSTOM_KINDS]
    customs += rayjobs_in_configmaps(rendered)
    found = {o["kind"] for o in customs}
    assert {"InferenceService", "RayService", "RayJob"} <= found
    for obj in customs:
        errors = crd_validate(obj)
        assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: " + "; ".join(errors[:5])


def test_crd_validator_rejects_what_the_api_server_would(crd_validate, default_render):
    """The translated CRD schemas are strict: an unknown field, a wrong type, a missing field."""
    service = default_render.one("RayService")
    bad = {**service, "spec": {**service["spec"], "serveConfigV3": "x"}}
    assert any("serveConfigV3" in e for e in crd_validate(bad))
    cluster = service["spec"]["rayClusterConfig"]
    worker = {**cluster["workerGroupSpecs"][0], "maxReplicas": "eight"}
    bad = {
        **service,
        "spec": {**service["spec"], "rayClusterConfig": {**cluster, "workerGroupSpecs": [worker]}},
    }
    assert any("maxReplicas" in e for e in crd_validate(bad))
    isvc = default_render.one("InferenceService")
    container = {k: v for k, v in isvc["spec"]["predictor"]["containers"][0].items()}
    container["resources"] = {"limits": {"cpu": 1.5}}  # int-or-string: a float is neither
    bad_pred = {**isvc["spec"]["predictor"], "containers": [container]}
    assert crd_validate({**isvc, "spec": {**isvc["spec"], "predictor": bad_pred}})
