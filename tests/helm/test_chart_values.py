"""Bad values fail `helm lint`/`helm template` with a message that names the offending key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"

BAD_VALUES = {
    # a typo'd key, at the top level and nested
    "typo-top": ("profle: gpu\n", ["profle"]),
    "typo-nested": ("gateway:\n  replicsa: 2\n", ["/gateway", "replicsa"]),
    # a negative replica count
    "negative-replicas": ("gateway:\n  replicas: -1\n", ["/gateway/replicas", "minimum"]),
    "negative-ray-workers": (
        "optimizer:\n  worker:\n    maxReplicas: -3\n",
        ["/optimizer/worker/maxReplicas"],
    ),
    # a GPU request on the CPU profile
    "gpu-on-cpu-profile": ("profile: cpu\n", ["/predictor/gpu/count"]),
    "retrain-gpu-on-cpu-profile": (
        "profile: cpu\npredictor:\n  gpu:\n    count: 0\nretrain:\n  gpu:\n    count: 1\n",
        ["/retrain/gpu/count"],
    ),
    # a GPU smuggled in through resources instead of gpu.count
    "gpu-in-resources": (
        "predictor:\n  resources:\n    requests: {cpu: '1', memory: 1Gi}\n"
        "    limits: {cpu: '1', memory: 1Gi, nvidia.com/gpu: '1'}\n",
        ["/predictor/resources/limits", "nvidia.com/gpu"],
    ),
    # values merge into the defaults, so dropping limits takes an explicit null
    "resources-without-limits": (
        "gateway:\n  resources:\n    limits: null\n",
        ["/gateway/resources", "limits"],
    ),
    "external-db-without-secret": ("database:\n  mode: external\n", ["existingSecret"]),
    # rules between values (templates/_validate.tpl)
    "pdb-blocks-every-drain": (
        "gateway:\n  autoscaling:\n    minReplicas: 1\n",
        ["gateway.pdb.minAvailable=1 would block every node drain"],
    ),
    "ray-workers-min-above-max": (
        "optimizer:\n  worker:\n    minReplicas: 5\n    replicas: 5\n    maxReplicas: 2\n",
        ["optimizer.worker needs minReplicas <= replicas <= maxReplicas"],
    ),
    "kuberay-launcher-without-rbac": ("rbac:\n  create: false\n", ["/rbac/create"]),
    "tls-without-secret": ("gateway:\n  tls:\n    enabled: true\n", ["/gateway/tls/secretName"]),
    # NetworkPolicy peers and egress rules are closed objects too
    "typo-in-network-peer": (
        "networkPolicy:\n  metricsFrom:\n    - namespaceSelectr: {}\n",
        ["/networkPolicy/metricsFrom/0", "namespaceSelectr"],
    ),
    "typo-in-extra-egress": (
        "networkPolicy:\n  egress:\n    extra:\n      gateway:\n        - too: []\n",
        ["/networkPolicy/egress/extra/gateway/0", "too"],
    ),
}
#: Rules a JSON schema cannot state live in templates/_validate.tpl as `fail`; Helm 4's `lint`
#: only logs a template `fail` (and exits 0), so these are checked through `helm template`.
TEMPLATE_ONLY = {"pdb-blocks-every-drain", "ray-workers-min-above-max"}


CASES = [
    (command, case)
    for case in sorted(BAD_VALUES)
    for command in ("lint", "template")
    if not (command == "lint" and case in TEMPLATE_ONLY)
]


@pytest.mark.parametrize(("command", "case"), CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_bad_values_fail_naming_the_key(helm, tmp_path, case, command):
    text, expected = BAD_VALUES[case]
    values = tmp_path / f"{case}.yaml"
    values.write_text(text)
    if command == "lint":
        result = helm("lint", "--strict", str(CHART), "-f", str(values))
    else:
        result = helm("template", "rel", str(CHART), "-f", str(values))
    assert result.returncode != 0, f"{case}: helm {command} accepted it:\n{result.output[:500]}"
    for needle in expected:
        assert needle in result.output, f"{case}: {needle!r} not in:\n{result.output}"


def test_gpu_on_cpu_profile_fails_in_the_template_too(helm, tmp_path):
    """Past the schema (--skip-schema-validation), the template's own rule still names the key."""
    result = helm(
        "template",
        "rel",
        str(CHART),
        "--skip-schema-validation",
        "--set",
        "profile=cpu",
        "--set",
        "predictor.gpu.count=1",
    )
    assert result.returncode != 0
    assert "predictor.gpu.count=1 requests GPUs but profile=cpu" in result.output


def test_cpu_profile_renders_no_gpu_anywhere(render):
    rendered = render(CHART / "ci" / "cpu-dev-values.yaml")
    assert "nvidia.com/gpu" not in str(rendered.objects)
    isvc = rendered.one("InferenceService")
    env = {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}
    assert env["TAILORLINE_PREDICTOR_USE_GPU"] == "false"


def test_gpu_profile_requests_the_gpu_count(default_render):
    container = default_render.one("InferenceService")["spec"]["predictor"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"


def test_every_value_is_documented_in_place():
    """Each leaf of values.yaml has a `# --` comment block above it, or sits in a documented map."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing maps
    for n, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        k = n - 1
        while k >= 0 and lines[k].strip().startswith("#") and "# --" not in lines[k]:
            k -= 1
        documented = k >= 0 and "# --" in lines[k] and k < n
        documented = documented or any(doc for _, doc in stack)
        key, _, rest = stripped.partition(":")
        nxt = lines[n + 1] if n + 1 < len(lines) else ""
        is_map = rest.strip() == "" and len(nxt) - len(nxt.lstrip()) > indent
        if is_map:
            stack.append((indent, documented))
        elif not documented:
            undocumented.append(f"line {n + 1}: {key}")
    assert not undocumented, undocumented


def _walk(schema: dict, values: object, path: str):
    yield path, schema, values
    for key, sub in schema.get("properties", {}).items():
        child = values.get(key) if isinstance(values, dict) else None
        yield from _walk(sub, child, f"{path}.{key}")


def test_schema_closes_every_object_and_matches_values_yaml():
    """additionalProperties: false wherever the schema lists properties, and values.yaml has
    every key the schema requires (so every setting is documented there)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path, node, value in _walk(schema, values, "values"):
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
            assert isinstance(value, dict), f"{path} is in the schema but not in values.yaml"
            assert set(value) <= set(node["properties"]), f"{path}: keys the schema lacks"
            missing = set(node.get("required", [])) - set(value)
            assert not missing, (
                f"{path}: required by the schema, absent from values.yaml: {missing}"
            )


def test_labels_and_release_names_come_only_from_helpers():
    """Templates take labels and name prefixes from _helpers.tpl, never spell them."""
    offenders = []
    for path in sorted((CHART / "templates").rglob("*")):
        if path.name in ("_helpers.tpl", "NOTES.txt") or not path.is_file():
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"app\.kubernetes\.io/|helm\.sh/chart|\.Release\.Name\b", line):
                offenders.append(f"{path.relative_to(CHART)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
