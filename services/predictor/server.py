"""The predictor process: one ``kserve.ModelServer`` for ``demand`` and ``cost`` (V2 REST + gRPC).

Run as ``python -m services.predictor.server --models DIR --http-port P --grpc-port Q`` (what
``tailorline predictor`` execs). kserve parses ``sys.argv`` when it is imported and
``ModelServer.start()`` owns the process (event loop, signal handlers), so this module sets
``sys.argv`` to kserve's own flags *before* importing kserve, and nothing else runs in the process.

Start-up order: settings -> device (GPU with memory growth, else CPU) -> load every model's served
version (a model without one is an error) -> serve. ``/v2/health/ready`` says ready once the
servers are up; every registered model is loaded by then.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from services.common.errors import TailorlineError
from services.common.settings import CoreSettings
from services.predictor.settings import PredictorSettings

log = logging.getLogger("tailorline.predictor")


class _DropPerRequestLines(logging.Filter):
    """kserve's gRPC LoggingInterceptor logs every call at INFO; keep the rest of its log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("grpc method:")


class _JsonWhenUntyped:
    """ASGI middleware: a POST without Content-Type and without the binary-extension header is a
    plain V2 JSON body (tritonclient.http sends JSON-only requests that way); kserve would
    otherwise demand the ``Inference-Header-Content-Length`` header and answer 400."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "POST":
            names = {k.lower() for k, _ in scope["headers"]}
            if b"content-type" not in names and b"inference-header-content-length" not in names:
                headers = [*scope["headers"], (b"content-type", b"application/json")]
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def _bound_rest_server_class(host: str) -> type:
    """kserve's ``RESTServer`` listening on ``host`` (kserve's own always binds 0.0.0.0)."""
    from kserve.protocol.rest.server import RESTServer

    class BoundRESTServer(RESTServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host  # read when uvicorn binds, in start()

    return BoundRESTServer


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _fast_grpc_server_class(host: str = "0.0.0.0") -> type:
    """kserve's ``GRPCServer`` with a ``ModelInfer`` that answers our models directly.

    kserve's servicer turns every request into ``InferRequest``/``InferInput`` objects and runs
    ``Model.__call__`` (three Prometheus timers, pre/post-process hooks) before the model sees a
    byte; with ~30 input tensors that costs about as much as the model. Here a binary request for
    a :class:`ServedModel` goes straight from the protobuf to the packed model call
    (:meth:`ServedModel.infer_grpc`); everything else (typed contents, malformed requests, other
    methods) takes kserve's own path, so errors and their status codes are unchanged. kserve's
    per-call ``LoggingInterceptor`` (whose INFO line we filter anyway) is left out; its
    exception-to-status interceptor stays.
    """
    from concurrent import futures

    from grpc import aio
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
    from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
    from kserve.protocol.grpc.server import GRPCServer
    from kserve.protocol.grpc.servicer import InferenceServicer

    from services.predictor.kserve_model import ServedModel

    class FastServicer(InferenceServicer):
        async def ModelInfer(self, request: Any, context: Any) -> Any:
            model = self._data_plane._model_registry.get_model(request.model_name)
            if isinstance(model, ServedModel):
                response = await model.infer_grpc(request)
                if response is not None:
                    return response
            return await super().ModelInfer(request, context)

    class FastGRPCServer(GRPCServer):
        async def start(self, max_workers: int) -> None:
            self._server = aio.server(
                futures.ThreadPoolExecutor(max_workers=max_workers),
                interceptors=(ExceptionToStatusInterceptor(),),
                options=[
                    ("grpc.max_send_message_length", self._kwargs["grpc_max_send_message_length"]),
                    (
                        "grpc.max_receive_message_length",
                        self._kwargs["grpc_max_receive_message_length"],
                    ),
                ],
            )
            servicer = FastServicer(self._data_plane, self._model_repository_extension)
            grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
                servicer, self._server
            )
            self._server.add_insecure_port(_grpc_address(host, self._port))
            log.info(
                "gRPC server on %s (%s executor threads)",
                _grpc_address(host, self._port),
                max_workers,
            )
            await self._server.start()
            await self._server.wait_for_termination()

    return FastGRPCServer


def configure_devices(use_gpu: bool = True) -> str:
    """Pick the device before any model loads: ``"GPU"`` (memory growth on) or ``"CPU"``.

    Must run before TensorFlow creates any tensor. Logs and returns what it chose.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus and use_gpu:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        log.info("inference device: GPU (%s; memory growth on)", ", ".join(g.name for g in gpus))
        return "GPU"
    if gpus:
        tf.config.set_visible_devices([], "GPU")
        log.info("inference device: CPU (GPUs present but disabled by settings)")
    else:
        log.info("inference device: CPU (TensorFlow sees no GPU)")
    return "CPU"


def kserve_argv(settings: PredictorSettings) -> list[str]:
    """kserve's own command-line flags for these settings (kserve reads them at import)."""
    return [
        f"--http_port={settings.http_port}",
        f"--grpc_port={settings.grpc_port}",
        "--workers=1",
        f"--max_threads={settings.grpc_max_threads}",
        f"--grpc_max_send_message_length={settings.grpc_max_message_bytes}",
        f"--grpc_max_receive_message_length={settings.grpc_max_message_bytes}",
        f"--enable_latency_logging={str(settings.latency_logging).lower()}",
        "--enable_docs_url=false",
        "--predictor_protocol=v2",
    ]


def parse_args(argv: list[str]) -> PredictorSettings:
    """Our flags (same names as ``tailorline predictor``) on top of the environment settings."""
    parser = argparse.ArgumentParser(prog="python -m services.predictor.server")
    parser.add_argument("--models", type=Path, default=None, help="Model repository folder.")
    parser.add_argument("--http-port", type=int, default=None, help="V2 REST port.")
    parser.add_argument("--grpc-port", type=int, default=None, help="V2 gRPC port.")
    ns = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if ns.models is not None:
        overrides["models_dir"] = ns.models
    if ns.http_port is not None:
        overrides["http_port"] = ns.http_port
    if ns.grpc_port is not None:
        overrides["grpc_port"] = ns.grpc_port
    settings = PredictorSettings(**overrides)  # type: ignore[arg-type]
    if settings.models_dir is None:
        settings = settings.model_copy(update={"models_dir": CoreSettings().resolved_models_dir})
    return settings


def serve(settings: PredictorSettings) -> None:
    """Load the models and run the server until SIGTERM/SIGINT (blocks; owns the process)."""
    root = Path(settings.models_dir or ".")
    sys.argv = [sys.argv[0], *kserve_argv(settings)]

    device = configure_devices(settings.use_gpu)

    import kserve  # parses sys.argv (set above)
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve import model_server

    from services.predictor.kserve_model import (
        RepositoryExtension,
        ServedModel,
        ServingOptions,
        VersionedRepository,
    )

    options = ServingOptions(
        max_batch_rows=settings.max_batch_rows,
        watch_interval_s=settings.watch_interval_s,
        inline_max_rows=settings.inline_max_rows,
    )
    registry = VersionedRepository(root, options)
    models = []
    for name in settings.model_names:
        model = ServedModel(name, root, options)
        try:
            model.load()
        except (TailorlineError, OSError, ValueError) as exc:
            raise SystemExit(f"error: cannot serve model {name!r} from {root}: {exc}") from None
        assert model.active is not None
        log.info("serving %s version %s on %s", name, model.active.version, device)
        models.append(model)

    async def _bad_request(_request: object, exc: Exception) -> JSONResponse:
        # A malformed V2 JSON body is the client's to fix: 400 with the reason, as for bad tensors.
        errors: list[dict[str, Any]] = getattr(exc, "errors", list)()
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors
        )
        return JSONResponse(status_code=400, content={"error": f"invalid request: {detail}"})

    # ModelServer.start() builds its gRPC server from this module global: use ours
    model_server.GRPCServer = _fast_grpc_server_class(settings.host)
    model_server.RESTServer = _bound_rest_server_class(settings.host)
    model_server.app.add_exception_handler(RequestValidationError, _bad_request)
    model_server.app.add_middleware(_JsonWhenUntyped)
    server = kserve.ModelServer(
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        workers=1,
        registered_models=registry,
    )
    server.model_repository_extension = RepositoryExtension(model_registry=registry)
    if not settings.latency_logging:  # one log line per request costs throughput
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        logging.getLogger("kserve.trace").setLevel(logging.WARNING)
        logging.getLogger("kserve").addFilter(_DropPerRequestLines())
    log.info(
        "predictor: models %s from %s, REST %s:%s, gRPC :%s, device %s",
        ",".join(settings.model_names),
        root,
        settings.host,
        settings.http_port,
        settings.grpc_port,
        device,
    )
    server.start(models)


def main(argv: list[str] | None = None) -> None:
    settings = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=CoreSettings().log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    serve(settings)


if __name__ == "__main__":
    main()
