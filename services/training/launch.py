"""Launchers: where a retraining job runs. One interface, two places.

``submit(models, config) -> job_id`` checks the request against the bounds
(:mod:`services.training.limits`), creates the job's ``retrain_jobs`` row (``pending``, with the
checked config as data, so the id exists and ``GetRetrainJob`` answers at once) and hands
``tailorline retrain --job-id ID`` to Ray: only the id travels on the command line, never the
config (no argv limit, nothing of the caller's in a process list). The job claims the row
(``running``), reads its config from it, and finishes it (``succeeded``/``failed``).
``status(job_id)`` is the launcher's own view (Ray's job status, the RayJob's ``jobStatus``):
:func:`reconcile` marks a row ``failed`` when Ray says the job ended but the row never did (an
entrypoint that crashed before claiming it, a killed driver).

* :class:`LocalRayLauncher`: Ray job submission (``JobSubmissionClient``) to the local stack's
  Ray (the optimizer's, started with its dashboard/job server); the job joins that cluster.
* :class:`KubeRayLauncher`: a ``ray.io/v1`` RayJob from the chart's template (the gateway's
  ``rayjob_template_file``), created with ``CustomObjectsApi.create_namespaced_custom_object``.

``config`` (``RetrainRequest.config``) keys and bounds: :data:`~services.training.limits.
CONFIG_LIMITS`. Ray and kubernetes are imported only inside the methods that need them.
"""

from __future__ import annotations

import copy
import logging
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from services.common.errors import FailedPrecondition, InvalidArgument, Unavailable, shown
from services.store.jobs import create_job, finish_job, job_result, job_status
from services.training.limits import check_config

log = logging.getLogger(__name__)

MODELS = ("demand", "cost")
#: launcher-side states that end a job (Ray's JobStatus names; RayJob jobStatus uses the same)
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")


class Launcher(Protocol):
    name: str

    def submit(self, models: Sequence[str], config: dict[str, Any]) -> str: ...

    def status(self, job_id: str) -> str: ...


def check_request(models: Sequence[str], config: Any) -> dict[str, Any]:
    """Validate a Retrain request against the bounds (:mod:`services.training.limits`); return
    the config as stored (numbers with their types, the space's choices typed)."""
    for i, name in enumerate(models):
        if name not in MODELS:
            raise InvalidArgument(
                f"unknown or not retrainable model {shown(name)}; retrainable: {', '.join(MODELS)}",
                field=f"models[{i}]",
            )
    config = check_config(config)
    if list(models) not in ([], ["demand"]):  # the job reads which models from its row
        config["models"] = list(dict.fromkeys(models))
    return config


def retrain_args(job_id: str) -> list[str]:
    """The ``tailorline retrain`` arguments (after ``retrain``) that run ``job_id``: only its id.
    The job reads its config from its row (``claim_job``), never from a command line."""
    return ["--job-id", job_id]


def reconcile(engine: Any, job_id: str, launcher_state: str, detail: str = "") -> str | None:
    """The row's status after taking the launcher's view into account.

    A job the launcher says ended while its row is still pending/running failed without saying
    so (crashed before claiming the row, or was killed): its row is marked ``failed``.
    """
    status = job_status(engine, job_id)
    if status in ("pending", "running") and launcher_state in ENDED:
        # re-read: the job may have finished its row between the two reads
        time.sleep(0.5)
        status = job_status(engine, job_id)
        if status in ("pending", "running"):
            what = f"the {launcher_state.lower()} launcher job never finished its row"
            finish_job(engine, job_id, error=f"{what}{': ' + detail if detail else ''}")
            status = "failed"
    return status


def follow(
    engine: Any,
    launcher: Launcher,
    job_id: str,
    *,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any] | None:
    """Block until the job's row ends (reconciling with the launcher); return its result."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not stop():
        try:
            state = launcher.status(job_id)
        except Exception as exc:  # the launcher's API is down: the row still tells
            log.warning("retrain job %s: launcher status failed: %s", job_id, exc)
            state = "UNKNOWN"
        status = reconcile(engine, job_id, state)
        if status in ("succeeded", "failed", None):
            return job_result(engine, job_id)
        if deadline is not None and time.monotonic() > deadline:
            return None
        time.sleep(poll_s)
    return None


# --------------------------------------------------------------------------- local Ray


@dataclass
class LocalRayLauncher:
    """Ray job submission to a running Ray's job server (``http://127.0.0.1:<dashboard port>``).

    ``env``: variables the job gets (store URL, models folder, home), so the job writes where
    the gateway reads. The entrypoint is this interpreter's ``python -m services.cli retrain``.

    ``auth_token_file``: for a Ray started with token authentication (``RAY_AUTH_MODE=token``,
    ``RAY_AUTH_TOKEN_PATH`` = this file, mode 0600): every job API call carries
    ``Authorization: Bearer <token>`` (Ray's job server answers 401 without it, 403 with a wrong
    one), and the job's driver gets the same two variables so it can join that Ray. The local
    stack's Ray runs so, with ``<home>/ray_auth_token`` (the gateway's ``ray_auth_token_file``).
    """

    engine: Any
    address: str
    env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable
    name: str = "local-ray"
    agent_wait_s: float = 60.0
    auth_token_file: Path | None = None
    _client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            headers = auth_headers(self.auth_token_file)
            try:
                self._client = JobSubmissionClient(self.address, headers=headers or None)
            except Exception as exc:
                raise Unavailable(f"no Ray job server at {self.address}: {exc}") from None
        return self._client

    def job_env(self) -> dict[str, str]:
        """The job's environment: ``env``, and the token settings when Ray wants a token."""
        env = dict(self.env)
        if self.auth_token_file is not None:
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.auth_token_file))
        return env

    @staticmethod
    def submission_id(job_id: str) -> str:
        return f"tailorline-retrain-{job_id}"

    def entrypoint(self, job_id: str) -> str:
        argv = [self.python, "-m", "services.cli", "retrain", *retrain_args(job_id)]
        return shlex.join(argv)

    def submit(self, models: Sequence[str], config: dict[str, Any]) -> str:
        config = check_request(models, config)
        client = self.client()
        job_id = create_job(self.engine, config, self.name)
        deadline = time.monotonic() + self.agent_wait_s
        try:
            while True:
                try:
                    client.submit_job(
                        entrypoint=self.entrypoint(job_id),
                        submission_id=self.submission_id(job_id),
                        runtime_env={"env_vars": self.job_env()},
                        metadata={"tailorline_job_id": job_id},
                    )
                    break
                except RuntimeError as exc:  # the job agent starts after the dashboard
                    if "No available agent" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)
        except Exception as exc:
            finish_job(self.engine, job_id, error=f"submission failed: {exc}")
            raise Unavailable(f"Ray job submission to {self.address} failed: {exc}") from None
        log.info("retrain job %s submitted to Ray at %s", job_id, self.address)
        return job_id

    def status(self, job_id: str) -> str:
        return str(self.client().get_job_status(self.submission_id(job_id)).value)

    def logs(self, job_id: str) -> str:
        return str(self.client().get_job_logs(self.submission_id(job_id)))


def auth_headers(token_file: Path | None) -> dict[str, str]:
    """The job API's ``Authorization`` header for Ray's token auth; {} without a token file."""
    if token_file is None:
        return {}
    try:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise Unavailable(f"cannot read the Ray auth token {token_file}: {exc}") from None
    if not token:
        raise Unavailable(f"the Ray auth token file {token_file} is empty")
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- KubeRay


def load_template(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FailedPrecondition(f"cannot read the RayJob template {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "RayJob":
        raise FailedPrecondition(f"{path} is not a RayJob manifest")
    return doc


#: longest RayJob name: KubeRay derives the cluster's and pods' names from it (63-char limit)
MAX_NAME = 47


def build_rayjob(template: dict[str, Any], job_id: str, namespace: str) -> dict[str, Any]:
    """The RayJob to create for ``job_id``: the template with its own name, namespace, a job-id
    label and ``<template entrypoint> --job-id ID`` (image and resources stay the chart's; the
    job's config is in its row)."""
    obj = copy.deepcopy(template)
    meta = obj.setdefault("metadata", {})
    suffix = f"-{job_id[:12]}"
    base = str(meta.get("name") or "tailorline-retrain")[: MAX_NAME - len(suffix)].rstrip("-")
    meta["name"] = base + suffix
    meta["namespace"] = namespace
    meta.setdefault("labels", {})["tailorline.io/retrain-job-id"] = job_id
    for key in ("resourceVersion", "uid", "creationTimestamp", "generateName"):
        meta.pop(key, None)
    obj.pop("status", None)
    spec = obj.setdefault("spec", {})
    base_cmd = str(spec.get("entrypoint") or "tailorline retrain")
    spec["entrypoint"] = f"{base_cmd} {shlex.join(retrain_args(job_id))}"
    return obj


@dataclass
class KubeRayLauncher:
    """Creates a RayJob per retrain in ``namespace`` (the gateway's ServiceAccount may create and
    get ``rayjobs`` there: the chart's Role). ``api``: a ``CustomObjectsApi`` (None = one from the
    in-cluster config, else the kubeconfig) - the one seam the tests replace."""

    engine: Any
    template_file: Path
    namespace: str
    api: Any = None
    name: str = "kuberay"
    _names: dict[str, str] = field(default_factory=dict)

    GROUP = "ray.io"
    VERSION = "v1"
    PLURAL = "rayjobs"

    def custom_objects(self) -> Any:
        if self.api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self.api = client.CustomObjectsApi()
        return self.api

    def build(self, job_id: str) -> dict[str, Any]:
        return build_rayjob(load_template(self.template_file), job_id, self.namespace)

    def submit(self, models: Sequence[str], config: dict[str, Any]) -> str:
        config = check_request(models, config)
        template = load_template(self.template_file)
        api = self.custom_objects()
        job_id = create_job(self.engine, config, self.name)
        body = build_rayjob(template, job_id, self.namespace)
        try:
            api.create_namespaced_custom_object(
                group=self.GROUP,
                version=self.VERSION,
                namespace=self.namespace,
                plural=self.PLURAL,
                body=body,
            )
        except Exception as exc:
            finish_job(self.engine, job_id, error=f"RayJob not created: {exc}")
            raise Unavailable(f"creating RayJob {body['metadata']['name']} failed: {exc}") from None
        self._names[job_id] = body["metadata"]["name"]
        log.info("retrain job %s: RayJob %s created", job_id, body["metadata"]["name"])
        return job_id

    def status(self, job_id: str) -> str:
        name = self._names.get(job_id)
        if name is None:
            return "UNKNOWN"  # created by another gateway replica: the row tells
        obj = self.custom_objects().get_namespaced_custom_object(
            group=self.GROUP,
            version=self.VERSION,
            namespace=self.namespace,
            plural=self.PLURAL,
            name=name,
        )
        status = obj.get("status") or {}
        if status.get("jobDeploymentStatus") == "Failed":
            return "FAILED"
        return str(status.get("jobStatus") or "PENDING")


def make_launcher(
    kind: str,
    engine: Any,
    *,
    ray_address: str = "",
    env: dict[str, str] | None = None,
    template_file: Path | None = None,
    namespace: str = "default",
    auth_token_file: Path | None = None,
) -> Launcher | None:
    """The configured launcher, or None when it cannot work here (no Ray address / template).
    ``auth_token_file``: the local Ray's token (see :class:`LocalRayLauncher`)."""
    if kind == "kuberay":
        if template_file is None:
            return None
        return KubeRayLauncher(engine, Path(template_file), namespace)
    if not ray_address:
        return None
    return LocalRayLauncher(
        engine, ray_address, env=dict(env or {}), auth_token_file=auth_token_file
    )
