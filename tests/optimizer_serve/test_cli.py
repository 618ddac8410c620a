"""``tailorline optimizer``: bad flags are one-line user errors; the real command serves gRPC until
SIGTERM and then stops Ray cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from optimizer.core.errors import ProblemInvalid
from optimizer.serving import cli as serve_cli
from optimizer.serving import local

REPO = Path(__file__).resolve().parents[2]

# The command on its own root app: the same register() services/cli.py calls.
RUNNER = """
import sys, typer
from optimizer.serving import cli as serve_cli
app = typer.Typer()
@app.callback()
def root() -> None: ...
serve_cli.register(app)
app(args=sys.argv[1:])
"""


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None: ...

    serve_cli.register(app)
    return app


@pytest.mark.parametrize(
    ("args", "field"),
    [(["--num-cpus", "0"], "--num-cpus"), (["--grpc-port", "70000"], "--grpc-port")],
)
def test_bad_flags_are_invalid_argument(args: list[str], field: str) -> None:
    with pytest.raises(ProblemInvalid) as err:
        _app()(args=["optimizer", *args], standalone_mode=False)
    assert err.value.field == field


@pytest.mark.integration
def test_command_serves_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    import grpc
    from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
    from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc

    port = local.free_port()
    log = (tmp_path / "optimizer.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, "optimizer", "--grpc-port", str(port), "--num-cpus", "1"],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 240
        while "serving gRPC on" not in (tmp_path / "optimizer.log").read_text():
            assert proc.poll() is None, (tmp_path / "optimizer.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "optimizer did not come up"
            time.sleep(0.5)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = svc_grpc.OptimizerServiceStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                stub.Solve(svc_pb.SolveRequest(), timeout=60)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details() == "problem.periods: the horizon is empty"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, (tmp_path / "optimizer.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # Nothing of the local Ray or Serve is left listening on the port (SO_REUSEADDR: closed
    # connections in TIME_WAIT do not count, a listener does).
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
