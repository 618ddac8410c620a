"""Retraining inside the simulation: notice a fired trigger, run the job, wait for it.

After each simulated week's feedback the driver asks, in this order:

1. did the gateway start a retrain job by itself (its monitoring wiring evaluates the trigger
   policy after RecordEvents)? Then wait for that job;
2. otherwise evaluate the same :class:`~services.monitoring.triggers.TriggerPolicy` here
   (:func:`services.monitoring.triggers.evaluate` on the store, as of the next data week); when it
   fires, start the job through the gateway (``ModelService.Retrain``); a gateway without a
   launcher (FAILED_PRECONDITION) makes the driver run :func:`services.training.job.retrain` in this
   process instead.

Either way the simulation waits for the job to finish before the next week, so a run is
deterministic for its seed. The record keeps the trigger's reason, whether the challenger was
promoted and both hold-out metrics (champion = before, challenger = after).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import grpc
from sqlalchemy import Engine

from services.monitoring.triggers import attach_job, evaluate
from services.store.jobs import job_ids


@dataclass(frozen=True)
class RetrainRecord:
    week: int  # simulated week index (0 = first simulated week) whose feedback fired it
    trigger: str
    promoted: bool
    metric_before: float | None
    metric_after: float | None
    job_id: str = ""
    via: str = ""  # "gateway" (ModelService.Retrain / the gateway's own trigger) or "in-process"
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "trigger": self.trigger,
            "promoted": self.promoted,
            "metric_before": self.metric_before,
            "metric_after": self.metric_after,
        }


def _num(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


class RetrainDriver:
    """See the module docstring. ``train`` runs a job in process and returns its record."""

    def __init__(
        self,
        engine: Engine,
        client: Any,
        policy: Any,
        train_in_process: Callable[[], dict[str, Any]],
        *,
        job_config: dict[str, Any] | None = None,
        poll_s: float = 2.0,
        job_timeout_s: float = 1800.0,
        say: Callable[[str], None] = print,
    ) -> None:
        self.engine = engine
        self.client = client
        self.policy = policy
        self.train_in_process = train_in_process
        self.job_config = job_config or {}
        self.poll_s = poll_s
        self.job_timeout_s = job_timeout_s
        self.say = say
        self.known = job_ids(engine)
        self.records: list[RetrainRecord] = []

    def _wait(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.job_timeout_s
        while True:
            job = self.client.get_retrain_job(job_id)
            if job.get("status") in ("succeeded", "failed"):
                return job
            if time.monotonic() > deadline:
                return {**job, "status": "failed", "error": "timed out waiting for the job"}
            time.sleep(self.poll_s)

    def _record(self, week: int, trigger: str, job: dict[str, Any], via: str) -> RetrainRecord:
        result = job.get("result") or {}
        record = RetrainRecord(
            week=week,
            trigger=trigger,
            promoted=bool(result.get("promoted", False)) and job.get("status") == "succeeded",
            metric_before=_num(result.get("champion")),
            metric_after=_num(result.get("challenger")),
            job_id=str(job.get("job_id", "")),
            via=via,
            detail=str(job.get("error") or result.get("reason") or ""),
        )
        self.records.append(record)
        self.known = job_ids(self.engine)
        return record

    def after_week(self, week: int, as_of: date) -> RetrainRecord | None:
        """Called once the week's feedback is stored; ``as_of`` = Monday of the next week."""
        started = sorted(job_ids(self.engine) - self.known)
        if started:  # the gateway's own trigger launched it
            return self._record(week, "gateway trigger", self._wait(started[-1]), "gateway")
        decision = evaluate(self.engine, self.policy, as_of=as_of)
        if not decision.fire:
            return None
        detail = decision.detail or ""
        trigger = detail if detail.startswith(decision.reason) else f"{decision.reason}: {detail}"
        self.say(f"      retrain triggered ({trigger})")
        try:
            config = {**self.job_config, "trigger": trigger[:500]}
            if decision.trigger_id is not None:
                config["trigger_id"] = int(decision.trigger_id)
            job = self.client.retrain(["demand"], config)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            result = self.train_in_process()
            job = {"job_id": result.get("job_id", ""), "status": "succeeded", "result": result}
            via = "in-process"
        else:
            job = self._wait(str(job["job_id"]))
            via = "gateway"
        if decision.trigger_id is not None and job.get("job_id"):
            attach_job(self.engine, decision.trigger_id, str(job["job_id"]))
        return self._record(week, trigger, job, via)
