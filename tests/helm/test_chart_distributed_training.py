"""The distributed-training RayJob (training.distributed): off by default; on, it runs
`tailorline train --workers N` on a RayCluster of N Ray workers, passes the KubeRay RayJob CRD
schema, and shares the model repository's volume (the Parquet export) with every pod."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helm.conftest import HelmResult, parse, template_args


def _train_job(helm: Callable[..., HelmResult], *sets: str) -> dict[str, Any]:
    args = [a for s in ("training.distributed.enabled=true", *sets) for a in ("--set", s)]
    result = helm(*template_args(None, *args))
    assert result.returncode == 0, result.output
    (job,) = [
        o for o in parse("train", result.stdout).of_kind("RayJob")
        if o["metadata"]["name"].endswith("-train")
    ]  # fmt: skip
    return job


def test_no_training_rayjob_by_default(default_render) -> None:
    assert not [o for o in default_render.of_kind("RayJob")
                if o["metadata"]["name"].endswith("-train")]  # fmt: skip


@pytest.mark.parametrize("workers", [2, 8])
def test_training_rayjob_has_n_workers_and_passes_the_crd(
    helm: Callable[..., HelmResult], crd_validate, workers: int
) -> None:
    job = _train_job(helm, f"training.distributed.workers={workers}")
    assert crd_validate(job) == []
    spec = job["spec"]
    assert spec["entrypoint"] == (
        f"tailorline train --workers {workers} --parquet /mnt/models/.distributed-training --json"
    )
    (group,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == workers
    assert spec["shutdownAfterJobFinishes"] is True
    pods = [spec["rayClusterSpec"]["headGroupSpec"]["template"], group["template"]]
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert "tailorline-trainer" in container["image"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["models"]["mountPath"] == "/mnt/models"
        assert mounts["models"]["readOnly"] is False  # the driver writes the export there
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "4", "memory": "8Gi"}


def test_bad_training_values_are_refused_naming_the_value(
    helm: Callable[..., HelmResult],
) -> None:
    for bad, name in (("workers=0", "workers"), ("exportPath=/tmp/x", "exportPath"),
                      ("wrkers=3", "wrkers")):  # fmt: skip
        args = ["--set", "training.distributed.enabled=true", "--set",
                f"training.distributed.{bad}"]  # fmt: skip
        result = helm(*template_args(None, *args))
        assert result.returncode != 0, bad
        assert name in result.output, result.output
