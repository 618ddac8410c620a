"""ONE local stack for the gateway tests: a tiny synthetic data set, models trained on it with the
training code (1 epoch), then predictor + optimizer (local Ray) + gateway as real processes on
free loopback ports, with a bearer token. Stopped (process groups included) at the end. Its
processes export their trace spans to an in-test OTLP collector (``otlp``), so a test can follow a
call from the gateway through the predictor and the optimizer (tests/gateway/test_telemetry.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.common.settings import CoreSettings
from services.local.bootstrap import bootstrap_home
from services.local.stack import LocalStack
from services.training.train import TrainConfig
from tests.gateway.helpers import MAX_MESSAGE_BYTES, MAX_VARIANTS, REQUEST_TIMEOUT_S, TOKEN
from tests.telemetry.collector import Collector


@pytest.fixture(scope="session")
def gateway_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gateway-home")
    core = CoreSettings(home=home)
    bootstrapped = bootstrap_home(
        core,
        preset="tiny",
        train_config=TrainConfig(seed=7, holdout_weeks=4, epochs=1, origin_stride=2),
    )
    bootstrapped.engine.dispose()
    return home


@pytest.fixture(scope="session")
def otlp() -> Iterator[Collector]:
    collector = Collector().start()
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture(scope="session")
def stack(gateway_home: Path, otlp: Collector) -> Iterator[LocalStack]:
    # every child (and the optimizer's Ray workers) inherits these: spans go to the collector
    saved = {k: os.environ.get(k) for k in ("TAILORLINE_OTLP_ENDPOINT", "OTEL_BSP_SCHEDULE_DELAY")}
    os.environ["TAILORLINE_OTLP_ENDPOINT"] = otlp.endpoint
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # ms between batches (default 5000)
    s = LocalStack(
        CoreSettings(home=gateway_home),
        token=TOKEN,
        gateway_env={
            "TAILORLINE_GATEWAY_MAX_VARIANTS": str(MAX_VARIANTS),
            "TAILORLINE_GATEWAY_DOWNSTREAM_RETRIES": "2",
            "TAILORLINE_GATEWAY_FEEDBACK_BATCH_SIZE": "50",
            "TAILORLINE_GATEWAY_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
            "TAILORLINE_GATEWAY_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        },
    )
    try:
        s.start()
        try:
            yield s
        finally:
            s.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def channel(stack: LocalStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(
        stack.gateway_target, options=[("grpc.max_send_message_length", 64 << 20)]
    ) as ch:
        yield ch


@pytest.fixture(scope="session")
def frames(gateway_home: Path) -> dict[str, Any]:
    from services.store import load_frames, make_engine

    engine = make_engine(CoreSettings(home=gateway_home).resolved_db_url)
    try:
        return load_frames(engine)
    finally:
        engine.dispose()
