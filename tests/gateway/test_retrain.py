"""ModelService.Retrain end to end on the session's local stack: a real Ray job on the
optimizer's Ray (local launcher), GetRetrainJob with both metrics, a worse challenger that is not
promoted while forecasts keep being answered, and a promotion that reaches the running predictor
without a restart or a failed request."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from tailorline.v1 import model_service_pb2 as mp
from tailorline.v1 import model_service_pb2_grpc as mp_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from services.common.settings import CoreSettings
from services.local.stack import LocalStack
from tests.gateway.helpers import AUTH, code_of

#: A challenger that cannot be good: one 4-unit layer, one epoch at a learning rate of 1.0 (on the
#: tiny preset its hold-out WAPE is about 0.99 against the served 1-epoch model's 0.66; a barely
#: trained one, learning rate 1e-7, would be 0.667: too close to call "worse" reliably).
WORSE = {
    "trials": 1,
    "max_epochs": 1,
    "holdout_weeks": 4,
    "space": {"layers": [1], "units": [4], "learning_rate": [1.0], "head_units": [0]},
}


@dataclass
class ForecastLoop:
    """Clients asking the gateway for forecasts non-stop; every outcome is kept."""

    channel: grpc.Channel
    variant: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        stub = pb_grpc.PlanningServiceStub(self.channel)
        request = pb.ForecastDemandRequest(
            variants=[pb.VariantRef(variant_id=self.variant)], horizon=2
        )
        while not self._stop.is_set():
            try:
                reply = stub.ForecastDemand(request, metadata=AUTH, timeout=60)
                self.ok += 1
                self.versions.append(reply.model_version)
            except grpc.RpcError as exc:
                self.failures.append(f"{exc.code()}: {exc.details()}")
            time.sleep(0.05)

    def __enter__(self) -> ForecastLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(120)


def _models(channel: grpc.Channel) -> Any:
    return mp_grpc.ModelServiceStub(channel)


def _served(channel: grpc.Channel) -> dict[str, int]:
    reply = _models(channel).ListModels(mp.ListModelsRequest(name="demand"), metadata=AUTH)
    return {m.status: m.version for m in reply.models if m.served}


def _job(channel: grpc.Channel, job_id: str) -> dict[str, Any]:
    reply = _models(channel).GetRetrainJob(
        mp.GetRetrainJobRequest(job_id=job_id), metadata=AUTH, timeout=30
    )
    return json_format.MessageToDict(reply.job, preserving_proto_field_name=True)


@pytest.fixture(scope="module")
def engine(stack: LocalStack) -> Iterator[Any]:
    from services.store.db import make_engine

    eng = make_engine(stack.core.resolved_db_url)
    yield eng
    eng.dispose()


def _no_job_active(engine: Any, timeout_s: float = 600) -> None:
    """Another test's job must not promote a model in the middle of ours."""
    from sqlalchemy import select

    from services.store import schema

    t = schema.retrain_jobs
    deadline = time.monotonic() + timeout_s
    while True:
        with engine.connect() as conn:
            active = conn.execute(
                select(t.c.job_id).where(t.c.status.in_(("pending", "running")))
            ).all()
        if not active:
            return
        assert time.monotonic() < deadline, f"retrain jobs still active: {active}"
        time.sleep(2)


def test_unknown_model_bad_config_and_unknown_job_are_refused(
    channel: grpc.Channel, engine: Any
) -> None:
    from sqlalchemy import func, select

    from services.store import schema

    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(schema.retrain_jobs)).scalar()
    models = _models(channel)
    for request in (
        mp.RetrainRequest(models=["price"]),
        mp.RetrainRequest(models=["demand"], config=_struct({"trails": 2})),
        mp.RetrainRequest(models=["demand"], config=_struct({"trials": 1.5})),
    ):
        code = code_of(lambda r=request: models.Retrain(r, metadata=AUTH, timeout=30))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    with engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(schema.retrain_jobs)).scalar()
    assert after == before  # nothing was launched
    code = code_of(
        lambda: models.GetRetrainJob(mp.GetRetrainJobRequest(job_id="f" * 16), metadata=AUTH)
    )
    assert code == grpc.StatusCode.NOT_FOUND


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def test_the_stacks_ray_job_api_wants_the_token(stack: LocalStack) -> None:
    """The optimizer's Ray runs with token auth: a plain call (curl) cannot list or stop jobs;
    the stack's token file (the one the gateway's launcher sends) can."""
    import urllib.error
    import urllib.request

    from services.training.launch import auth_headers

    def status(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
        url = f"{stack.ray_address}{path}"
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, method=method, headers=headers or {}), timeout=10
            ) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert status("/api/jobs/") == 401
    assert status("/api/jobs/x/stop", "POST") == 401
    assert status("/api/jobs/", headers=auth_headers(stack.ray_auth_token_file)) == 200


def test_worse_challenger_runs_as_a_ray_job_is_not_promoted_and_serving_never_stops(
    channel: grpc.Channel, engine: Any, frames: dict[str, Any]
) -> None:
    _no_job_active(engine)
    served_before = _served(channel)["served"]
    variant = str(frames["variants"]["variant_id"].iloc[0])
    with ForecastLoop(channel, variant) as loop:
        reply = _models(channel).Retrain(
            mp.RetrainRequest(models=["demand"], config=_struct(WORSE)), metadata=AUTH, timeout=60
        )
        job_id = reply.job.job_id
        assert reply.job.status in ("pending", "running") and reply.job.launcher == "local-ray"
        deadline = time.monotonic() + 600
        job = _job(channel, job_id)
        while job["status"] in ("pending", "running"):
            assert time.monotonic() < deadline, f"job still {job['status']} after 600 s"
            time.sleep(2)
            job = _job(channel, job_id)
    assert job["status"] == "succeeded", job.get("error")
    result = job["result"]
    print(  # shown with -s: what the job measured
        f"\nretrain job {job_id}: wape before {result['metric_before']} after "
        f"{result['metric_after']} promoted {result['promoted']}, {loop.ok} forecasts answered, "
        f"{len(loop.failures)} failed, {job['started_at']} -> {job['finished_at']}"
    )
    assert result["metric"] == "wape"
    assert result["metric_before"] > 0 and result["metric_after"] > 0
    assert result["metric_after"] > result["metric_before"]  # the worse one lost
    assert result["promoted"] is False
    assert result["champion_version"] == served_before
    assert len(result["trials"]) == 1
    assert job["started_at"] and job["finished_at"]
    # the candidate is registered, the served model is the same one, and it never stopped
    listed = _models(channel).ListModels(mp.ListModelsRequest(name="demand"), metadata=AUTH)
    status = {m.version: m.status for m in listed.models}
    assert status[int(result["challenger_version"])] == "candidate"
    assert _served(channel)["served"] == served_before
    assert loop.ok > 0 and loop.failures == []
    assert set(loop.versions) == {served_before}


def test_promotion_reaches_the_running_predictor_without_failed_requests(
    channel: grpc.Channel, stack: LocalStack, engine: Any, frames: dict[str, Any]
) -> None:
    """The promotion path a winning job takes (registry + ``current``, then the V2 repository
    load the gateway sends): the running predictor answers with the new version at once."""
    from services.gateway.server import load_on_predictor
    from services.registry.promote import promote
    from services.registry.publish import register_version
    from services.registry.repository import ModelRepository

    _no_job_active(engine)
    repo = ModelRepository(CoreSettings(home=stack.core.home).resolved_models_dir)
    old = _served(channel)["served"]
    new = max(repo.versions("demand")) + 1
    # the same weights as a new version (a retrain's winner, without the minutes of training)
    src, dst = Path(repo.version_dir("demand", old)), Path(repo.version_dir("demand", new))
    shutil.copytree(src, dst)
    meta = (dst / "metadata.json").read_text().replace(f'"version": {old}', f'"version": {new}')
    (dst / "metadata.json").write_text(meta)
    register_version(engine, repo, "demand", new)
    variant = str(frames["variants"]["variant_id"].iloc[0])
    try:
        with ForecastLoop(channel, variant) as loop:
            time.sleep(1)
            promote(engine, repo, "demand", new)
            load_on_predictor(stack.predictor_target, "demand")
            seen = len(loop.versions)
            time.sleep(1.5)
        assert loop.failures == [] and loop.ok > 0
        # once loaded, only the new one answers (the one request in flight may be the old one)
        assert set(loop.versions[seen + 1 :]) == {new}
        assert _served(channel) == {"served": new}
    finally:
        promote(engine, repo, "demand", old)  # later tests see the model the session trained
        load_on_predictor(stack.predictor_target, "demand")
    assert _served(channel) == {"served": old}


def test_stopping_the_stack_stops_a_running_job_and_fails_its_row(
    channel: grpc.Channel, stack: LocalStack, engine: Any
) -> None:
    """A job's driver runs in its own session on the optimizer's Ray; `LocalStack.stop` stops it
    first, and its row says so (it would otherwise stay `running` and block triggers)."""
    from services.store.jobs import job_status

    _no_job_active(engine)
    served = _served(channel)["served"]
    config = {**WORSE, "trials": 4, "max_epochs": 50, "space": {"units": [4, 8, 16, 32]}}
    reply = _models(channel).Retrain(
        mp.RetrainRequest(models=["demand"], config=_struct(config)), metadata=AUTH, timeout=60
    )
    job_id = reply.job.job_id
    deadline = time.monotonic() + 300
    while job_status(engine, job_id) == "pending":
        assert time.monotonic() < deadline, "the job never claimed its row"
        time.sleep(1)
    assert stack.stop_ray_jobs() == [job_id]
    job = _job(channel, job_id)
    assert job["status"] == "failed" and "stopped" in job["error"]
    assert _served(channel)["served"] == served
