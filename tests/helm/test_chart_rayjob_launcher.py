"""The gateway's KubeRay launcher against the chart: the RayJob it would create from the chart's
template passes the RayJob CRD schema, runs `tailorline retrain --job-id ID` on the chart's
image, and the job row exists (pending) before the API call. The Kubernetes API client is
replaced at its one seam (no API server here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.errors import InvalidArgument, Unavailable
from services.training.launch import KubeRayLauncher, check_request


class FakeCustomObjects:
    """Records create calls the way ``kubernetes.client.CustomObjectsApi`` receives them."""

    def __init__(self, fail: bool = False) -> None:
        self.created: list[dict[str, Any]] = []
        self.fail = fail
        self.status: dict[str, Any] = {}

    def create_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail:
            raise RuntimeError("403 Forbidden")
        self.created.append(kwargs)
        return kwargs["body"]

    def get_namespaced_custom_object(self, **kwargs: Any) -> dict[str, Any]:
        return {"status": self.status}


@pytest.fixture()
def template_file(default_render, rayjobs_in_configmaps, tmp_path: Path) -> Path:
    (rayjob,) = rayjobs_in_configmaps(default_render)
    path = tmp_path / "rayjob.yaml"  # what the gateway reads at /etc/tailorline/rayjob/
    path.write_text(yaml.safe_dump(rayjob))
    return path


def _row(engine: Any, job_id: str) -> Any:
    from sqlalchemy import select

    from services.store import schema

    t = schema.retrain_jobs
    with engine.connect() as conn:
        return conn.execute(select(t).where(t.c.job_id == job_id)).first()


def test_kuberay_launcher_creates_a_rayjob_that_passes_the_crd_schema(
    engine, template_file, crd_validate, rayjobs_in_configmaps, default_render
):
    api = FakeCustomObjects()
    launcher = KubeRayLauncher(engine, template_file, "tl-test", api=api)
    config = {"trials": 8.0, "max_epochs": 5, "trigger": "wape", "space": {"layers": [1, 2]}}
    job_id = launcher.submit(["demand"], config)

    (call,) = api.created
    assert (call["group"], call["version"], call["plural"]) == ("ray.io", "v1", "rayjobs")
    assert call["namespace"] == "tl-test"
    body = call["body"]
    assert crd_validate(body) == []
    assert body["metadata"]["namespace"] == "tl-test"
    assert job_id[:12] in body["metadata"]["name"] and len(body["metadata"]["name"]) <= 47
    assert body["metadata"]["labels"]["tailorline.io/retrain-job-id"] == job_id
    entry = body["spec"]["entrypoint"]
    # only the id on the command line: the job reads its config from its row
    assert entry == f"tailorline retrain --job-id {job_id}"
    # image, resources and cluster shape stay the chart's
    (template,) = rayjobs_in_configmaps(default_render)
    assert body["spec"]["rayClusterSpec"] == template["spec"]["rayClusterSpec"]
    row = _row(engine, job_id)
    assert (row.status, row.launcher) == ("pending", "kuberay")
    assert row.config["trials"] == 8 and row.config["trigger"] == "wape"
    assert row.config["space"] == {"layers": [1, 2]} and row.config["max_epochs"] == 5


def test_two_jobs_get_two_rayjob_names(engine, template_file):
    api = FakeCustomObjects()
    launcher = KubeRayLauncher(engine, template_file, "tl-test", api=api)
    a, b = launcher.submit([], {}), launcher.submit(["demand"], {})
    assert a != b
    names = {c["body"]["metadata"]["name"] for c in api.created}
    assert len(names) == 2


def test_a_refused_create_fails_the_job_row_and_the_call(engine, template_file):
    launcher = KubeRayLauncher(engine, template_file, "tl-test", api=FakeCustomObjects(fail=True))
    with pytest.raises(Unavailable, match="403"):
        launcher.submit(["demand"], {})
    from sqlalchemy import select

    from services.store import schema

    with engine.connect() as conn:
        (row,) = conn.execute(select(schema.retrain_jobs)).all()
    assert row.status == "failed" and "403" in row.error


def test_a_failed_rayjob_marks_its_unfinished_row_failed(engine, template_file):
    from services.training.launch import reconcile

    api = FakeCustomObjects()
    launcher = KubeRayLauncher(engine, template_file, "tl-test", api=api)
    job_id = launcher.submit(["demand"], {})
    assert launcher.status(job_id) == "PENDING"
    api.status = {"jobStatus": "FAILED", "jobDeploymentStatus": "Failed"}
    assert reconcile(engine, job_id, launcher.status(job_id)) == "failed"
    assert "never finished" in _row(engine, job_id).error


@pytest.mark.parametrize(
    ("models", "config", "field"),
    [
        (["price"], {}, "models[0]"),
        (["demand"], {"trails": 3}, "config.trails"),
        (["demand"], {"trials": 2.5}, "config.trials"),
        (["demand"], {"trials": 0}, "config.trials"),
        (["demand"], {"metric": "rmse"}, "config.metric"),
        (["demand"], {"space": {"layers": []}}, "config.space.layers"),
    ],
)
def test_bad_requests_are_refused_before_any_row_or_rayjob(models, config, field):
    with pytest.raises(InvalidArgument) as err:
        check_request(models, config)
    assert err.value.field == field
