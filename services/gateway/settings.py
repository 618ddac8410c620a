"""Settings of the gateway process (env prefix ``TAILORLINE_GATEWAY_``).

Values come from (highest first) explicit arguments, ``TAILORLINE_GATEWAY_*`` environment
variables, files in ``TAILORLINE_SECRETS_DIR`` (a mounted Kubernetes Secret, one file per field,
named like the env var: ``tailorline_gateway_auth_token``), then the defaults below. The Helm
chart sets exactly these env vars; ``tests/helm`` checks that every one it sets is a field here or
in :class:`services.common.settings.CoreSettings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.monitoring.triggers import TriggerPolicy

#: The monitoring's calibrated defaults (docs/monitoring.md, "Defaults and why"): one source, so
#: the deployed gateway fires on what the calibration says it should.
_POLICY = TriggerPolicy()


class GatewaySettings(BaseSettings):
    """How the gateway listens, whom it calls, and how it launches retraining."""

    model_config = SettingsConfigDict(
        env_prefix="TAILORLINE_GATEWAY_",
        extra="forbid",
        secrets_dir=os.environ.get("TAILORLINE_SECRETS_DIR") or None,
    )

    host: str = Field(
        default="127.0.0.1",
        description="Address the gRPC server binds; 0.0.0.0 in a container.",
    )
    port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (0 = any free port).")
    metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="Port of the Prometheus metrics HTTP endpoint (0 = any free port).",
    )
    predictor_url: str = Field(
        default="127.0.0.1:8081",
        description="host:port of the predictor's V2 (Open Inference Protocol) gRPC endpoint.",
    )
    optimizer_url: str = Field(
        default="127.0.0.1:9000",
        description="host:port of the optimizer's gRPC endpoint (Ray Serve gRPC proxy).",
    )
    auth_token: SecretStr | None = Field(
        default=None,
        description="Bearer token clients must send (metadata 'authorization'); None = no auth.",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM server certificate; with tls_key_file enables TLS."
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file.")
    tls_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle; when set, clients must present a certificate it signed (mTLS).",
    )
    max_message_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest gRPC message the gateway sends or receives, in bytes.",
    )
    max_variants: int = Field(
        default=5000, gt=0, description="Most product variants one planning request may hold."
    )
    max_periods: int = Field(
        default=104, gt=0, description="Most planning periods (weeks) one request may hold."
    )
    request_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Deadline, in seconds, of the gateway's calls to predictor and optimizer.",
    )
    drain_grace_s: float | None = Field(
        default=None,
        gt=0,
        description="Seconds in-flight calls get to finish after SIGTERM (health goes NOT_SERVING "
        "and new calls are refused at once). None: request_timeout_s, the longest a plan may run "
        "through the gateway, so a rollout never cuts a plan off. The chart derives the pod's "
        "terminationGracePeriodSeconds from it.",
    )
    retrain_launcher: Literal["local", "kuberay"] = Field(
        default="local",
        description="Where retraining runs: 'local' submits to a local Ray; 'kuberay' creates a "
        "RayJob from rayjob_template_file.",
    )
    rayjob_template_file: Path | None = Field(
        default=None,
        description="RayJob manifest (YAML) the 'kuberay' launcher fills in and creates.",
    )
    namespace: str = Field(
        default="default",
        description="Kubernetes namespace the 'kuberay' launcher creates RayJobs in.",
    )
    ray_address: str = Field(
        default="",
        description="Ray job server the 'local' launcher submits to (http://host:dashboard-port; "
        "`tailorline up` sets it to the optimizer's Ray). Empty: Retrain answers "
        "FAILED_PRECONDITION.",
    )
    ray_auth_token_file: Path | None = Field(
        default=None,
        description="Token file (mode 0600) of a Ray started with token authentication "
        "(RAY_AUTH_MODE=token): the 'local' launcher sends 'Authorization: Bearer <token>' on "
        "every job API call and gives the job's driver the same file. `tailorline up` sets it to "
        "the home's ray_auth_token. None: a Ray without auth.",
    )
    retrain_poll_s: float = Field(
        default=2.0,
        gt=0,
        description="How often, in seconds, the gateway checks a retraining job it launched; when "
        "one promoted a model it asks the predictor to load it (V2 repository load).",
    )
    trigger_enabled: bool = Field(
        default=False,
        description="Evaluate the retrain trigger (services.monitoring) after RecordEvents stored "
        "orders, in the background, and launch a retrain when it fires (`tailorline up` turns it "
        "on).",
    )
    trigger_wape_threshold: float = Field(
        default=_POLICY.wape_threshold,
        gt=0,
        description="Fire when a family's WAPE over the trigger window is above this.",
    )
    trigger_bias_threshold: float = Field(
        default=_POLICY.abs_bias_threshold,
        gt=0,
        description="Fire when a family's (or one of its segments') |bias| over the trigger window "
        "is above this; bias is judged by the forecasts' means (docs/monitoring.md).",
    )
    trigger_drift_threshold: float = Field(
        default=_POLICY.drift_threshold,
        gt=0,
        description="Fire when a family's input drift is above this (inf: no drift triggers).",
    )
    trigger_window_weeks: int = Field(
        default=_POLICY.window_weeks,
        ge=1,
        description="Complete weeks the trigger's error metrics cover.",
    )
    trigger_min_actual_units: float = Field(
        default=_POLICY.min_actual_units,
        ge=0,
        description="Families with fewer actual units in the window are not judged.",
    )
    trigger_cooldown_weeks: int = Field(
        default=_POLICY.cooldown_weeks,
        ge=0,
        description="No new trigger within this many data weeks after the last one fired.",
    )
    trigger_retrain_trials: int = Field(
        default=4, ge=1, description="Ray Tune trials of a triggered retrain."
    )
    trigger_retrain_max_epochs: int = Field(
        default=10, ge=1, description="Most epochs per trial of a triggered retrain."
    )
    health_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="How often, in seconds, the health checker probes predictor and optimizer.",
    )
    downstream_retries: int = Field(
        default=3,
        ge=0,
        description="Retries of a predictor/optimizer call that failed with UNAVAILABLE.",
    )
    retry_backoff_s: float = Field(
        default=0.2,
        gt=0,
        description="First retry delay in seconds; doubles on every further retry.",
    )
    feedback_batch_size: int = Field(
        default=1000,
        gt=0,
        description="RecordEvents writes accepted events in one transaction per this many events.",
    )
    loop_metrics_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="How often, in seconds, the gateway reads the loop's metrics (forecast "
        "accuracy, coverage and drift per family, retrains, served versions) from the store for "
        "/metrics; 0: not at all (the loop gauges are absent).",
    )
    worker_threads: int = Field(
        default=64,
        gt=0,
        description="Threads for blocking work (store, downstream calls, scenario solves).",
    )

    @property
    def resolved_drain_grace_s(self) -> float:
        """The drain grace in effect: ``drain_grace_s``, else ``request_timeout_s``."""
        return self.drain_grace_s if self.drain_grace_s is not None else self.request_timeout_s
