"""The retraining the gateway sets off: launch jobs, follow them, and the feedback trigger.

Plain threads; no gRPC, Ray or Kubernetes imports of its own (the launcher brings those). The
gateway's server builds one :class:`Retraining` and its servicers call it:
``ModelService.Retrain`` (:meth:`Retraining.submit`) and ``FeedbackService.RecordEvents``
(:meth:`Retraining.feedback_stored`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from services import monitoring
from services.common.errors import FailedPrecondition
from services.training.launch import follow

# the gateway's logger name, as before the class moved here (log filters may name it)
log = logging.getLogger("tailorline.gateway.retraining")

NO_LAUNCHER = (
    "no retraining launcher is configured in this gateway (local: set "
    "TAILORLINE_GATEWAY_RAY_ADDRESS, as `tailorline up` does; kuberay: "
    "TAILORLINE_GATEWAY_RAYJOB_TEMPLATE_FILE)"
)


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
        self._evaluate: Callable[..., Any] = evaluate or monitoring.evaluate
        self._attach: Callable[[Engine, int, str], None] = attach_job or monitoring.attach_job
        self._lock = threading.Lock()
        self._dirty = False
        self._evaluator: threading.Thread | None = None
        self._closed = threading.Event()
        self.followers: dict[str, threading.Thread] = {}

    # -- jobs --------------------------------------------------------------------------------
    def submit(self, models: Sequence[str], config: dict[str, Any]) -> str:
        """Launch one job (blocking: the launcher's API call) and start following it."""
        if self.launcher is None:
            raise FailedPrecondition(NO_LAUNCHER)
        job_id = str(self.launcher.submit(list(models), dict(config)))
        thread = threading.Thread(
            target=self._follow, args=(job_id,), name=f"retrain-{job_id}", daemon=True
        )
        self.followers[job_id] = thread
        thread.start()
        return job_id

    def _follow(self, job_id: str) -> None:
        try:
            result = follow(
                self.engine, self.launcher, job_id, poll_s=self.poll_s, stop=self._closed.is_set
            )
        except Exception:
            log.exception("retrain job %s: following it failed", job_id)
            return
        if not result or self.on_promoted is None:
            return
        decisions = [result, result.get("cost") or {}]
        for decision in decisions:
            if not decision.get("promoted"):
                continue
            name = str(decision.get("model") or "demand")
            try:
                self.on_promoted(name)
                log.info(
                    "retrain job %s: predictor loads %s v%s",
                    job_id,
                    name,
                    decision.get("served_version"),
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
