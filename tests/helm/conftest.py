"""Fixtures of the offline chart checks: find helm, render each values file once, split objects.

`make test` puts ``.tools/bin`` (filled by ``scripts/get-helm.sh``) on PATH; the tests also look
there directly, so ``pytest tests/helm`` works after ``bash scripts/get-helm.sh .tools/bin``.
Every values file is rendered once per session and cached: helm runs a handful of times in all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
KUBE_VERSION = "1.31.0"
NAMESPACE = "tl-test"
RELEASE = "rel"

#: libyaml's loader when PyYAML has it: the CRDs are megabytes of YAML.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Every values file the chart must accept: the chart's CI files and the k8s/ examples.
VALUES_FILES = sorted((CHART / "ci").glob("*.yaml")) + sorted((REPO / "k8s").glob("values-*.yaml"))


def values_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def find_helm() -> str | None:
    local = REPO / ".tools" / "bin" / "helm"
    found = shutil.which("helm")
    if found:
        return found
    return str(local) if os.access(local, os.X_OK) else None


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(scope="session")
def helm() -> Callable[..., HelmResult]:
    binary = find_helm()
    if binary is None:
        pytest.fail(
            "helm not found on PATH or in .tools/bin: run `bash scripts/get-helm.sh .tools/bin` "
            "(`make test` does it for you)"
        )

    def run(*args: str) -> HelmResult:
        proc = subprocess.run(
            [binary, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "HELM_CACHE_HOME": "/tmp/tailorline-helm-cache"},
        )
        return HelmResult(proc.returncode, proc.stdout, proc.stderr)

    return run


def template_args(values: Path | None, *extra: str) -> list[str]:
    args = [
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ]
    if values is not None:
        args += ["-f", str(values)]
    return [*args, *extra]


@dataclass(frozen=True)
class Rendered:
    """The objects of one `helm template` run, hooks (helm test pods) included."""

    values: str
    objects: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, component: str | None = None) -> dict[str, Any]:
        found = [
            o
            for o in self.of_kind(kind)
            if component is None
            or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"{self.values}: expected one {kind} {component or ''}, got {found}"
        return found[0]


def parse(values: str, text: str) -> Rendered:
    objects = tuple(d for d in yaml.load_all(text, Loader=_LOADER) if d)
    return Rendered(values, objects)


@pytest.fixture(scope="session")
def render(helm: Callable[..., HelmResult]) -> Callable[[Path | None], Rendered]:
    """Render a values file (None = the chart defaults) once per session."""
    cache: dict[Path | None, Rendered] = {}

    def get(values: Path | None) -> Rendered:
        if values not in cache:
            result = helm(*template_args(values))
            assert result.returncode == 0, f"helm template failed for {values}:\n{result.output}"
            cache[values] = parse(str(values or "defaults"), result.stdout)
        return cache[values]

    return get


@pytest.fixture(scope="session")
def default_render(render: Callable[[Path | None], Rendered]) -> Rendered:
    return render(None)


@pytest.fixture(scope="session")
def all_renders(render: Callable[[Path | None], Rendered]) -> list[Rendered]:
    return [render(None), *(render(v) for v in VALUES_FILES)]


# --------------------------------------------------------------------------- pod specs


@dataclass(frozen=True)
class PodSpec:
    """A pod spec found in a rendered object (also inside custom resources)."""

    where: str
    component: str
    spec: dict[str, Any]
    labels: dict[str, str]


def rayjob_templates(rendered: Rendered) -> list[dict[str, Any]]:
    """RayJob manifests stored in ConfigMaps (the gateway's launcher template)."""
    found = []
    for cm in rendered.of_kind("ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            if key.endswith((".yaml", ".yml")):
                doc = yaml.safe_load(text)
                if isinstance(doc, dict) and doc.get("kind") == "RayJob":
                    found.append(doc)
    return found


def _ray_cluster_pods(where: str, cluster: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield f"{where}.headGroupSpec", cluster["headGroupSpec"]["template"]
    for group in cluster.get("workerGroupSpecs", []):
        yield f"{where}.workerGroupSpecs[{group['groupName']}]", group["template"]


def pod_specs(rendered: Rendered) -> list[PodSpec]:
    found: list[PodSpec] = []

    def add(where: str, template: dict[str, Any]) -> None:
        labels = template.get("metadata", {}).get("labels", {})
        component = labels.get("app.kubernetes.io/component", "?")
        found.append(PodSpec(where, component, template["spec"], labels))

    for obj in [*rendered.objects, *rayjob_templates(rendered)]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        where = f"{kind}/{name}"
        spec = obj.get("spec", {})
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            add(where, spec["template"])
        elif kind == "CronJob":
            add(where, spec["jobTemplate"]["spec"]["template"])
        elif kind == "Pod":
            add(where, obj)
        elif kind == "InferenceService":
            predictor = spec["predictor"]
            component = predictor["labels"]["app.kubernetes.io/component"]
            found.append(PodSpec(where, component, predictor, predictor["labels"]))
        elif kind == "RayService":
            for w, t in _ray_cluster_pods(where, spec["rayClusterConfig"]):
                add(w, t)
        elif kind == "RayJob":
            for w, t in _ray_cluster_pods(where, spec["rayClusterSpec"]):
                add(w, t)
        elif kind == "RayCronJob":
            for w, t in _ray_cluster_pods(where, spec["jobTemplate"]["rayClusterSpec"]):
                add(w, t)
    return found


@pytest.fixture(scope="session")
def pods() -> Callable[[Rendered], list[PodSpec]]:
    """The pod specs of a render (test modules cannot import conftest under importlib mode)."""
    return pod_specs


@pytest.fixture(scope="session")
def rayjobs_in_configmaps() -> Callable[[Rendered], list[dict[str, Any]]]:
    return rayjob_templates


@pytest.fixture(scope="session")
def values_files() -> list[Path]:
    assert VALUES_FILES, "no values files found under helm/tailorline/ci/ or k8s/"
    return VALUES_FILES


# --------------------------------------------------------------------------- CRD schemas


def structural_to_jsonschema(node: Any) -> Any:
    """Translate a Kubernetes structural schema (OpenAPI v3 + x-kubernetes-*) to JSON Schema.

    As the API server sees it: int-or-string accepts both; preserve-unknown-fields allows extra
    keys, otherwise listed ``properties`` are closed; ``nullable`` allows null; a required field
    that has a default is filled by defaulting before ``required`` is checked; CEL rules
    (x-kubernetes-validations) cannot run offline and are dropped.
    """
    if isinstance(node, list):
        return [structural_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: structural_to_jsonschema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = structural_to_jsonschema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [structural_to_jsonschema(v) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    if "required" in out:
        props = node.get("properties", {})
        out["required"] = [r for r in out["required"] if "default" not in props.get(r, {})]
    return out


@pytest.fixture(scope="session")
def crd_validate(k8s_schemas_dir: Path) -> Callable[[dict[str, Any]], list[str]]:
    """validate(obj) -> errors (empty = valid) against the CRD of the object's apiVersion/kind."""
    import gzip

    from jsonschema import Draft7Validator

    validators: dict[tuple[str, str], Draft7Validator] = {}
    for path in sorted(k8s_schemas_dir.glob("*.yaml.gz")):
        with gzip.open(path, "rt") as fh:
            for crd in yaml.load_all(fh, Loader=_LOADER):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = structural_to_jsonschema(version["schema"]["openAPIV3Schema"])
                    validators[(f"{group}/{version['name']}", kind)] = Draft7Validator(schema)

    def validate(obj: dict[str, Any]) -> list[str]:
        key = (obj["apiVersion"], obj["kind"])
        if key not in validators:
            return [f"no CRD schema for {key} in {k8s_schemas_dir}"]
        errors = validators[key].iter_errors(obj)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]

    return validate
