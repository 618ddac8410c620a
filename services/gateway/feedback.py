"""RecordEvents as plain logic: streamed events -> ingest tables -> one transaction per batch.

Validation, de-duplication and pseudonymisation are the importer's (``services.ingest``): an
event id already stored, or repeated in the batch, is counted as a duplicate and ignored; a
rejected event is reported with its position in the stream, its id, the field and the reason.

What feedback sets off afterwards - the retrain trigger, launching and following retraining
jobs - is :class:`Retraining` (plain threads; no gRPC, Ray or Kubernetes imports of its own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from services.common.settings import CoreSettings

log = logging.getLogger("tailorline.gateway.retraining")

#: table -> the column that is the event's id (market: built from week and family).
ID_COLUMNS = {"orders": "order_id", "production": "record_id", "reviews": "review_id"}


NO_LAUNCHER = (
    "no retraining launcher is configured in this gateway (local: set "
    "TAILORLINE_GATEWAY_RAY_ADDRESS, as `tailorline up` does; kuberay: "
    "TAILORLINE_GATEWAY_RAYJOB_TEMPLATE_FILE)"
)


@dataclass(frozen=True)
class Event:
    """One streamed event: its position in the stream, its table and its row (file format)."""

    index: int
    table: str
    row: dict[str, Any]

    @property
    def event_id(self) -> str:
        if self.table == "market":
            return f"{self.row.get('week', '')}/{self.row.get('family_id', '')}"
        return str(self.row.get(ID_COLUMNS[self.table], ""))


@dataclass(frozen=True)
class EventIssue:
    index: int
    event_id: str
    field: str
    reason: str


@dataclass
class FeedbackSummary:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[EventIssue] = field(default_factory=list)

    def add(self, other: FeedbackSummary) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.errors.extend(other.errors)


def record_batch(
    events: Sequence[Event], engine: Engine, settings: CoreSettings
) -> FeedbackSummary:
    """Validate and store one batch in one transaction (the importer's)."""
    from services.ingest import ingest_frames

    summary = FeedbackSummary(received=len(events))
    if not events:
        return summary
    by_table: dict[str, list[Event]] = {}
    for ev in events:
        by_table.setdefault(ev.table, []).append(ev)
    frames = {t: pd.DataFrame([e.row for e in evs]) for t, evs in by_table.items()}
    report = ingest_frames(frames, engine, settings, source="feedback")
    label_to_table = {f"<{t}>": t for t in by_table}
    seen_rows: set[tuple[str, int]] = set()
    dup_rows: set[tuple[str, int]] = set()
    for issue in report.issues:
        table = label_to_table.get(issue.file, issue.file)
        key = (table, issue.row)
        if issue.reason.startswith("duplicate"):
            dup_rows.add(key)
            continue
        if key in seen_rows or table not in by_table or not 1 <= issue.row <= len(by_table[table]):
            continue
        seen_rows.add(key)
        ev = by_table[table][issue.row - 1]
        summary.errors.append(EventIssue(ev.index, ev.event_id, issue.column, issue.reason))
    for counts in report.tables:
        summary.stored += counts.loaded + counts.updated
        summary.duplicates += counts.already_present
    summary.duplicates += len(dup_rows - seen_rows)
    summary.rejected = len(summary.errors)
    summary.errors.sort(key=lambda e: e.index)
    return summary


# --------------------------------------------------------------------------- retraining


class Retraining:
    """The gateway's retraining: launch jobs, follow them, and the feedback-driven trigger.

    * :meth:`submit` hands a job to the launcher (``services.training.launch``) and follows it in a
      daemon thread until its row ends; when the job promoted a model, ``on_promoted(name)`` asks
      the predictor to load it (the predictor also notices ``current`` changing by itself).
    * :meth:`feedback_stored` is called after RecordEvents committed orders. It returns at once:
      one background thread evaluates ``policy`` (``services.monitoring.evaluate``) and, when it
      fires, submits a retrain with the trigger's reason in the job's config and links the job
      to the trigger (``attach_job``). Feedback arriving during an evaluation schedules one more
      evaluation, never a queue of them. Nothing here can fail or slow the RPC that stored it.
    """

    def __init__(
        self,
        engine: Engine,
        launcher: Any,
        *,
        on_promoted: Callable[[str], None] | None = None,
        poll_s: float = 2.0,
        policy: Any = None,
        trigger_config: dict[str, Any] | None = None,
        evaluate: Callable[..., Any] | None = None,
        attach_job: Callable[[Engine, int, str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.launcher = launcher
        self.on_promoted = on_promoted
        self.poll_s = poll_s
        self.policy = policy
        self.trigger_config = dict(trigger_config or {})
        self._evaluate = evaluate
        self._attach = attach_job
        self._lock = threading.Lock()
        self._dirty = False
        self._evaluator: threading.Thread | None = None
        self._closed = threading.Event()
        self.followers: dict[str, threading.Thread] = {}

    # -- jobs --------------------------------------------------------------------------------
    def submit(self, models: Sequence[str], config: dict[str, Any]) -> str:
        """Launch one job (blocking: the launcher's API call) and start following it."""
        if self.launcher is None:
            from services.common.errors import FailedPrecondition

            raise FailedPrecondition(NO_LAUNCHER)
        job_id = str(self.launcher.submit(list(models), dict(config)))
        thread = threading.Thread(
            target=self._follow, args=(job_id,), name=f"retrain-{job_id}", daemon=True
        )
        self.followers[job_id] = thread
        thread.start()
        return job_id

    def _follow(self, job_id: str) -> None:
        from services.training.launch import follow

        try:
            result = follow(
                self.engine, self.launcher, job_id, poll_s=self.poll_s, stop=self._closed.is_set
            )
        except Exception:
            log.exception("retrain job %s: following it failed", job_id)
            return
        if result and result.get("promoted") and self.on_promoted is not None:
            try:
                self.on_promoted("demand")
                log.info(
                    "retrain job %s: predictor loads demand v%s",
                    job_id,
                    result.get("served_version"),
                )
            except Exception as exc:  # the predictor's own watch picks it up later
                log.warning("retrain job %s: predictor load failed: %s", job_id, exc)

    # -- trigger -----------------------------------------------------------------------------
    def feedback_stored(self) -> None:
        """Schedule one trigger evaluation (non-blocking; no-op without a policy)."""
        if self.policy is None or self._closed.is_set():
            return
        with self._lock:
            self._dirty = True
            if self._evaluator is not None and self._evaluator.is_alive():
                return
            self._evaluator = threading.Thread(
                target=self._trigger_loop, name="retrain-trigger", daemon=True
            )
            self._evaluator.start()

    def _trigger_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                if not self._dirty:
                    self._evaluator = None
                    return
                self._dirty = False
            try:
                self.evaluate_once()
            except Exception:
                log.exception("retrain trigger: evaluation failed")

    def evaluate_once(self) -> Any:
        """Evaluate the policy now; launch and link a retrain when it fires. The decision."""
        if self._evaluate is None or self._attach is None:
            from services.monitoring import attach_job, evaluate

            self._evaluate = self._evaluate or evaluate
            self._attach = self._attach or attach_job
        decision = self._evaluate(self.engine, self.policy)
        if not decision.fire:
            log.debug("retrain trigger: %s", decision.reason)
            return decision
        trigger_id = int(decision.trigger_id or 0)
        config = {**self.trigger_config, "trigger": str(decision.reason), "trigger_id": trigger_id}
        log.info("retrain trigger fired (%s): %s", decision.reason, decision.detail)
        job_id = self.submit(["demand"], config)
        self._attach(self.engine, trigger_id, job_id)
        return decision

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Until no trigger evaluation is running or scheduled (tests)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                busy = self._dirty or (self._evaluator is not None and self._evaluator.is_alive())
            if not busy:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._closed.set()
