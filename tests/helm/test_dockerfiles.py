"""The images' Dockerfiles follow the rules the chart relies on (no Docker engine here, so the
files are checked as text): one per role, multi-stage, pinned bases, a non-root final user with
the uid the chart runs it as, no compilers added to the final stage, and one Ray version across
pyproject.toml, the Ray images and the chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
ROLES = ["gateway", "predictor", "optimizer", "trainer"]
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|python3?-dev)\b")


def stages(text: str) -> list[str]:
    return re.split(r"(?m)^FROM\s", text)[1:]


def resolved_bases(text: str) -> list[str]:
    args = dict(re.findall(r"(?m)^ARG\s+(\w+)=(\S+)", text))
    bases = re.findall(r"(?m)^FROM\s+(\S+)", text)
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], b) for b in bases]


@pytest.mark.parametrize("role", ROLES)
def test_dockerfile_is_multistage_pinned_and_non_root(role):
    text = (DOCKER / f"{role}.Dockerfile").read_text()
    assert len(stages(text)) >= 2, "multi-stage: build, then a final stage"
    for base in resolved_bases(text):
        if base == "build" or " AS " in base:
            continue
        _, _, tag = base.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"unpinned base {base}"
    final = stages(text)[-1]
    users = re.findall(r"(?m)^USER\s+(\S+)", final)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "final stage runs as root"
    assert not BUILD_TOOLS.search(final), (
        f"build tools in the final stage: {BUILD_TOOLS.search(final)}"
    )
    assert f"docker build -f docker/{role}.Dockerfile" in text, "documented build command"


def test_final_uids_are_the_ones_the_chart_runs_as():
    values = yaml.safe_load((REPO / "helm" / "tailorline" / "values.yaml").read_text())
    expected = {
        "gateway": values["gateway"]["runAsUser"],
        "predictor": values["predictor"]["runAsUser"],
        "optimizer": values["optimizer"]["runAsUser"],
        "trainer": values["optimizer"]["runAsUser"],
    }
    for role, uid in expected.items():
        final = stages((DOCKER / f"{role}.Dockerfile").read_text())[-1]
        user = re.findall(r"(?m)^USER\s+(\S+)", final)[-1].split(":")[0]
        assert int(user) == uid, role


def test_containers_run_the_cli_contract():
    gateway = (DOCKER / "gateway.Dockerfile").read_text()
    assert 'ENTRYPOINT ["tailorline"]' in gateway and 'CMD ["gateway"]' in gateway
    predictor = (DOCKER / "predictor.Dockerfile").read_text()
    assert (
        'CMD ["predictor", "--models", "/mnt/models", "--http-port", "8080", "--grpc-port", "8081"]'
        in predictor
    )
    assert "tensorflow/tensorflow:" in predictor and "-gpu" in predictor


def test_one_ray_version_everywhere():
    pinned = re.search(r'"ray\[[^]]*\]==([\d.]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned
    values = yaml.safe_load((REPO / "helm" / "tailorline" / "values.yaml").read_text())
    assert values["optimizer"]["rayVersion"] == pinned.group(1)
    for role in ("optimizer", "trainer"):
        bases = resolved_bases((DOCKER / f"{role}.Dockerfile").read_text())
        assert all(f"rayproject/ray:{pinned.group(1)}-" in b for b in bases if b != "build"), bases
