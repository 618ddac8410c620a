"""``tailorline optimizer``: run the optimizer's Ray Serve application locally until stopped.

What the optimizer container's entry point would be if it were not a RayService; locally it is
what ``tailorline up`` starts. Ray, Serve and Pyomo are imported only when the command runs.
"""

from __future__ import annotations

import signal
import socket
import threading
from pathlib import Path
from types import FrameType

import typer

from optimizer.core.errors import ProblemInvalid
from optimizer.serving.commands import echo_json, json_wanted


def register(app: typer.Typer) -> None:
    app.command("optimizer")(optimizer_command)


def optimizer_command(
    ctx: typer.Context,
    grpc_port: int = typer.Option(
        9000, "--grpc-port", help="Port of the gRPC API (tailorline.optimizer.v1)."
    ),
    num_cpus: int | None = typer.Option(
        None, "--num-cpus", help="CPUs the local Ray may use (default: all); caps solver replicas."
    ),
    http_port: int | None = typer.Option(
        None, "--http-port", help="Port of Serve's HTTP proxy (health only; default: a free one)."
    ),
    dashboard_port: int | None = typer.Option(
        None,
        "--dashboard-port",
        help="Start Ray's dashboard and job server on 127.0.0.1:PORT (0 = a free port) so that "
        "retraining jobs can be submitted to this Ray; default: no dashboard.",
    ),
    retrain_cpus: int = typer.Option(
        0,
        "--retrain-cpus",
        min=0,
        help="Logical CPUs added to this Ray for submitted jobs (retraining trials).",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address every listener binds (Serve's gRPC and HTTP proxies, Ray's own servers and "
        "dashboard); 0.0.0.0 exposes them on all interfaces.",
    ),
    auth_token_file: Path | None = typer.Option(
        None,
        "--auth-token-file",
        help="Start Ray with token authentication, the token read from this file (mode 0600): "
        "its job server, dashboard and GCS refuse callers without 'Authorization: Bearer "
        "<token>'. `tailorline up` passes the home's ray_auth_token. Default: auth disabled.",
    ),
) -> None:
    """Run the optimizer (Ray Serve, gRPC) on a local Ray until Ctrl-C or SIGTERM."""
    if not 0 < grpc_port < 65536:
        raise ProblemInvalid("--grpc-port", f"must be a port number, got {grpc_port}")
    if num_cpus is not None and num_cpus < 1:
        raise ProblemInvalid("--num-cpus", f"must be >= 1, got {num_cpus}")
    if _port_taken(grpc_port):
        raise ProblemInvalid("--grpc-port", f"port {grpc_port} is already in use")
    if auth_token_file is not None and not _has_token(auth_token_file):
        raise ProblemInvalid("--auth-token-file", f"{auth_token_file} is not a non-empty file")

    from optimizer.serving import local

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    server = local.start(
        grpc_port=grpc_port,
        http_port=http_port,
        num_cpus=num_cpus,
        log_to_driver=True,
        dashboard_port=dashboard_port,
        retrain_cpus=retrain_cpus,
        host=host,
        auth_token_file=auth_token_file,
    )
    # After ray.init: Ray installs a crash handler for SIGTERM in the driver that aborts the
    # process; ours replaces it so SIGTERM (a pod stop, `kill`) shuts down cleanly. SIGINT too:
    # a parent that started us in the background may have left it ignored.
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        info = {
            "grpc": server.grpc_target,
            "http_port": server.http_port,
            "apps": server.app_names,
            "ray_jobs": server.job_address,
        }
        if json_wanted(ctx):
            echo_json(info)
        else:
            typer.echo(f"optimizer serving gRPC on {server.grpc_target} (Ctrl-C to stop)")
            if server.job_address:
                typer.echo(f"Ray job submission on {server.job_address}")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("stopping optimizer ...", err=True)
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def _has_token(path: Path) -> bool:
    try:
        return bool(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return False
