"""The gateway's composition root: clients, planner, servicers, interceptors, health, metrics.

``serve(settings, core)`` runs until SIGINT/SIGTERM, then stops gracefully (in-flight RPCs get
``grace_s`` to finish). The standard health service reports the overall status ("") and each
public service as NOT_SERVING while the predictor or the optimizer does not answer its probe, and
SERVING again when both do (a background task probes every ``health_interval_s``).
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

from services.api.tailorline.v1 import feedback_service_pb2 as fb_pb
from services.api.tailorline.v1 import feedback_service_pb2_grpc as fb_grpc
from services.api.tailorline.v1 import model_service_pb2 as model_pb
from services.api.tailorline.v1 import model_service_pb2_grpc as model_grpc
from services.api.tailorline.v1 import planning_service_pb2 as pb
from services.api.tailorline.v1 import planning_service_pb2_grpc as pb_grpc
from services.common.settings import CoreSettings
from services.gateway.clients import OptimizerGrpc, PredictorClient
from services.gateway.interceptors import GatewayInterceptor, Metrics
from services.gateway.planner import Planner
from services.gateway.servicers import FeedbackServicer, ModelServicer, PlanningServicer
from services.gateway.settings import GatewaySettings

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
    optimizer: OptimizerGrpc
    metrics: Metrics
    checker: asyncio.Task[None] | None = None
    _http: Any = None
    status: dict[str, bool] = field(default_factory=dict)

    async def stop(self, grace_s: float = 10.0) -> None:
        if self.checker is not None:
            self.checker.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self.predictor.close()
        self.optimizer.close()


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
    """Build and start the server (ports 0 = free ones; the chosen ports are on the result)."""
    from prometheus_client import start_http_server

    from services.store.db import make_engine, migrate

    # blocking work (store, downstream calls, a batch's concurrent solves) runs in threads; the
    # default pool (CPUs + 4) would let one large ReplanBatch starve the health checker
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=settings.worker_threads, thread_name_prefix="gateway")
    )
    url = core.resolved_db_url
    migrate(url)
    engine = make_engine(url)
    common: dict[str, Any] = {
        "timeout_s": settings.request_timeout_s,
        "retries": settings.downstream_retries,
        "backoff_s": settings.retry_backoff_s,
    }
    predictor = PredictorClient(
        settings.predictor_url, max_message_bytes=settings.max_message_bytes, **common
    )
    optimizer = OptimizerGrpc(
        settings.optimizer_url,
        max_message_bytes=max(settings.max_message_bytes, 256 << 20),
        **common,
    )
    planner = Planner(
        engine,
        predict=predictor.predict_fn,
        inputs=predictor.inputs,
        solve=optimizer.solve,
        max_variants=settings.max_variants,
        max_periods=settings.max_periods,
    )
    metrics = Metrics()
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    limit = settings.max_message_bytes
    server = grpc.aio.server(
        interceptors=[GatewayInterceptor(token=token, metrics=metrics, max_message_bytes=limit)],
        options=[
            # gRPC's own limit sits above ours, so a too-large message up to twice the limit gets
            # INVALID_ARGUMENT with the size from the interceptor (beyond: RESOURCE_EXHAUSTED)
            ("grpc.max_receive_message_length", 2 * limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    pb_grpc.add_PlanningServiceServicer_to_server(
        PlanningServicer(planner, timeout_s=settings.request_timeout_s, metrics=metrics), server
    )
    fb_grpc.add_FeedbackServiceServicer_to_server(
        FeedbackServicer(
            engine,
            core,
            batch_size=settings.feedback_batch_size,
            max_events=MAX_EVENTS_PER_STREAM,
        ),
        server,
    )
    model_grpc.add_ModelServiceServicer_to_server(
        ModelServicer(engine, core.resolved_models_dir, launcher), server
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
        _http=http,
    )
    gw.checker = asyncio.create_task(_check_loop(gw, settings.health_interval_s))
    log.info(
        "gateway gRPC on %s:%d (%s), metrics on :%d",
        settings.host,
        port,
        "TLS" if creds else "plaintext",
        gw.metrics_port,
    )
    return gw


async def serve(
    settings: GatewaySettings, core: CoreSettings, *, grace_s: float = 10.0, ready: Any = None
) -> None:
    """Run until SIGINT/SIGTERM; ``ready(gateway)`` is called once it listens."""
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
