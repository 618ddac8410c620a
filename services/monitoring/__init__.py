"""Monitoring and retrain triggers: served forecasts against actuals, input drift, when to retrain.

A plain library (no gRPC, Ray, KServe or TensorFlow of its own) that the gateway and the simulator
call with a store engine. Rules and defaults: docs/monitoring.md. Public surface::

    from services.monitoring import (
        forecast_errors,   # per family x complete week: actual, P50, WAPE, bias, coverage, ...
        variant_errors,    # the same per variant x week (the chosen forecast and the actual)
        segment_errors,    # bias per family x attribute value (e.g. fabric=linen)
        input_drift,       # per family: trend_index shift and attribute-mix shift vs training
        TriggerPolicy,     # thresholds, window, thin-family floor, cooldown, enabled
        TriggerDecision,   # fire, reason, metrics, worst families, as_of_week, trigger_id
        FamilyHealth,      # one family's window metrics inside a decision
        evaluate,          # measure, decide, record a fired trigger in retrain_triggers
        attach_job,        # link the retrain job started for a trigger
        list_triggers,     # the fired triggers (TriggerRecord), oldest data week first
        loop_snapshot,     # the loop at a glance (LoopSnapshot): metrics and `tailorline status`
    )

Typical use (gateway, after feedback arrived; simulator, once per simulated week)::

    decision = evaluate(engine, TriggerPolicy(), as_of=current_week)
    if decision.fire:
        job_id = start_retrain(...)  # the caller's launcher
        attach_job(engine, decision.trigger_id, job_id)
"""

from __future__ import annotations

from services.monitoring.accuracy import (
    FAMILY_COLUMNS,
    VARIANT_COLUMNS,
    as_of_week,
    forecast_errors,
    segment_errors,
    select_forecasts,
    variant_errors,
)
from services.monitoring.drift import DRIFT_COLUMNS, ReferenceWindow, input_drift, reference_window
from services.monitoring.snapshot import LoopSnapshot, loop_snapshot, retrain_counts
from services.monitoring.triggers import (
    REASONS,
    FamilyHealth,
    TriggerDecision,
    TriggerPolicy,
    TriggerRecord,
    attach_job,
    evaluate,
    family_health,
    list_triggers,
)

__all__ = [
    "DRIFT_COLUMNS",
    "FAMILY_COLUMNS",
    "REASONS",
    "VARIANT_COLUMNS",
    "FamilyHealth",
    "LoopSnapshot",
    "ReferenceWindow",
    "TriggerDecision",
    "TriggerPolicy",
    "TriggerRecord",
    "as_of_week",
    "attach_job",
    "evaluate",
    "family_health",
    "forecast_errors",
    "input_drift",
    "list_triggers",
    "loop_snapshot",
    "reference_window",
    "retrain_counts",
    "segment_errors",
    "select_forecasts",
    "variant_errors",
]
