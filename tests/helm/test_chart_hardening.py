"""Hardening (issue 13): production renders carry no generated secret material and refuse to
render without the existing Secrets and TLS."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
VALUES = sorted((CHART / "ci").glob("*.yaml")) + sorted((REPO / "k8s").glob("values-*.yaml"))
PROD_EXAMPLE = REPO / "k8s" / "values-gpu-prod.yaml"
PRODUCTION = [v for v in VALUES if yaml.safe_load(v.read_text()).get("production")]
PROD_IDS = [str(v.relative_to(REPO)) for v in PRODUCTION]


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
