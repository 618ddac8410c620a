"""``tailorline up``: predictor + optimizer + gateway, locally, until Ctrl-C.

A fresh data directory is set up first (:func:`services.local.bootstrap.bootstrap_home`, with
``tailorline train``'s defaults). The stack and the bootstrap (grpc, pandas, the store, the
training code) are imported inside the command, so that ``tailorline --help`` (which imports every
command module) stays fast.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import typer

from services.cli import state
from services.common.errors import Unavailable
from services.common.settings import CoreSettings


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def up(
    ctx: typer.Context,
    port: int = typer.Option(50051, "--port", min=0, max=65535, help="Gateway gRPC port."),
    metrics_port: int = typer.Option(9464, "--metrics-port", min=0, max=65535),
    predictor_http_port: int = typer.Option(8080, "--predictor-http-port", min=0, max=65535),
    predictor_grpc_port: int = typer.Option(8081, "--predictor-grpc-port", min=0, max=65535),
    optimizer_port: int = typer.Option(9000, "--optimizer-port", min=0, max=65535),
    optimizer_cpus: int = typer.Option(1, "--optimizer-cpus", min=1, help="Ray CPUs."),
    retrain_cpus: int = typer.Option(
        2, "--retrain-cpus", min=1, help="Extra Ray CPUs for retraining jobs (Tune trials)."
    ),
    triggers: bool = typer.Option(
        True,
        "--triggers/--no-triggers",
        help="Retrain automatically when feedback shows forecast error or input drift.",
    ),
    preset: str = typer.Option("small", "--preset", help="Data set a fresh home is set up with."),
) -> None:
    """Predictor + optimizer + gateway, locally, until Ctrl-C (sets up a fresh home first)."""
    from services.local.stack import LocalStack

    st = state(ctx)
    core = st.settings
    _set_up_if_fresh(core, preset)
    stack = LocalStack(
        core,
        gateway_port=port,
        metrics_port=metrics_port,
        predictor_http_port=predictor_http_port,
        predictor_grpc_port=predictor_grpc_port,
        optimizer_port=optimizer_port,
        optimizer_cpus=optimizer_cpus,
        retrain_cpus=retrain_cpus,
        triggers=triggers,
        token=os.environ.get("TAILORLINE_GATEWAY_AUTH_TOKEN"),
    )
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start(say=lambda m: typer.echo(m, err=True))
        if st.json:
            st.emit(stack.addresses(), json_out=True)
        else:
            for name, addr in stack.addresses().items():
                typer.echo(f"{name:<24} {addr}")
            typer.echo(f"logs in {stack.log_dir}; Ctrl-C stops everything")
        while not stopping.is_set():
            stopping.wait(1.0)
            for name in list(stack.procs):
                if stack.procs[name].poll() is not None:
                    raise Unavailable(f"{name} stopped unexpectedly (see {stack.log_dir})")
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        typer.echo("stopping ...", err=True)
        stack.stop()
        for s, h in previous.items():
            signal.signal(s, h)
        typer.echo("stopped", err=True)


def _set_up_if_fresh(core: CoreSettings, preset: str) -> None:
    """Bootstrap a home without served models (progress on stderr)."""
    from services.local.bootstrap import (
        STEPS,
        SetupStep,
        bootstrap_home,
        needs_setup,
        up_train_config,
    )

    if not needs_setup(core):
        return
    typer.echo(f"fresh data directory {core.home}: setting it up first", err=True)
    # TensorFlow's C++ info lines stay quiet, as in the stack's child processes (before TF loads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    def said(step: SetupStep) -> None:
        line = f"done in {step.seconds:.0f} s: {step.detail}" if step.done else f"{step.what} ..."
        typer.echo(f"[setup {step.number}/{STEPS}] {line}", err=True)

    home = bootstrap_home(core, preset=preset, train_config=up_train_config(preset), progress=said)
    home.engine.dispose()
