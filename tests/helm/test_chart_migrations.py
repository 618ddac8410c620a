"""Database migrations on Kubernetes: one Job per install/upgrade runs `tailorline store migrate`
(a pre-install/pre-upgrade hook with an external database; with the chart's own PostgreSQL a plain
Job at install, the hook on upgrades), gateway pods wait for the schema and never migrate, and an
upgrade from the previous chart version keeps every data-bearing object and migrates. What the
command does to a store (empty -> head, previous revision -> head) is tested in
tests/store/test_migrate_command.py."""

from __future__ import annotations

import subprocess
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tailorline"
PROD = CHART / "ci" / "gpu-prod-values.yaml"  # external database
HOOK = "helm.sh/hook"


def _template(helm, chart: Path, *extra: str) -> list[dict[str, Any]]:
    args = ["template", "rel", str(chart), "--namespace", "tl-test", "--kube-version", "1.31.0"]
    result = helm(*args, *extra)
    assert result.returncode == 0, result.output
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def _migrate_jobs(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objs
        if o["kind"] == "Job"
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == "migrate"
    ]


def _db_source(pod_spec: dict[str, Any]) -> tuple[str, str]:
    (secrets,) = [v for v in pod_spec["volumes"] if v["name"] == "secrets"]
    for source in secrets["projected"]["sources"]:
        for item in source["secret"]["items"]:
            if item["path"] == "TAILORLINE_DB_URL":
                return source["secret"]["name"], item["key"]
    raise AssertionError("no TAILORLINE_DB_URL in the secrets volume")


def test_external_database_migrates_in_a_pre_install_pre_upgrade_hook(helm, render):
    objs = list(render(PROD).objects)
    (job,) = _migrate_jobs(objs)
    notes = job["metadata"]["annotations"]
    assert notes[HOOK] == "pre-install,pre-upgrade"
    assert notes["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["args"][:2] == ["store", "migrate"]
    assert container["args"][2] == "--wait-db"
    # the hook's ServiceAccount exists before it (pre-install: the release's do not yet)
    (account,) = [
        o
        for o in objs
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == spec["serviceAccountName"]
    ]
    assert account["metadata"]["annotations"][HOOK] == notes[HOOK]
    weight = int(account["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert weight < int(notes["helm.sh/hook-weight"])
    # the same database Secret and key as the gateway, and nothing else (the application Secret
    # may not exist yet at pre-install)
    gateway = render(PROD).one("Deployment", "gateway")["spec"]["template"]["spec"]
    assert _db_source(spec) == _db_source(gateway) == ("tailorline-db", "url")
    (secrets,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    assert len(secrets["projected"]["sources"]) == 1
    # same image as the gateway: the migrations ship with the code that needs them
    assert container["image"] == gateway["containers"][0]["image"]


def test_internal_database_migrates_in_a_plain_job_at_install_and_a_hook_on_upgrade(helm):
    install = _template(helm, CHART)
    (job,) = _migrate_jobs(install)
    assert HOOK not in job["metadata"].get("annotations", {})  # PostgreSQL is created with it
    assert job["metadata"]["name"].startswith("rel-tailorline-migrate-")
    assert job["spec"]["template"]["metadata"]["labels"]["tailorline.io/db-client"] == "true"
    upgrade = _template(helm, CHART, "--is-upgrade")
    (hook,) = _migrate_jobs(upgrade)
    assert hook["metadata"]["annotations"][HOOK] == "pre-upgrade"
    assert hook["metadata"]["name"] == "rel-tailorline-migrate"


def test_gateway_waits_for_the_schema_and_never_migrates(render):
    for values in (None, PROD):
        spec = render(values).one("Deployment", "gateway")["spec"]["template"]["spec"]
        (wait,) = spec["initContainers"]
        assert wait["args"][:3] == ["store", "check", "--wait"]
        assert [c["args"] for c in spec["containers"]] == [["gateway"]]
        assert _db_source(spec)  # the init container reads the URL from the same volume
    source = (REPO / "services" / "gateway" / "server.py").read_text()
    assert "migrate(" not in source and "require_migrated(engine)" in source


def test_migrations_can_be_left_to_the_operator(helm):
    objs = _template(helm, CHART, "--set", "migrations.enabled=false")
    assert not _migrate_jobs(objs)


# --------------------------------------------------------------------------- upgrade


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    ).stdout


def _previous_chart(tmp_path: Path) -> tuple[str, Path]:
    """The chart at the newest commit whose Chart.yaml has another version than this one."""
    try:
        commits = _git("log", "--format=%H", "--", "helm/tailorline/Chart.yaml").split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history: cannot find the previous chart version")
    current = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    for commit in commits:
        text = _git("show", f"{commit}:helm/tailorline/Chart.yaml")
        version = yaml.safe_load(text)["version"]
        if version != current:
            archive = subprocess.run(
                ["git", "archive", commit, "helm/tailorline"],
                cwd=REPO,
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
            with tarfile.open(fileobj=BytesIO(archive)) as tar:
                tar.extractall(tmp_path, filter="data")
            return version, tmp_path / "helm" / "tailorline"
    pytest.skip(f"every chart in the git history is version {current}")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("-")[0].split("."))


def test_upgrade_from_the_previous_chart_version_keeps_the_data_and_migrates(helm, tmp_path):
    previous_version, previous = _previous_chart(tmp_path)
    current_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    assert _version(current_version) > _version(previous_version), "bump the chart version"
    before = _template(helm, previous)
    after = _template(helm, CHART, "--is-upgrade")

    def kept(objs: list[dict[str, Any]]) -> set[tuple[str, str]]:
        data = ("StatefulSet", "PersistentVolumeClaim", "Secret", "Service")
        return {(o["kind"], o["metadata"]["name"]) for o in objs if o["kind"] in data}

    # the upgrade renames or drops none of the objects that hold or reach data
    assert kept(before) <= kept(after)
    old_pg = [o for o in before if o["kind"] == "StatefulSet"]
    new_pg = [o for o in after if o["kind"] == "StatefulSet"]
    assert [o["spec"]["volumeClaimTemplates"] for o in old_pg] == [
        o["spec"]["volumeClaimTemplates"] for o in new_pg
    ]
    # and it migrates the store before the new gateway pods start
    (hook,) = _migrate_jobs(after)
    assert "pre-upgrade" in hook["metadata"]["annotations"][HOOK].split(",")
