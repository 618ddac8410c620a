"""The loop's metrics: forecast accuracy, coverage and drift per family, retrains, served
versions, the newest plan (docs/metrics.md, "Gateway: the loop").

They describe the store, not this replica: :class:`LoopMetrics` is a Prometheus collector that
serves the last :class:`~services.monitoring.LoopSnapshot`, which :meth:`LoopMetrics.refresh`
reads (in a worker thread, every ``loop_metrics_interval_s``, so a scrape never waits on the
store). A failed refresh keeps the previous values and counts an error.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from services.monitoring import LoopSnapshot, TriggerPolicy, loop_snapshot
from services.monitoring.snapshot import RETRAIN_OUTCOMES

log = logging.getLogger("tailorline.gateway.loop_metrics")


class LoopMetrics(Collector):
    """The collector; register it with :meth:`register`."""

    def __init__(self, engine: Any, policy: TriggerPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or TriggerPolicy()
        self.snapshot: LoopSnapshot | None = None
        self.refreshed_at: float | None = None
        self.errors = 0
        self._lock = threading.Lock()

    def register(self, registry: CollectorRegistry) -> LoopMetrics:
        registry.register(self)
        return self

    def refresh(self) -> LoopSnapshot | None:
        """Read the store now; the previous snapshot stays when that fails."""
        try:
            snapshot = loop_snapshot(self.engine, self.policy)
        except Exception as exc:
            with self._lock:
                self.errors += 1
            log.warning("loop metrics: reading the store failed: %s", exc)
            return None
        with self._lock:
            self.snapshot, self.refreshed_at = snapshot, time.time()
        return snapshot

    def describe(self) -> Iterator[Any]:
        return iter(())  # the names are fixed, but families come and go: no describe-time check

    def collect(self) -> Iterator[Any]:
        with self._lock:
            snap, refreshed, errors = self.snapshot, self.refreshed_at, self.errors
        failures = CounterMetricFamily(
            "tailorline_loop_metrics_refresh_errors",
            "Refreshes of the loop gauges that could not read the store",
        )
        failures.add_metric([], errors)
        yield failures
        if snap is None or refreshed is None:
            return
        fresh = GaugeMetricFamily(
            "tailorline_loop_metrics_last_refresh_timestamp_seconds",
            "When the loop gauges were last read from the store (Unix time)",
        )
        fresh.add_metric([], refreshed)
        yield fresh
        yield from _forecast_families(snap)
        yield from _retrain_families(snap)
        served = GaugeMetricFamily(
            "tailorline_model_served_version", "Served version of each model", labels=["model"]
        )
        for model, version in sorted(snap.served_versions.items()):
            served.add_metric([model], version)
        yield served
        plan = GaugeMetricFamily(
            "tailorline_plan_last_created_timestamp_seconds",
            "When the newest stored plan was made (Unix time; no sample before the first)",
        )
        if snap.last_plan_at is not None:
            plan.add_metric([], snap.last_plan_at.timestamp())
        yield plan


def _forecast_families(snap: LoopSnapshot) -> Iterator[Any]:
    help_window = f"over the last {snap.window_weeks} complete weeks, judged families"
    wape = GaugeMetricFamily(
        "tailorline_forecast_wape_ratio", f"WAPE of the served P50 {help_window}", labels=["family"]
    )
    bias = GaugeMetricFamily(
        "tailorline_forecast_bias_ratio",
        f"(mean - actual) / actual of the served forecasts' means {help_window}",
        labels=["family"],
    )
    coverage = GaugeMetricFamily(
        "tailorline_forecast_interval_coverage_ratio",
        f"Share of variant-weeks with the actual in [P10, P90] {help_window} (0.8 expected)",
        labels=["family"],
    )
    units = GaugeMetricFamily(
        "tailorline_forecast_actual_units",
        f"Units ordered {help_window}",
        labels=["family"],
    )
    drift = GaugeMetricFamily(
        "tailorline_input_drift_ratio",
        "max(|trend shift|, attribute-mix shift) against the served model's training data",
        labels=["family"],
    )
    for f in snap.families:
        units.add_metric([f.family_id], f.actual)
        if f.wape is not None:
            wape.add_metric([f.family_id], f.wape)
        if f.bias is not None:
            bias.add_metric([f.family_id], f.bias)
        if f.coverage is not None:
            coverage.add_metric([f.family_id], f.coverage)
        if f.drift is not None:
            drift.add_metric([f.family_id], f.drift)
    yield from (wape, bias, coverage, units, drift)
    weeks = GaugeMetricFamily(
        "tailorline_forecast_window_weeks", "Complete weeks the forecast gauges cover"
    )
    weeks.add_metric([], snap.window_weeks)
    yield weeks
    as_of = GaugeMetricFamily(
        "tailorline_forecast_as_of_timestamp_seconds",
        "Monday of the data week the forecast gauges are as of (Unix time)",
    )
    if snap.as_of_week is not None:
        as_of.add_metric(
            [], dt.datetime.combine(snap.as_of_week, dt.time(), tzinfo=dt.UTC).timestamp()
        )
    yield as_of
    thresholds = GaugeMetricFamily(
        "tailorline_retrain_trigger_threshold",
        "Thresholds of the retrain trigger",
        labels=["metric"],
    )
    for metric, value in sorted(snap.thresholds.items()):
        thresholds.add_metric([metric], value)
    yield thresholds


def _retrain_families(snap: LoopSnapshot) -> Iterator[Any]:
    retrains = CounterMetricFamily(
        "tailorline_retrains",
        "Retraining jobs by outcome: started (every job), promoted, rejected, failed",
        labels=["outcome"],
    )
    for outcome in RETRAIN_OUTCOMES:
        retrains.add_metric([outcome], snap.retrains.get(outcome, 0))
    yield retrains
    running = GaugeMetricFamily("tailorline_retrains_running", "Jobs pending or running now")
    running.add_metric([], snap.retrains_running)
    yield running
    triggers = CounterMetricFamily(
        "tailorline_retrain_triggers", "Retrain triggers fired, by reason", labels=["reason"]
    )
    for reason, n in sorted(snap.triggers.items()):
        triggers.add_metric([reason], n)
    yield triggers
    last = GaugeMetricFamily(
        "tailorline_retrain_last_promotion_timestamp_seconds",
        "When the last retraining job that promoted a model finished (Unix time; no sample "
        "before the first promotion)",
    )
    if snap.last_promotion is not None:
        last.add_metric([], snap.last_promotion.timestamp())
    yield last
