"""The chart's configuration reaches the processes the way their settings classes read it:
every TAILORLINE_* variable it sets is a settings field, the gateway's settings load from exactly
what the chart gives the pod, the RayService embeds the project's Serve config byte for byte, and
the RayJob template sits where the gateway's launcher is told to look."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from services.common.settings import CoreSettings
from services.gateway.settings import GatewaySettings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
VALUES = sorted((CHART / "ci").glob("*.yaml")) + sorted((REPO / "k8s").glob("values-*.yaml"))
ALL = [None, *VALUES]
IDS = ["defaults", *(str(v.relative_to(REPO)) for v in VALUES)]
#: Read by the settings modules themselves (where the mounted Secret is), not a field.
META_VARS = {"TAILORLINE_SECRETS_DIR"}


def settings_fields() -> dict[str, str]:
    """env var name -> settings class, for every settings class that exists now."""
    classes: list[Any] = [CoreSettings, GatewaySettings]
    if importlib.util.find_spec("services.predictor.settings") is not None:
        from services.predictor.settings import PredictorSettings

        classes.append(PredictorSettings)
    names = {}
    for cls in classes:
        prefix = cls.model_config["env_prefix"]
        for field in cls.model_fields:
            names[f"{prefix}{field}".upper()] = cls.__name__
    return names


def tailorline_vars(rendered, pods) -> dict[str, str]:
    """Every TAILORLINE_* name the chart sets: env, envFrom ConfigMaps, secret files."""
    configmaps = {
        cm["metadata"]["name"]: cm.get("data", {}) for cm in rendered.of_kind("ConfigMap")
    }
    found: dict[str, str] = {}
    for pod in pods(rendered):
        for c in pod.spec["containers"]:
            for env in c.get("env", []):
                found[env["name"]] = pod.where
            for source in c.get("envFrom", []):
                for key in configmaps[source["configMapRef"]["name"]]:
                    found[key] = pod.where
        for volume in pod.spec.get("volumes", []):
            for source in volume.get("projected", {}).get("sources", []):
                for item in source.get("secret", {}).get("items", []):
                    found[item["path"]] = pod.where
    return {k: v for k, v in found.items() if k.startswith("TAILORLINE_")}


@pytest.mark.parametrize("values", ALL, ids=IDS)
def test_every_tailorline_var_is_a_settings_field(render, pods, values):
    fields = settings_fields()
    used = tailorline_vars(render(values), pods)
    assert "TAILORLINE_GATEWAY_PREDICTOR_URL" in used and "TAILORLINE_DB_URL" in used
    unknown = {k: where for k, where in used.items() if k not in fields and k not in META_VARS}
    assert not unknown, f"set by the chart but no settings field reads them: {unknown}"


def _gateway_environment(rendered, tmp_path: Path) -> dict[str, str]:
    """The gateway container's environment as Kubernetes would build it (secrets as files)."""
    deployment = rendered.one("Deployment", "gateway")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    configmaps = {cm["metadata"]["name"]: cm["data"] for cm in rendered.of_kind("ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = "tl-test"
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    (secrets,) = [v for v in volumes if v["name"] == "secrets"]
    for source in secrets["projected"]["sources"]:
        for item in source["secret"]["items"]:
            (secrets_dir / item["path"]).write_text(f"value-of-{item['path']}")
    env["TAILORLINE_SECRETS_DIR"] = str(secrets_dir)
    return env


@pytest.mark.parametrize(
    "values", [None, CHART / "ci" / "gpu-prod-values.yaml"], ids=["defaults", "gpu-prod"]
)
def test_gateway_settings_load_from_what_the_chart_gives_the_pod(
    render, values, tmp_path, monkeypatch
):
    env = _gateway_environment(render(values), tmp_path)
    for key in list(os.environ):
        if key.startswith("TAILORLINE_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    secrets_dir = env["TAILORLINE_SECRETS_DIR"]
    gateway = GatewaySettings(_secrets_dir=secrets_dir)
    core = CoreSettings(_secrets_dir=secrets_dir)
    assert gateway.host == "0.0.0.0" and gateway.port == 50051 and gateway.metrics_port == 9464
    assert gateway.predictor_url == "rel-tailorline-predictor-predictor.tl-test.svc:8081"
    assert gateway.optimizer_url == "rel-tailorline-optimizer-serve.tl-test.svc:9000"
    assert gateway.namespace == "tl-test"
    assert gateway.retrain_launcher == "kuberay"
    assert str(gateway.rayjob_template_file) == "/etc/tailorline/rayjob/rayjob.yaml"
    assert core.db_url == "value-of-TAILORLINE_DB_URL"
    assert core.pseudonym_key == "value-of-TAILORLINE_PSEUDONYM_KEY"
    assert str(core.models_dir) == "/mnt/models"
    if values is None:
        assert gateway.auth_token is not None
        assert gateway.auth_token.get_secret_value() == "value-of-TAILORLINE_GATEWAY_AUTH_TOKEN"
        assert gateway.tls_cert_file is None
    else:
        assert str(gateway.tls_cert_file) == "/etc/tailorline/tls/tls.crt"
        assert str(gateway.tls_ca_file) == "/etc/tailorline/tls/ca.crt"


def test_rayjob_template_is_mounted_where_the_gateway_looks(default_render, rayjobs_in_configmaps):
    deployment = default_render.one("Deployment", "gateway")
    pod = deployment["spec"]["template"]["spec"]
    config = default_render.one("ConfigMap", "config")["data"]
    path = Path(config["TAILORLINE_GATEWAY_RAYJOB_TEMPLATE_FILE"])
    (mount,) = [
        m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == str(path.parent)
    ]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    configmap = default_render.one("ConfigMap", "retrain")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert path.name in configmap["data"]
    (rayjob,) = rayjobs_in_configmaps(default_render)
    assert rayjob["spec"]["entrypoint"] == "tailorline retrain"
    assert rayjob["metadata"]["namespace"] == "tl-test"
    # the scheduled run is the same job as the one the gateway launches
    assert default_render.one("RayCronJob")["spec"]["jobTemplate"] == rayjob["spec"]


def test_serve_config_is_embedded_byte_for_byte_from_the_chart_copy(default_render):
    embedded = default_render.one("RayService")["spec"]["serveConfigV2"]
    assert embedded == (CHART / "files" / "serve_config.yaml").read_text()


def _serve_config_source() -> Path:
    """The project file the chart's copy comes from, as scripts/sync-chart-files.sh names it."""
    script = (REPO / "scripts" / "sync-chart-files.sh").read_text()
    (source,) = re.findall(r'"([^":]+):helm/tailorline/files/serve_config\.yaml"', script)
    return REPO / source


def test_serve_config_is_the_projects_serve_config(default_render):
    source = _serve_config_source()
    assert source.is_file(), f"scripts/sync-chart-files.sh copies {source}, which does not exist"
    embedded = default_render.one("RayService")["spec"]["serveConfigV2"]
    assert embedded.encode() == source.read_bytes(), (
        "helm/tailorline/files/serve_config.yaml is stale: run bash scripts/sync-chart-files.sh"
    )


def test_predictor_runs_the_cli_contract_on_the_model_pvc(default_render):
    predictor = default_render.one("InferenceService")["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["args"] == [
        "predictor",
        "--models",
        "/mnt/models",
        "--http-port",
        "8080",
        "--grpc-port",
        "8081",
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    claim = default_render.one("PersistentVolumeClaim")["metadata"]["name"]
    assert env["STORAGE_URI"] == f"pvc://{claim}"
    assert {p["containerPort"] for p in container["ports"]} == {8080, 8081}
    assert predictor["minReplicas"] == 1 and predictor["maxReplicas"] == 4


@pytest.mark.parametrize(
    "content",
    [
        "a: 1\n  \nb: |\n  x  \n",  # whitespace-only line, trailing spaces
        "a: 1",  # no final newline
        "a: 1\n\n\n",  # several final newlines
        "k: v\r\nw: x\r\n",  # CRLF
    ],
    ids=["trailing-spaces", "no-final-newline", "final-blank-lines", "crlf"],
)
def test_serve_config_embedding_is_exact_for_awkward_files(helm, tmp_path, content):
    """Whatever the Serve config looks like, serveConfigV2 carries it unchanged."""
    chart = tmp_path / "tailorline"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("ci"))
    (chart / "files" / "serve_config.yaml").write_bytes(content.encode())
    result = helm(
        "template", "rel", str(chart), "--show-only", "templates/optimizer-rayservice.yaml"
    )
    assert result.returncode == 0, result.output
    (service,) = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert service["spec"]["serveConfigV2"] == content


def test_chart_ports_match_the_serve_config(default_render):
    """The optimizer Service and NetworkPolicy open the port Serve's gRPC proxy listens on."""
    embedded = yaml.safe_load(default_render.one("RayService")["spec"]["serveConfigV2"])
    grpc_port = embedded["grpc_options"]["port"]
    serve_service = default_render.one("RayService")["spec"]["serveService"]["spec"]
    assert grpc_port in {p["port"] for p in serve_service["ports"] if p["name"] == "grpc"}
    policy = default_render.one("NetworkPolicy", "optimizer")
    opened = {p["port"] for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])}
    assert grpc_port in opened
    url = default_render.one("ConfigMap", "config")["data"]["TAILORLINE_GATEWAY_OPTIMIZER_URL"]
    assert url.endswith(f":{grpc_port}")


def test_schedule_kind_picks_raycronjob_or_a_plain_cronjob(render, default_render):
    assert default_render.of_kind("RayCronJob") and not default_render.of_kind("CronJob")
    dev = render(CHART / "ci" / "cpu-dev-values.yaml")
    assert not dev.of_kind("RayCronJob")
    (cron,) = dev.of_kind("CronJob")
    assert cron["spec"]["schedule"] == "0 2 * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["bash", "-c", "exec tailorline retrain"]
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/mnt/models", "/var/run/secrets/tailorline", "/tmp"} <= mounts


def test_internal_database_url_survives_any_password(helm):
    """The chart-made TAILORLINE_DB_URL parses back to the password the database is given."""
    password = "p@ss:w/rd+ %?#"
    result = helm(
        "template",
        "rel",
        str(CHART),
        "--show-only",
        "templates/secrets.yaml",
        "--set-string",
        f"database.internal.password={password}",
    )
    assert result.returncode == 0, result.output
    (pg,) = [d for d in yaml.safe_load_all(result.stdout) if d and "POSTGRES_PASSWORD" in d["data"]]
    assert base64.b64decode(pg["data"]["POSTGRES_PASSWORD"]).decode() == password
    url = make_url(base64.b64decode(pg["data"]["TAILORLINE_DB_URL"]).decode())
    assert url.password == password
    assert (url.host, url.port, url.database) == ("rel-tailorline-postgresql", 5432, "tailorline")
