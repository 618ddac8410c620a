"""Settings of the model server (env prefix ``TAILORLINE_PREDICTOR_``).

The model repository folder itself is a core setting (``TAILORLINE_MODELS_DIR`` / ``--models``);
this class holds what only the predictor process needs. Command-line flags of
``tailorline predictor`` override these values.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PredictorSettings(BaseSettings):
    """What ``tailorline predictor`` (the KServe model server) reads."""

    model_config = SettingsConfigDict(
        env_prefix="TAILORLINE_PREDICTOR_",
        extra="forbid",
        secrets_dir=os.environ.get("TAILORLINE_SECRETS_DIR") or None,
    )

    host: str = Field(
        default="0.0.0.0",
        description="Address the V2 REST and gRPC endpoints bind: all interfaces, as the "
        "InferenceService's container needs; `tailorline up` sets 127.0.0.1.",
    )
    http_port: int = Field(
        default=8080, ge=0, le=65535, description="Port of the V2 REST endpoint (on host)."
    )
    grpc_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the V2 gRPC endpoint (on host)."
    )
    models_dir: Path | None = Field(
        default=None,
        description="Model repository folder; default: the core setting TAILORLINE_MODELS_DIR "
        "(or <home>/models).",
    )
    model_names: tuple[str, ...] = Field(
        default=("demand", "cost"),
        description="Models to serve from the repository (each needs a complete served version).",
    )
    max_batch_rows: int = Field(
        default=65536,
        ge=1,
        description="Largest batch (rows per request) accepted; bigger requests get 400 / "
        "INVALID_ARGUMENT.",
    )
    inline_max_rows: int = Field(
        default=4096,
        ge=0,
        description="Batches up to this many rows run on the event loop (no thread hop: lower "
        "latency); bigger ones in a worker thread so health checks stay responsive.",
    )
    grpc_max_threads: int = Field(
        default=4, ge=1, description="Threads of the gRPC server's executor (kserve --max_threads)."
    )
    grpc_max_message_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest gRPC message accepted or sent, in bytes.",
    )
    latency_logging: bool = Field(
        default=False,
        description="Log one line per request with pre/predict/post-process latency (kserve's "
        "--enable_latency_logging); costs throughput.",
    )
    watch_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="Seconds between checks of each model's `current` pointer; a change loads "
        "the new version and swaps it in without dropping requests. 0 = only on a V2 repository "
        "load call.",
    )
    use_gpu: bool = Field(
        default=True,
        description="Use a GPU when TensorFlow sees one (memory growth on); false hides GPUs.",
    )
