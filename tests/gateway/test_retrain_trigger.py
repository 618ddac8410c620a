"""The gateway's retrain trigger and job following (services.training.retraining.Retraining),
with the monitoring library and the launcher replaced by fakes: it fires a retrain with the
trigger's reason, never blocks or fails the feedback call that set it off, coalesces bursts, and
asks the predictor to load a model only when the job promoted one."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.common.errors import FailedPrecondition
from services.training.retraining import Retraining


@dataclass(frozen=True)
class Decision:
    fire: bool
    reason: str
    trigger_id: int | None = None
    detail: str = ""


@dataclass
class FakeLauncher:
    """Creates the row like a real launcher; the 'job' finishes it with ``result``."""

    engine: Any
    result: dict[str, Any] | None = None
    submitted: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)
    name: str = "fake"

    def submit(self, models: list[str], config: dict[str, Any]) -> str:
        from services.store.jobs import claim_job, create_job, finish_job

        job_id = create_job(self.engine, config, self.name)
        self.submitted.append((models, config))
        if self.result is not None:
            claim_job(self.engine, job_id)
            finish_job(self.engine, job_id, result=self.result)
        return job_id

    def status(self, job_id: str) -> str:
        return "RUNNING"


def _wait(cond: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_fired_trigger_launches_a_retrain_with_its_reason_and_links_the_job(engine):
    launcher = FakeLauncher(engine)
    attached: list[tuple[int, str]] = []
    r = Retraining(
        engine,
        launcher,
        policy=object(),
        poll_s=0.05,
        trigger_config={"trials": 2, "max_epochs": 3},
        evaluate=lambda eng, policy: Decision(True, "wape", trigger_id=7, detail="F01 0.9"),
        attach_job=lambda eng, tid, job: attached.append((tid, job)),
    )
    r.feedback_stored()
    assert r.wait_idle()
    r.close()
    [(models, config)] = launcher.submitted
    assert models == ["demand"]
    assert config == {"trials": 2, "max_epochs": 3, "trigger": "wape", "trigger_id": 7}
    assert len(attached) == 1 and attached[0][0] == 7


def test_below_threshold_launches_nothing(engine):
    launcher = FakeLauncher(engine)
    r = Retraining(
        engine,
        launcher,
        policy=object(),
        evaluate=lambda eng, policy: Decision(False, "below threshold"),
        attach_job=lambda *a: None,
    )
    r.feedback_stored()
    assert r.wait_idle()
    assert launcher.submitted == []


def test_feedback_never_waits_for_or_fails_with_the_evaluation(engine):
    gate = threading.Event()
    calls: list[int] = []

    def slow_failing(eng: Any, policy: Any) -> Decision:
        calls.append(1)
        gate.wait(20)
        raise RuntimeError("store away")

    r = Retraining(
        engine, FakeLauncher(engine), policy=object(), evaluate=slow_failing, attach_job=None
    )
    r.feedback_stored()
    _wait(lambda: len(calls) == 1)  # one evaluation is running (and hangs)
    started = time.monotonic()
    for _ in range(50):  # a burst of RecordEvents calls meanwhile
        r.feedback_stored()
    returned = time.monotonic() - started
    gate.set()
    assert r.wait_idle()
    assert returned < 5  # generous: the calls only schedule work
    assert len(calls) == 2  # the running one, plus one for everything that arrived meanwhile
    r.feedback_stored()  # the thread survived the failures
    assert r.wait_idle() and len(calls) == 3


def test_without_a_policy_feedback_evaluates_nothing(engine):
    calls: list[int] = []
    r = Retraining(engine, FakeLauncher(engine), evaluate=lambda *a: calls.append(1))
    r.feedback_stored()
    assert r.wait_idle() and calls == []


@pytest.mark.parametrize("promoted", [True, False])
def test_the_predictor_loads_a_model_only_when_the_job_promoted_one(engine, promoted):
    loaded: list[str] = []
    launcher = FakeLauncher(engine, result={"promoted": promoted, "served_version": 3})
    r = Retraining(engine, launcher, on_promoted=loaded.append, poll_s=0.05)
    job_id = r.submit(["demand"], {})
    r.followers[job_id].join(20)
    assert not r.followers[job_id].is_alive()
    assert loaded == (["demand"] if promoted else [])


def test_no_launcher_is_a_failed_precondition(engine):
    with pytest.raises(FailedPrecondition, match="launcher"):
        Retraining(engine, None).submit(["demand"], {})


def test_the_real_monitoring_policy_is_called_as_the_library_expects(engine):
    """services.monitoring's evaluate/attach_job (not fakes): an empty store has no data."""
    from services.monitoring import TriggerPolicy

    launcher = FakeLauncher(engine)
    r = Retraining(engine, launcher, policy=TriggerPolicy())
    decision = r.evaluate_once()
    assert (decision.fire, decision.reason) == (False, "no data")
    assert launcher.submitted == []


def test_record_events_schedules_the_trigger_only_when_it_stored_orders(gateway_home: Path):
    """The servicer's hook on the session's store (no stack needed): stored orders schedule one
    evaluation after the stream; a stream of duplicates or of no orders schedules none."""
    import asyncio

    from tailorline.v1 import feedback_service_pb2 as fb

    from services.common.settings import CoreSettings
    from services.gateway.servicers.feedback import FeedbackServicer
    from services.store import load_frames, make_engine

    core = CoreSettings(home=gateway_home)
    eng = make_engine(core.resolved_db_url)
    variant = str(load_frames(eng)["variants"]["variant_id"].iloc[0])
    calls: list[int] = []
    servicer = FeedbackServicer(
        eng, core, batch_size=10, max_events=100, on_orders=lambda: calls.append(1)
    )

    def order(order_id: str) -> fb.RecordEventsRequest:
        return fb.RecordEventsRequest(
            order=fb.Order(
                order_id=order_id,
                customer_id="CUST-T",
                variant_id=variant,
                quantity=1,
                unit_price=50.0,
                order_date="2026-11-20",
                due_date="2026-12-04",
                kind="stock",
            )
        )

    async def send(events: list[fb.RecordEventsRequest]) -> fb.RecordEventsResponse:
        async def stream() -> Any:
            for e in events:
                yield e

        return await servicer.RecordEvents(stream(), None)

    try:
        reply = asyncio.run(send([order("TRIG-1"), order("TRIG-2")]))
        assert reply.stored == 2 and calls == [1]
        reply = asyncio.run(send([order("TRIG-1")]))  # a re-sent stream stores nothing
        assert reply.duplicates == 1 and calls == [1]
        asyncio.run(send([fb.RecordEventsRequest()]))  # no order at all
        assert calls == [1]
    finally:
        eng.dispose()
