"""The launcher protocol without Ray or Kubernetes: the job row a launcher creates (pending), the
job claiming it exactly once, the argv a launcher submits, and a Ray job that died before finishing
its row. The Ray job server client is replaced at its one seam (``LocalRayLauncher._client``)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from sqlalchemy import select

from services.common.errors import FailedPrecondition, NotFound, Unavailable
from services.store import schema
from services.store.jobs import claim_job, create_job, finish_job, job_status
from services.training.launch import LocalRayLauncher, reconcile, retrain_args


class FakeJobClient:
    """What ``ray.job_submission.JobSubmissionClient`` is asked, and its answers."""

    def __init__(self, error: Exception | None = None, errors_first: int = 0) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.error = error
        self.errors_first = errors_first
        self.state = "RUNNING"

    def submit_job(self, **kwargs: Any) -> str:
        if self.error is not None and self.errors_first != 0:
            self.errors_first -= 1
            raise self.error
        self.jobs[kwargs["submission_id"]] = kwargs
        return str(kwargs["submission_id"])

    def get_job_status(self, submission_id: str) -> Any:
        from ray.job_submission import JobStatus

        return JobStatus(self.state)


def _row(engine: Any, job_id: str) -> Any:
    t = schema.retrain_jobs
    with engine.connect() as conn:
        return conn.execute(select(t).where(t.c.job_id == job_id)).first()


def test_a_job_is_claimed_once_and_finished_once(engine):
    job_id = create_job(engine, {"trials": 2, "trigger": "bias"}, "local-ray")
    assert job_status(engine, job_id) == "pending" and _row(engine, job_id).started_at is None
    assert claim_job(engine, job_id) == {"trials": 2, "trigger": "bias"}
    assert job_status(engine, job_id) == "running" and _row(engine, job_id).started_at
    with pytest.raises(FailedPrecondition, match="running, not pending"):
        claim_job(engine, job_id)  # a retried Ray job must not run it twice
    finish_job(engine, job_id, result={"promoted": False})
    finish_job(engine, job_id, error="late failure")  # an ended row stays as it ended
    assert job_status(engine, job_id) == "succeeded" and _row(engine, job_id).error is None
    with pytest.raises(NotFound):
        claim_job(engine, "nope")


def test_the_local_launcher_submits_the_retrain_command_for_the_pending_row(engine):
    client = FakeJobClient()
    env = {"TAILORLINE_DB_URL": "sqlite:///x.db"}
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", env=env, _client=client)
    job_id = launcher.submit(["demand"], {"trials": 3.0, "margin": 0.02, "trigger": "drift"})
    [(sid, job)] = client.jobs.items()
    assert sid == f"tailorline-retrain-{job_id}"
    argv = shlex.split(job["entrypoint"])
    assert argv[1:4] == ["-m", "services.cli", "retrain"]
    # only the id on the command line: the config is the row's, as data
    assert argv[4:] == ["--job-id", job_id]
    assert job["runtime_env"] == {"env_vars": env}
    row = _row(engine, job_id)
    assert (row.status, row.launcher, row.config["trigger"]) == ("pending", "local-ray", "drift")
    assert row.config == {"trials": 3, "margin": 0.02, "trigger": "drift"}
    assert isinstance(row.config["trials"], int)
    assert claim_job(engine, job_id) == row.config  # what the job reads
    assert launcher.status(job_id) == "RUNNING"


def test_a_job_agent_that_is_still_starting_is_waited_for(engine):
    client = FakeJobClient(RuntimeError("500: No available agent to submit job"), errors_first=2)
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client, agent_wait_s=30)
    job_id = launcher.submit([], {})
    assert len(client.jobs) == 1 and job_status(engine, job_id) == "pending"


def test_a_refused_submission_fails_the_row_and_the_call(engine):
    client = FakeJobClient(RuntimeError("connection refused"), errors_first=-1)
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client)
    with pytest.raises(Unavailable, match="connection refused"):
        launcher.submit(["demand"], {})
    with engine.connect() as conn:
        (row,) = conn.execute(select(schema.retrain_jobs)).all()
    assert row.status == "failed" and "connection refused" in row.error


def test_a_ray_job_that_died_before_finishing_its_row_is_failed(engine):
    client = FakeJobClient()
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client)
    job_id = launcher.submit(["demand"], {})
    assert reconcile(engine, job_id, launcher.status(job_id)) == "pending"
    client.state = "FAILED"  # e.g. the entrypoint crashed before claiming the row
    assert reconcile(engine, job_id, launcher.status(job_id)) == "failed"
    assert "never finished its row" in _row(engine, job_id).error
    # a job that finished its row is left as it finished
    done = launcher.submit(["demand"], {})
    claim_job(engine, done)
    finish_job(engine, done, result={"promoted": True})
    assert reconcile(engine, done, "FAILED") == "succeeded"


def test_the_search_space_is_stored_with_the_job_not_passed_on_argv(engine):
    client = FakeJobClient()
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client)
    space = {"units": [8.0, 16.0], "learning_rate": [1e-3]}
    job_id = launcher.submit(["demand"], {"space": space, "trigger_id": 4})
    [job] = client.jobs.values()
    assert "units" not in job["entrypoint"] and "--space" not in job["entrypoint"]
    assert retrain_args(job_id) == ["--job-id", job_id]
    stored = _row(engine, job_id).config
    assert stored == {"space": {"units": [8, 16], "learning_rate": [1e-3]}, "trigger_id": 4}


def test_a_ray_with_token_auth_gets_the_token_on_every_call_and_in_the_job(
    engine, tmp_path, monkeypatch
):
    """Ray 2.60's token auth: the job server answers 401 to a call without
    ``Authorization: Bearer <token>`` (a plain curl cannot list or stop jobs); the launcher sends
    it, and the job's driver gets RAY_AUTH_MODE=token and the token file to join that Ray."""
    import ray.job_submission

    token = tmp_path / "ray_auth_token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    made: list[dict[str, Any]] = []
    fake = FakeJobClient()

    def client(address: str, headers: Any = None) -> FakeJobClient:
        made.append({"address": address, "headers": headers})
        return fake

    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", client)
    launcher = LocalRayLauncher(
        engine, "http://127.0.0.1:1", env={"RAY_AUTH_MODE": "disabled"}, auth_token_file=token
    )
    job_id = launcher.submit(["demand"], {})
    assert made == [
        {"address": "http://127.0.0.1:1", "headers": {"Authorization": "Bearer s3cret"}}
    ]
    [job] = fake.jobs.values()
    assert job["runtime_env"]["env_vars"] == {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
    }
    assert job_status(engine, job_id) == "pending"
    # no token file configured: no header (a Ray without auth)
    made.clear()
    LocalRayLauncher(engine, "http://127.0.0.1:1").client()
    assert made == [{"address": "http://127.0.0.1:1", "headers": None}]
    token.unlink()
    with pytest.raises(Unavailable, match="Ray auth token"):
        LocalRayLauncher(engine, "http://127.0.0.1:1", auth_token_file=token).client()
