"""The gateway's composition root: clients, planner, servicers, interceptors, health, metrics.

``serve(settings, core)`` runs until SIGINT/SIGTERM, then stops gracefully: health NOT_SERVING, no
new calls, and in-flight RPCs get ``settings.resolved_drain_grace_s`` (default: the request
timeout, the longest a plan may run) to finish. Retraining (``ModelService.Retrain`` and the
feedback trigger) goes through the launcher ``retrain_launcher`` names
(``services.training.launch``); a job that promoted a model makes the gateway call the predictor's
V2 repository load for it.

The standard health service reports the overall status ("") and each public service as
NOT_SERVING while the predictor or the optimizer does not answer its probe, and SERVING
again when both do (a background task probes every ``health_interval_s``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tailorline.v1 import feedback_service_pb2 as fb_pb
from tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from tailorline.v1 import model_service_pb2 as model_pb
from tailorline.v1 import model_service_pb2_grpc as model_grpc
from tailorline.v1 import planning_service_pb2 as pb
from tailorline.v1 import planning_service_pb2_grpc as pb_grpc

from optimizer.serving.client import OptimizerClient
from services.common.settings import CoreSettings
from services.common.telemetry import setup_logging, setup_tracing, trace_engine
from services.gateway.downstream import PredictorClient, optimizer_solvers, optimizer_stream
from services.gateway.interceptors import Metrics, gateway_interceptors
from services.gateway.loop_metrics import LoopMetrics
from services.gateway.servicers import FeedbackServicer, ModelServicer, PlanningServicer
from services.gateway.settings import GatewaySettings
from services.monitoring import TriggerPolicy
from services.planning.service import Planner
from services.training.launch import make_launcher
from services.training.retraining import Retraining

log = logging.getLogger("tailorline.gateway")
SERVICE_NAMES = (
    pb.DESCRIPTOR.services_by_name["PlanningService"].full_name,
    fb_pb.DESCRIPTOR.services_by_name["FeedbackService"].full_name,
    model_pb.DESCRIPTOR.services_by_name["ModelService"].full_name,
)
MAX_EVENTS_PER_STREAM = 1_000_000


@dataclass
class Gateway:
    """A started gateway: its ports and what :meth:`stop` needs."""

    server: grpc.aio.Server
    port: int
    metrics_port: int
    health: health.aio.HealthServicer
    predictor: PredictorClient
    optimizer: OptimizerClient
    metrics: Metrics
    retraining: Retraining | None = None
    checker: asyncio.Task[None] | None = None
    loop_refresher: asyncio.Task[None] | None = None
    _http: Any = None
    status: dict[str, bool] = field(default_factory=dict)

    async def stop(self, grace_s: float = 10.0) -> None:
        for task in (self.checker, self.loop_refresher):
            if task is not None:
                task.cancel()
        if self.retraining is not None:
            self.retraining.close()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self.predictor.close()
        self.optimizer.close()


async def _loop_metrics(loop_metrics: LoopMetrics, interval_s: float) -> None:
    """Read the loop's metrics from the store now and every ``interval_s``."""
    while True:
        await asyncio.to_thread(loop_metrics.refresh)
        await asyncio.sleep(interval_s)


def trigger_policy(settings: GatewaySettings) -> TriggerPolicy:
    """The retrain trigger's thresholds and window from the settings (also what the loop's
    metrics measure)."""
    return TriggerPolicy(
        enabled=True,
        wape_threshold=settings.trigger_wape_threshold,
        abs_bias_threshold=settings.trigger_bias_threshold,
        drift_threshold=settings.trigger_drift_threshold,
        window_weeks=settings.trigger_window_weeks,
        min_actual_units=settings.trigger_min_actual_units,
        cooldown_weeks=settings.trigger_cooldown_weeks,
    )


async def _check_loop(gw: Gateway, interval_s: float) -> None:
    last: bool | None = None
    while True:
        pred, opt = await asyncio.gather(
            asyncio.to_thread(gw.predictor.ready), asyncio.to_thread(gw.optimizer.ready)
        )
        gw.status.update(predictor=pred, optimizer=opt)
        gw.metrics.downstream_up.labels("predictor").set(int(pred))
        gw.metrics.downstream_up.labels("optimizer").set(int(opt))
        ok = pred and opt
        gw.metrics.serving.set(int(ok))
        if ok != last:
            state = (
                health_pb2.HealthCheckResponse.SERVING
                if ok
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", *SERVICE_NAMES):
                await gw.health.set(name, state)
            log.info(
                "health: %s (predictor %s, optimizer %s)",
                "SERVING" if ok else "NOT_SERVING",
                pred,
                opt,
            )
            last = ok
        await asyncio.sleep(interval_s)


def load_on_predictor(target: str, name: str, timeout_s: float = 120.0) -> None:
    """V2 repository extension ``RepositoryModelLoad{model_name}`` over gRPC: the predictor loads
    the version ``current`` names and swaps it in (no restart, no failed requests). Encoded by
    hand (KServe's proto numbers ``model_name`` 1; tritonclient's stubs number it 2)."""
    name_bytes = name.encode()
    size, varint = len(name_bytes), bytearray()
    while True:
        byte, size = size & 0x7F, size >> 7
        varint.append(byte | (0x80 if size else 0))
        if not size:
            break
    request = b"\x0a" + bytes(varint) + name_bytes
    with grpc.insecure_channel(target) as channel:
        load = channel.unary_unary(
            "/inference.GRPCInferenceService/RepositoryModelLoad",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        load(request, timeout=timeout_s)


def _retraining(
    settings: GatewaySettings, core: CoreSettings, engine: Any, launcher: Any
) -> Retraining:
    if launcher is None:
        launcher = make_launcher(
            settings.retrain_launcher,
            engine,
            ray_address=settings.ray_address,
            env={
                "TAILORLINE_HOME": str(core.home),
                "TAILORLINE_DB_URL": core.resolved_db_url,
                "TAILORLINE_MODELS_DIR": str(core.resolved_models_dir),
                "RAY_USAGE_STATS_ENABLED": "0",
            },
            template_file=settings.rayjob_template_file,
            namespace=settings.namespace,
            auth_token_file=settings.ray_auth_token_file,
        )
    policy = trigger_policy(settings) if settings.trigger_enabled else None
    return Retraining(
        engine,
        launcher,
        on_promoted=lambda name: load_on_predictor(
            settings.predictor_url, name, settings.request_timeout_s
        ),
        poll_s=settings.retrain_poll_s,
        policy=policy if launcher is not None else None,
        trigger_config={
            "trials": settings.trigger_retrain_trials,
            "max_epochs": settings.trigger_retrain_max_epochs,
        },
    )


def _credentials(settings: GatewaySettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    key = settings.tls_key_file.read_bytes()
    cert = settings.tls_cert_file.read_bytes()
    ca = settings.tls_ca_file.read_bytes() if settings.tls_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


async def start(settings: GatewaySettings, core: CoreSettings, *, launcher: Any = None) -> Gateway:
    """Build and start the server (ports 0 = free ones; the chosen ports are on the result).
    ``launcher``: a retraining launcher to use instead of the configured one (tests)."""
    from prometheus_client import start_http_server

    from services.store.db import make_engine, require_migrated

    # blocking work (store, downstream calls, a batch's concurrent solves) runs in threads; the
    # default pool (CPUs + 4) would let one large ReplanBatch starve the health checker
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=settings.worker_threads, thread_name_prefix="gateway")
    )
    # set-up code migrates (the chart's Job, the local bootstrap), never a serving replica
    engine = make_engine(core.resolved_db_url)
    require_migrated(engine)
    trace_engine(engine)  # a span per statement inside a traced call (plan loads and saves)
    metrics = Metrics()
    common: dict[str, Any] = {
        "timeout_s": settings.request_timeout_s,
        "retries": settings.downstream_retries,
        "backoff_s": settings.retry_backoff_s,
    }
    predictor = PredictorClient(
        settings.predictor_url,
        max_message_bytes=settings.max_message_bytes,
        on_call=metrics.predictor_call,
        **common,
    )
    optimizer = OptimizerClient(
        settings.optimizer_url,
        max_message_bytes=max(settings.max_message_bytes, 256 << 20),
        **common,
    )
    solve, solve_batch = optimizer_solvers(optimizer, metrics)
    planner = Planner(
        engine,
        predict=predictor.predict_fn,
        inputs=predictor.inputs,
        solve=solve,
        solve_batch=solve_batch,
        max_variants=settings.max_variants,
        max_periods=settings.max_periods,
    )
    retraining = _retraining(settings, core, engine, launcher)
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        interceptors=gateway_interceptors(token=token, metrics=metrics, max_message_bytes=limit),
        options=[
            # gRPC's own limit sits above ours, so a too-large message up to twice the limit gets
            # INVALID_ARGUMENT with the size from the interceptor (beyond: RESOURCE_EXHAUSTED)
            ("grpc.max_receive_message_length", 2 * limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    pb_grpc.add_PlanningServiceServicer_to_server(
        PlanningServicer(
            planner,
            timeout_s=settings.request_timeout_s,
            solve_stream=optimizer_stream(optimizer, metrics),
            metrics=metrics,
        ),
        server,
    )
    fb_grpc.add_FeedbackServiceServicer_to_server(
        FeedbackServicer(
            engine,
            core,
            batch_size=settings.feedback_batch_size,
            max_events=MAX_EVENTS_PER_STREAM,
            on_orders=retraining.feedback_stored,
        ),
        server,
    )
    model_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(engine, core.resolved_models_dir, retraining, registry=metrics.registry),
        server,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = f"{settings.host}:{settings.port}"
    creds = _credentials(settings)
    port = (
        server.add_secure_port(address, creds)
        if creds is not None
        else server.add_insecure_port(address)
    )
    http, _thread = start_http_server(
        settings.metrics_port, addr=settings.host, registry=metrics.registry
    )
    await server.start()
    gw = Gateway(
        server=server,
        port=port,
        metrics_port=http.server_port,
        health=health_servicer,
        predictor=predictor,
        optimizer=optimizer,
        metrics=metrics,
        retraining=retraining,
        _http=http,
    )
    gw.checker = asyncio.create_task(_check_loop(gw, settings.health_interval_s))
    if settings.loop_metrics_interval_s > 0:
        loop_metrics = LoopMetrics(engine, trigger_policy(settings)).register(metrics.registry)
        gw.loop_refresher = asyncio.create_task(
            _loop_metrics(loop_metrics, settings.loop_metrics_interval_s)
        )
    log.info(
        "retraining: launcher %s, trigger %s",
        getattr(retraining.launcher, "name", None),
        "on" if retraining.policy is not None else "off",
    )
    log.info(
        "gateway gRPC on %s:%d (%s), metrics on :%d",
        settings.host,
        port,
        "TLS" if creds else "plaintext",
        gw.metrics_port,
    )
    return gw


async def serve(
    settings: GatewaySettings,
    core: CoreSettings,
    *,
    grace_s: float | None = None,
    ready: Any = None,
) -> None:
    """Run until SIGINT/SIGTERM; ``ready(gateway)`` is called once it listens. In-flight calls
    then get ``grace_s`` (default: the settings' drain grace) to finish."""
    grace_s = settings.resolved_drain_grace_s if grace_s is None else grace_s
    setup_logging(core.log_level, core.log_format)
    provider = setup_tracing("tailorline-gateway", core.otlp_endpoint)
    gw = await start(settings, core)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready(gw)
    await stop.wait()
    log.info("stopping the gateway (grace %.0f s)", grace_s)
    await gw.stop(grace_s)
    provider.shutdown()  # flushes the spans not exported yet
