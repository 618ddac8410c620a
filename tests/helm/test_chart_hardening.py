"""Hardening (issue 13): production renders carry no generated secret material and refuse to
render without the existing Secrets and TLS; every pod of the release is under an egress policy
that lets it reach only what it calls; the gateway's metrics port is open only to the scrapers
named in the values."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
VALUES = sorted((CHART / "ci").glob("*.yaml")) + sorted((REPO / "k8s").glob("values-*.yaml"))
ALL = [None, *VALUES]
IDS = ["defaults", *(str(v.relative_to(REPO)) for v in VALUES)]
PROD_EXAMPLE = REPO / "k8s" / "values-gpu-prod.yaml"
PRODUCTION = [v for v in VALUES if yaml.safe_load(v.read_text()).get("production")]
PROD_IDS = [str(v.relative_to(REPO)) for v in PRODUCTION]
DNS_PORTS = {(53, "UDP"), (53, "TCP")}
API_PORTS = {443, 6443}
#: networkPolicy.metricsFrom in values.yaml: the pods of the `monitoring` namespace.
DEFAULT_SCRAPERS = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
]


def _template(helm, values: Path | None, *extra: str):
    args = ["template", "rel", str(CHART), "--namespace", "tl-test", "--kube-version", "1.31.0"]
    if values is not None:
        args += ["-f", str(values)]
    return helm(*args, *extra)


def _objects(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


# --------------------------------------------------------------------------- secrets


def test_production_values_are_what_the_examples_use():
    assert PROD_EXAMPLE in PRODUCTION, "k8s/values-gpu-prod.yaml must set production: true"
    assert CHART / "ci" / "gpu-prod-values.yaml" in PRODUCTION


@pytest.mark.parametrize("values", PRODUCTION, ids=PROD_IDS)
def test_production_renders_the_same_manifests_twice(helm, values):
    """No secret material is generated: two renders are identical, byte for byte, and the keys
    that must never change come from the existing Secrets the values name."""
    first, second = _template(helm, values), _template(helm, values)
    assert first.returncode == 0, first.output
    assert first.stdout == second.stdout
    objects = _objects(first.stdout)
    made = [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"]
    assert not made, f"production renders no Secret of its own, got {made}"
    text = yaml.safe_load(values.read_text())
    (gateway,) = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    ]
    (secrets,) = [
        v for v in gateway["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"
    ]
    by_key = {
        item["key"]: source["secret"]["name"]
        for source in secrets["projected"]["sources"]
        for item in source["secret"]["items"]
    }
    assert by_key["TAILORLINE_PSEUDONYM_KEY"] == text["secrets"]["existingSecret"]


REFUSALS = {
    "no-existing-secret": (
        ["--set", "secrets.existingSecret="],
        "/secrets/existingSecret",
        "production=true needs secrets.existingSecret",
    ),
    "a-pseudonym-key-value-is-not-enough": (
        ["--set", "secrets.existingSecret=", "--set", "secrets.pseudonymKey=k"],
        "/secrets/existingSecret",
        "production=true needs secrets.existingSecret",
    ),
    "tls-off": (
        ["--set", "gateway.tls.enabled=false"],
        "/gateway/tls/enabled",
        "production=true needs gateway.tls.enabled=true",
    ),
    "internal-database-without-secret": (
        ["--set", "database.mode=internal"],
        "/database/internal/existingSecret",
        "production=true with database.mode=internal needs database.internal.existingSecret",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_production_refuses_to_render_without_existing_secrets_or_tls(helm, case):
    """The schema names the key (so `helm lint` catches it too); past the schema
    (--skip-schema-validation) the template's own rule says why."""
    args, key, reason = REFUSALS[case]
    result = _template(helm, PROD_EXAMPLE, *args)
    assert result.returncode != 0, result.output[:500]
    assert key in result.output, result.output
    lint = helm("lint", "--strict", str(CHART), "-f", str(PROD_EXAMPLE), *args)
    assert lint.returncode != 0 and key in lint.output, lint.output
    result = _template(helm, PROD_EXAMPLE, *args, "--skip-schema-validation")
    assert result.returncode != 0, result.output[:500]
    assert reason in result.output, result.output


def test_production_with_internal_database_takes_its_password_from_the_existing_secret(helm):
    result = _template(
        helm,
        PROD_EXAMPLE,
        "--set",
        "database.mode=internal",
        "--set",
        "database.internal.existingSecret=tl-pg",
    )
    assert result.returncode == 0, result.output
    objects = _objects(result.stdout)
    assert not [o for o in objects if o["kind"] == "Secret"]
    (pg,) = [o for o in objects if o["kind"] == "StatefulSet"]
    env = {e["name"]: e for e in pg["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "tl-pg",
        "key": "POSTGRES_PASSWORD",
    }
    for o in objects:
        if o["kind"] == "Deployment":
            volumes = o["spec"]["template"]["spec"]["volumes"]
            (secrets,) = [v for v in volumes if v["name"] == "secrets"]
            db = [s["secret"] for s in secrets["projected"]["sources"]][1]
            assert db == {
                "name": "tl-pg",
                "items": [{"key": "TAILORLINE_DB_URL", "path": "TAILORLINE_DB_URL"}],
            }


def test_dev_secrets_given_as_values_are_never_regenerated(helm):
    """Outside production the chart may make the Secret (dev only), but a given value is used
    as it is on every render."""
    args = ["--show-only", "templates/secrets.yaml"]
    args += ["--set", "secrets.pseudonymKey=k3y", "--set", "secrets.gatewayAuthToken=t0k"]
    args += ["--set", "database.internal.password=pw"]
    renders = [_template(helm, None, *args) for _ in range(2)]
    assert renders[0].returncode == 0, renders[0].output
    assert renders[0].stdout == renders[1].stdout
    (app,) = [o for o in _objects(renders[0].stdout) if "TAILORLINE_PSEUDONYM_KEY" in o["data"]]
    assert base64.b64decode(app["data"]["TAILORLINE_PSEUDONYM_KEY"]) == b"k3y"


# --------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("values", PRODUCTION, ids=PROD_IDS)
def test_production_gateway_serves_tls_from_its_secret(render, values):
    rendered = render(values)
    text = yaml.safe_load(values.read_text())
    pod = rendered.one("Deployment", "gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TAILORLINE_GATEWAY_TLS_CERT_FILE"] == "/etc/tailorline/tls/tls.crt"
    assert env["TAILORLINE_GATEWAY_TLS_KEY_FILE"] == "/etc/tailorline/tls/tls.key"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/tailorline/tls"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == text["gateway"]["tls"]["secretName"]


# --------------------------------------------------------------------------- egress


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"].get("matchLabels", {})
    return selector.items() <= labels.items()


def _policies_on(rendered, component: str) -> list[dict[str, Any]]:
    return [
        p
        for p in rendered.of_kind("NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        == component
    ]


def _egress(rendered, component: str) -> list[dict[str, Any]]:
    (policy,) = _policies_on(rendered, component)
    assert "Egress" in policy["spec"]["policyTypes"], policy["metadata"]["name"]
    return policy["spec"]["egress"]


def _ports(rule: dict[str, Any]) -> set[tuple[Any, str]]:
    return {(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports", [])}


def _reaches(rules: list[dict[str, Any]], component: str) -> set[tuple[Any, str]] | None:
    """Ports the rules open towards the release's pods of `component` (None: not reachable,
    an empty set: every port)."""
    found: set[tuple[Any, str]] | None = None
    for rule in rules:
        for peer in rule.get("to", []):
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if "namespaceSelector" not in peer and labels.get("app.kubernetes.io/component") == (
                component
            ):
                found = (found or set()) | _ports(rule)
    return found


def _is_dns(rule: dict[str, Any]) -> bool:
    return _ports(rule) == DNS_PORTS and bool(rule.get("to"))


def _policy_enabled(values: Path | None) -> bool:
    return values is None or "networkPolicy:\n  enabled: false" not in values.read_text()


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_every_pod_of_the_release_is_under_an_egress_policy(render, pods, values):
    rendered = render(values)
    if not _policy_enabled(values):
        assert not rendered.of_kind("NetworkPolicy")  # networkPolicy.enabled=false: the platform's
        return
    policies = [
        p for p in rendered.of_kind("NetworkPolicy") if "Egress" in p["spec"]["policyTypes"]
    ]
    specs = pods(rendered)
    covered = {p.component for p in specs}
    assert {"gateway", "predictor", "optimizer", "retrain", "test"} <= covered
    for pod in specs:
        assert any(_selects(p, pod.labels) for p in policies), f"{pod.where}: egress unrestricted"
    for rule in (r for p in policies for r in p["spec"]["egress"]):
        assert rule.get("to") or rule.get("ports"), f"a rule that opens everything: {rule}"


def test_each_component_reaches_only_what_it_calls(default_render):
    gateway = _egress(default_render, "gateway")
    assert {(8081, "TCP")} <= _reaches(gateway, "predictor")
    assert _reaches(gateway, "optimizer") == {(9000, "TCP")}
    assert _reaches(gateway, "database") == {(5432, "TCP")}
    assert any(_is_dns(r) for r in gateway)
    # the kuberay launcher creates RayJobs through the API: the API ports only
    (api,) = [r for r in gateway if not r.get("to")]
    assert {port for port, _ in _ports(api)} == API_PORTS
    # the predictor: DNS and nothing else
    assert all(_is_dns(r) for r in _egress(default_render, "predictor"))
    # the optimizer: its own Ray pods, DNS, the API for the autoscaler
    optimizer = _egress(default_render, "optimizer")
    assert _reaches(optimizer, "optimizer") == set()
    assert _reaches(optimizer, "database") is None and _reaches(optimizer, "predictor") is None
    assert [r for r in optimizer if not r.get("to")] == [api]
    # retraining: its own Ray pods, the database, DNS
    retrain = _egress(default_render, "retrain")
    assert _reaches(retrain, "retrain") == set()
    assert _reaches(retrain, "database") == {(5432, "TCP")}
    assert all(r.get("to") for r in retrain), "retraining needs no address outside the cluster"
    # PostgreSQL connects nowhere
    assert _egress(default_render, "database") == []
    # the helm test pod: the gateway's gRPC port and DNS
    test = _egress(default_render, "test")
    assert _reaches(test, "gateway") == {(50051, "TCP")}
    assert len(test) == 2 and any(_is_dns(r) for r in test)


def test_local_launcher_gateway_has_no_way_to_the_api(helm):
    result = _template(
        helm, None, "--set", "gateway.config.retrainLauncher=local", "--set", "rbac.create=false"
    )
    assert result.returncode == 0, result.output
    (policy,) = [
        o
        for o in _objects(result.stdout)
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "rel-tailorline-gateway"
    ]
    assert all(r.get("to") for r in policy["spec"]["egress"])


@pytest.mark.parametrize("values", PRODUCTION, ids=PROD_IDS)
def test_production_egress_goes_to_the_configured_addresses(render, values):
    text = yaml.safe_load(values.read_text())["networkPolicy"]["egress"]
    rendered = render(values)
    db = (text["externalDatabase"]["to"], {(5432, "TCP")})
    api = (text["kubernetesApi"]["to"], {(p, "TCP") for p in API_PORTS})
    gateway = [(r.get("to"), _ports(r)) for r in _egress(rendered, "gateway")]
    assert db in gateway and api in gateway
    assert _reaches(_egress(rendered, "gateway"), "database") is None  # no chart database
    assert db in [(r.get("to"), _ports(r)) for r in _egress(rendered, "retrain")]
    assert api in [(r.get("to"), _ports(r)) for r in _egress(rendered, "optimizer")]
    for component in ("gateway", "predictor", "optimizer", "retrain"):
        for rule in _egress(rendered, component):
            assert rule.get("to"), f"{component}: an egress rule to any address: {rule}"


def test_extra_egress_rules_are_added_per_component(helm):
    otlp = [{"to": [{"ipBlock": {"cidr": "10.9.9.9/32"}}], "ports": [{"port": 4317}]}]
    extra = {c: otlp for c in ("gateway", "predictor", "optimizer", "retrain")}
    result = _template(helm, None, "--set-json", f"networkPolicy.egress.extra={json.dumps(extra)}")
    assert result.returncode == 0, result.output
    policies = [o for o in _objects(result.stdout) if o["kind"] == "NetworkPolicy"]
    for component in extra:
        (policy,) = [
            p
            for p in policies
            if p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
            == component
        ]
        assert policy["spec"]["egress"][-1] == otlp[0], component


def test_egress_can_be_left_to_the_platform(helm):
    result = _template(helm, None, "--set", "networkPolicy.egress.enabled=false")
    assert result.returncode == 0, result.output
    for policy in (o for o in _objects(result.stdout) if o["kind"] == "NetworkPolicy"):
        assert policy["spec"]["policyTypes"] == ["Ingress"], policy["metadata"]["name"]
        assert "egress" not in policy["spec"]


# --------------------------------------------------------------------------- metrics exposure


def _admits_everyone(peers: list[dict[str, Any]] | None) -> bool:
    if not peers:
        return True
    for peer in peers:
        if peer.get("ipBlock", {}).get("cidr") in ("0.0.0.0/0", "::/0"):
            return True
        if "namespaceSelector" in peer and not any(peer["namespaceSelector"].values()):
            return True  # {}: every namespace
    return False


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_metrics_port_is_open_only_to_the_named_scrapers(render, values):
    rendered = render(values)
    if not _policy_enabled(values):
        assert not rendered.of_kind("NetworkPolicy")  # networkPolicy.enabled=false: the platform's
        return
    (policy,) = _policies_on(rendered, "gateway")
    metrics_rules = []
    for rule in policy["spec"]["ingress"]:
        ports = {p["port"] for p in rule.get("ports", [])}
        assert ports, f"an ingress rule on every port of the gateway: {rule}"
        if ports & {"metrics", 9464}:
            assert ports <= {"metrics", 9464}, "metrics shares a rule with another port"
            metrics_rules.append(rule)
    (rule,) = metrics_rules
    assert not _admits_everyone(rule.get("from")), rule
    given = yaml.safe_load(values.read_text()) if values else {}
    assert rule["from"] == given.get("networkPolicy", {}).get("metricsFrom", DEFAULT_SCRAPERS)


def test_no_scrapers_named_closes_the_metrics_port(helm):
    result = _template(helm, None, "--set-json", "networkPolicy.metricsFrom=[]")
    assert result.returncode == 0, result.output
    (policy,) = [
        o
        for o in _objects(result.stdout)
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "rel-tailorline-gateway"
    ]
    opened = {p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]}
    assert opened == {"grpc"}
