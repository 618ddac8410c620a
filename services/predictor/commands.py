"""``tailorline predictor``: run the KServe model server alone (what the predictor container runs).

kserve parses ``sys.argv`` when imported and its ``ModelServer`` owns the process, so this command
checks its arguments, then *replaces* the CLI process with ``python -m
services.predictor.server`` (same PID, so signals from a container runtime or a test reach the
server directly).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from services.common.errors import InvalidArgument


def server_command(models: Path, http_port: int, grpc_port: int) -> list[str]:
    """The argv that starts the server process."""
    return [
        sys.executable,
        "-m",
        "services.predictor.server",
        "--models",
        str(models),
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
    ]


def register(app: typer.Typer) -> None:
    @app.command("predictor")
    def predictor(
        ctx: typer.Context,
        models: Path | None = typer.Option(
            None, "--models", help="Model repository folder (default: the global --models)."
        ),
        http_port: int | None = typer.Option(
            None, "--http-port", min=0, max=65535, help="V2 REST port (default 8080)."
        ),
        grpc_port: int | None = typer.Option(
            None, "--grpc-port", min=0, max=65535, help="V2 gRPC port (default 8081)."
        ),
    ) -> None:
        """Serve the demand and cost models over the V2 protocol (REST and gRPC) until stopped."""
        from services.cli import state
        from services.predictor.settings import PredictorSettings
        from services.registry.repository import MODEL_NAMES, ModelRepository

        core = state(ctx).settings
        settings = PredictorSettings()
        root = models or core.models_dir or settings.models_dir or core.resolved_models_dir
        if not root.is_dir():
            raise InvalidArgument(f"model repository {root} does not exist", field="models")
        repo = ModelRepository(root)
        for name in settings.model_names:
            if repo.served_version(name) is None:
                known = ", ".join(MODEL_NAMES)
                raise InvalidArgument(
                    f"no complete version of model {name!r} in {root} (expected {known}; "
                    "run `tailorline train` first)",
                    field="models",
                )
        argv = server_command(
            root.resolve(),
            settings.http_port if http_port is None else http_port,
            settings.grpc_port if grpc_port is None else grpc_port,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(argv[0], argv)
