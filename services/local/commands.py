"""``tailorline up``: predictor + optimizer + gateway, locally, supervised, until Ctrl-C.

A fresh data directory is set up first by :func:`services.local.bootstrap.bootstrap_home`
(``tailorline train``'s defaults) in a child process, with a progress display here, so that
TensorFlow never stays loaded in ``up``; the raw data set is removed once ingested (unless
``--keep-data``) and the home gets its own pseudonym key. Then ``up`` starts the stack on
127.0.0.1 (``--host`` to change it) and supervises it (:class:`services.local.supervise.
Supervisor`): a component that dies is restarted with backoff. ``up`` is a child subreaper, so
when it stops, every process it started, and every orphan of those, goes with it. The stack (grpc,
the store) is imported inside the command, so that ``tailorline --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import typer

from services.cli import state
from services.common.errors import InvalidArgument, Unavailable
from services.common.settings import CoreSettings


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("status")(status)


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
    keep_data: bool = typer.Option(
        False,
        "--keep-data",
        help="Keep the generated raw data set (customer names and e-mails) after a fresh home is "
        "set up; by default it is removed once ingested.",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address every listener binds (gateway, predictor, optimizer, Ray); 0.0.0.0 exposes "
        "the internal ones too, bypassing the gateway's token.",
    ),
    log_format: str = typer.Option(
        "",
        "--log-format",
        help="Log lines of the three processes (in <home>/logs): text (with trace=<id>) or json "
        "(one object per line). Default: TAILORLINE_LOG_FORMAT, else text.",
    ),
    otlp_endpoint: str = typer.Option(
        "",
        "--otlp-endpoint",
        help="OTLP/gRPC collector the processes export trace spans to (e.g. "
        "http://127.0.0.1:4317). Default: TAILORLINE_OTLP_ENDPOINT, else none (not exported).",
    ),
) -> None:
    """Predictor + optimizer + gateway, locally, supervised, until Ctrl-C (sets up a fresh home)."""
    from services.common.keys import ensure_pseudonym_key
    from services.local import procs
    from services.local.stack import LocalStack
    from services.local.status import stack_file, write_stack_file
    from services.local.supervise import Supervisor

    st = state(ctx)
    if log_format not in ("", "text", "json"):
        raise InvalidArgument(f"{log_format!r}: use text or json", field="--log-format")
    # the children inherit these (services.common.telemetry reads them)
    if log_format:
        os.environ["TAILORLINE_LOG_FORMAT"] = log_format
    if otlp_endpoint:
        os.environ["TAILORLINE_OTLP_ENDPOINT"] = otlp_endpoint
    procs.become_subreaper()  # orphans of the stack (a retrain's driver) are ours to end
    core = ensure_pseudonym_key(st.settings)
    say = _say_err
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    stack: LocalStack | None = None
    try:
        _set_up_if_fresh(core, preset, keep_data)
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
            bind_host=host,
        )
        stack.start(say=say)
        write_stack_file(core, stack.addresses())
        if st.json:
            st.emit(stack.addresses(), json_out=True)
        else:
            for name, addr in stack.addresses().items():
                typer.echo(f"{name:<24} {addr}")
            typer.echo(f"logs in {stack.log_dir}; Ctrl-C stops everything")
        supervisor = Supervisor(stack, say=say)
        while not stopping.is_set():
            stopping.wait(1.0)
            supervisor.tick()
            procs.reap_orphans(os.getpid(), keep=tuple(p.pid for p in stack.procs.values()))
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping ...")
        if stack is not None:
            stack_file(core).unlink(missing_ok=True)
            stack.stop()
        procs.kill_descendants(os.getpid())  # anything left: re-parented orphans included
        for s, h in previous.items():
            signal.signal(s, h)
        say("stopped")


def status(
    ctx: typer.Context,
    timeout_s: float = typer.Option(
        1.0, "--timeout", min=0.1, max=30.0, help="Seconds each process probe may take."
    ),
) -> None:
    """The local stack's health, served model versions, last plans and retrains (also when the
    stack is down)."""
    from rich.console import Console

    from services.local.status import gather, render

    st = state(ctx)
    result = gather(st.settings, timeout_s)
    if st.json:
        st.emit(result, json_out=True)
        return
    render(result, Console())


def _say_err(message: str) -> None:
    typer.echo(message, err=True)


def _set_up_if_fresh(core: CoreSettings, preset: str, keep_data: bool) -> None:
    """Bootstrap a home without served models in a child process (progress on stderr)."""
    from services.local.bootstrap import STEPS, needs_setup

    if not needs_setup(core):
        return
    typer.echo(f"fresh data directory {core.home}: setting it up first", err=True)
    log_dir = core.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        TAILORLINE_HOME=str(core.home),
        TAILORLINE_DB_URL=core.resolved_db_url,
        TAILORLINE_MODELS_DIR=str(core.resolved_models_dir),
        TF_CPP_MIN_LOG_LEVEL=env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    )
    args = ["--preset", preset, *(["--keep-data"] if keep_data else [])]
    with (log_dir / "setup.log").open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", "from services.local.bootstrap import main; main()", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            _show_progress(child, STEPS)
        except BaseException:
            child.terminate()
            child.wait(30)
            raise
        code = child.wait()
    if code != 0:
        raise Unavailable(f"setting up {core.home} failed (code {code}); see {log.name}")


def _show_progress(child: subprocess.Popen[str], steps: int) -> None:
    """The child's JSON lines as step lines and an epoch bar (rich) on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bars: dict[str, Any] = {}
    with Progress(
        TextColumn("[setup] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        assert child.stdout is not None
        for line in child.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("kind") == "step":
                n, what = event["number"], event["what"]
                if event.get("seconds") is None:
                    progress.console.print(
                        f"[setup {n}/{steps}] {what} ...", markup=False, highlight=False
                    )
                else:
                    progress.console.print(
                        f"[setup {n}/{steps}] done in {event['seconds']:.0f} s: {event['detail']}",
                        markup=False,
                        highlight=False,
                    )
            elif event.get("kind") == "epoch":
                stage = event["stage"]
                if stage not in bars:
                    bars[stage] = progress.add_task(f"{stage} epochs", total=event["total"])
                progress.update(bars[stage], completed=event["done"], total=event["total"])
