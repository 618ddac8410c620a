"""The local stack: predictor, optimizer (local Ray + Serve) and gateway as child processes.

``LocalStack(core).start()`` picks free ports (unless given), starts the three ``tailorline``
commands each in its own process group, waits until the predictor's models are ready, Serve's gRPC
proxy answers and the gateway's health service says SERVING, and exposes the addresses. The
optimizer's Ray also runs its job server (``ray_jobs``; a free loopback port) with
``retrain_cpus`` extra logical CPUs, and the gateway is told its address: ``Retrain`` submits
retraining jobs there (the local launcher). That Ray runs with token authentication: the home's
``ray_auth_token`` (:func:`services.common.keys.ensure_ray_auth_token`, mode 0600) goes to the
optimizer (``--auth-token-file``) and to the gateway (``ray_auth_token_file``), and
:meth:`LocalStack.stop_ray_jobs` sends it; a call without it (a plain ``curl`` to list or stop
jobs) gets 401. ``triggers`` switches the gateway's retrain trigger
on (``tailorline up`` does; the tests' stack leaves it off so feedback never starts a job).
``stop()`` sends SIGTERM to each (gateway first), waits, then kills whatever is left of each
process's session (:func:`services.local.procs.kill_session`: Ray's agents and actors too), so no
Ray worker or server outlives it. Every listener binds ``bind_host`` (127.0.0.1: reachable from
this machine only, so nothing bypasses the gateway's token);
:class:`services.local.supervise.Supervisor` restarts a component that dies (``tailorline up``).
Used by ``tailorline up``, the demo, the simulator and the tests; a fresh data directory is made
usable first by :func:`services.local.bootstrap.bootstrap_home`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from optimizer.serving.client import OptimizerClient
from optimizer.serving.ports import free_port
from services.common.errors import Unavailable
from services.common.keys import ensure_ray_auth_token
from services.common.settings import CoreSettings
from services.gateway.downstream import PredictorClient
from services.local.procs import kill_session
from services.store.db import make_engine, migrate
from services.training.launch import auth_headers, reconcile

Say = Callable[[str], None]
COMPONENTS = ("predictor", "optimizer", "gateway")  # start order


def _cli(*args: str) -> list[str]:
    """argv of a ``tailorline`` command in this interpreter. Not ``-m services.cli``: run as
    ``__main__`` the module's CliState is another class than the one commands check, so global
    options such as ``--json`` would be lost."""
    return [sys.executable, "-c", "from services.cli import main; main()", *args]


def _env(core: CoreSettings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TAILORLINE_HOME=str(core.home),
        TAILORLINE_DB_URL=core.resolved_db_url,
        TAILORLINE_MODELS_DIR=str(core.resolved_models_dir),
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        TF_CPP_MIN_LOG_LEVEL=env.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    )
    env.update(extra or {})
    return env


@dataclass
class LocalStack:
    """Three child processes and their addresses (127.0.0.1)."""

    core: CoreSettings
    gateway_port: int = 0
    metrics_port: int = 0
    predictor_http_port: int = 0
    predictor_grpc_port: int = 0
    optimizer_port: int = 0
    optimizer_cpus: int = 1
    ray_jobs: bool = True
    retrain_cpus: int = 2
    dashboard_port: int = 0
    triggers: bool = False
    token: str | None = None
    bind_host: str = "127.0.0.1"
    log_dir: Path | None = None
    ray_auth_token_file: Path | None = None
    gateway_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "gateway_port",
            "metrics_port",
            "predictor_http_port",
            "predictor_grpc_port",
            "optimizer_port",
            "dashboard_port",
        ):
            if not getattr(self, name):
                setattr(self, name, free_port())
        self.log_dir = self.log_dir or self.core.home / "logs"
        if self.ray_jobs and self.ray_auth_token_file is None:
            self.ray_auth_token_file = ensure_ray_auth_token(self.core.home)

    # ------------------------------------------------------------------ addresses
    @property
    def gateway_target(self) -> str:
        return f"127.0.0.1:{self.gateway_port}"

    @property
    def predictor_target(self) -> str:
        return f"127.0.0.1:{self.predictor_grpc_port}"

    @property
    def optimizer_target(self) -> str:
        return f"127.0.0.1:{self.optimizer_port}"

    def addresses(self) -> dict[str, str]:
        return {
            "gateway": self.gateway_target,
            "gateway metrics": f"http://127.0.0.1:{self.metrics_port}/metrics",
            "predictor (V2 REST)": f"http://127.0.0.1:{self.predictor_http_port}",
            "predictor (V2 gRPC)": self.predictor_target,
            "optimizer (Serve gRPC)": self.optimizer_target,
            **({"Ray jobs (retraining)": self.ray_address} if self.ray_jobs else {}),
        }

    @property
    def ray_address(self) -> str:
        """The optimizer's Ray job server (where the gateway submits retraining jobs)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        assert self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in _reap
        self._logs[name] = log
        self.procs[name] = subprocess.Popen(
            _cli(*args),
            env=_env(self.core, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C reaches only us; stop kills it
        )

    def log_tail(self, name: str, lines: int = 5) -> str:
        """The last ``lines`` lines of a component's log, on one line."""
        path = (self.log_dir or self.core.home / "logs") / f"{name}.log"
        if not path.exists():
            return ""
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 16384))
            text = fh.read().decode(errors="replace")
        return " | ".join(text.splitlines()[-lines:])

    def _alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise Unavailable(f"{name} exited with code {proc.returncode}: {self.log_tail(name)}")

    def start_predictor(self) -> None:
        self._spawn(
            "predictor",
            [
                "predictor",
                "--models",
                str(self.core.resolved_models_dir),
                "--http-port",
                str(self.predictor_http_port),
                "--grpc-port",
                str(self.predictor_grpc_port),
            ],
            {"TAILORLINE_PREDICTOR_HOST": self.bind_host},
        )

    def start_optimizer(self) -> None:
        token = self.ray_auth_token_file if self.ray_jobs else None
        self._spawn(
            "optimizer",
            [
                "optimizer",
                "--grpc-port",
                str(self.optimizer_port),
                "--num-cpus",
                str(self.optimizer_cpus),
                "--host",
                self.bind_host,
                *(
                    [
                        "--dashboard-port",
                        str(self.dashboard_port),
                        "--retrain-cpus",
                        str(self.retrain_cpus),
                    ]
                    if self.ray_jobs
                    else []
                ),
                *(["--auth-token-file", str(token)] if token else []),
            ],
        )

    def start_gateway(self) -> None:
        env = {
            "TAILORLINE_GATEWAY_HOST": self.bind_host,
            "TAILORLINE_GATEWAY_PORT": str(self.gateway_port),
            "TAILORLINE_GATEWAY_METRICS_PORT": str(self.metrics_port),
            "TAILORLINE_GATEWAY_PREDICTOR_URL": self.predictor_target,
            "TAILORLINE_GATEWAY_OPTIMIZER_URL": self.optimizer_target,
            "TAILORLINE_GATEWAY_HEALTH_INTERVAL_S": "0.5",
            "TAILORLINE_GATEWAY_RETRAIN_LAUNCHER": "local",
            "TAILORLINE_GATEWAY_RAY_ADDRESS": self.ray_address if self.ray_jobs else "",
            "TAILORLINE_GATEWAY_TRIGGER_ENABLED": "true" if self.triggers else "false",
            **self.gateway_env,
        }
        if self.ray_jobs and self.ray_auth_token_file is not None:
            env.setdefault("TAILORLINE_GATEWAY_RAY_AUTH_TOKEN_FILE", str(self.ray_auth_token_file))
        if self.token:
            env["TAILORLINE_GATEWAY_AUTH_TOKEN"] = self.token
        self._spawn("gateway", ["gateway"], env)

    def wait_predictor(self, timeout_s: float = 180.0) -> None:
        client = PredictorClient(self.predictor_target)
        try:
            self._wait("predictor", client.ready, timeout_s)
        finally:
            client.close()

    def wait_optimizer(self, timeout_s: float = 240.0) -> None:
        client = OptimizerClient(self.optimizer_target)
        try:
            self._wait("optimizer", client.ready, timeout_s)
        finally:
            client.close()

    def wait_gateway(self, timeout_s: float = 60.0) -> None:
        with grpc.insecure_channel(self.gateway_target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                try:
                    r = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                except grpc.RpcError:
                    return False
                return bool(r.status == health_pb2.HealthCheckResponse.SERVING)

            self._wait("gateway", serving, timeout_s)

    def _wait(self, name: str, probe: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._alive(name)
            if probe():
                return
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"{name} not ready after {timeout_s:.0f} s (logs: {self.log_dir})"
                )
            time.sleep(0.3)

    def start(self, say: Say | None = None) -> LocalStack:
        """Start all three and wait until healthy; on any failure stop what was started."""
        say = say or (lambda _m: None)
        # the gateway never migrates: the stack brings its own store to this release's schema
        migrate(self.core.resolved_db_url)
        try:
            say("starting the predictor and the optimizer ...")
            self.start_predictor()
            self.start_optimizer()
            self.wait_predictor()
            say(f"predictor ready on {self.predictor_target}")
            self.wait_optimizer()
            say(f"optimizer ready on {self.optimizer_target}")
            self.start_gateway()
            self.wait_gateway()
            say(f"gateway SERVING on {self.gateway_target}")
        except BaseException:
            self.stop()
            raise
        return self

    def start_component(self, name: str) -> None:
        """Start one component (no wait): ``predictor``, ``optimizer`` or ``gateway``."""
        {
            "predictor": self.start_predictor,
            "optimizer": self.start_optimizer,
            "gateway": self.start_gateway,
        }[name]()

    def stop_process(self, name: str, timeout_s: float = 30.0) -> None:
        """SIGTERM, wait, then SIGKILL the whole process group, then whatever is left of the
        process's session (Ray's agents and actors; no orphans). Also for one that died."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        _kill_group(proc.pid)
        kill_session(proc.pid)  # it started a session of its own: sid == its pid
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()

    def stop(self) -> None:
        self.stop_ray_jobs()
        for name in ("gateway", "predictor", "optimizer"):
            self.stop_process(name)

    def stop_ray_jobs(self, timeout_s: float = 20.0) -> list[str]:
        """Stop the retraining jobs still running on the optimizer's Ray and mark their rows
        ``failed`` (a job's driver runs in its own session: the optimizer's process group does
        not hold it). Best effort; returns the retrain job ids it stopped."""
        if not self.ray_jobs or "optimizer" not in self.procs:
            return []

        def call(path: str, method: str = "GET") -> Any:
            url, headers = f"{self.ray_address}{path}", auth_headers(self.ray_auth_token_file)
            req = urllib.request.Request(url, method=method, headers=headers)
            with urllib.request.urlopen(req, timeout=5) as response:
                return json.loads(response.read() or b"null")

        ended = ("SUCCEEDED", "FAILED", "STOPPED")
        try:
            jobs = [  # submitted jobs only (the optimizer itself is listed as a driver job)
                j
                for j in call("/api/jobs/")
                if j.get("submission_id") and j.get("status") not in ended
            ]
            for job in jobs:
                call(f"/api/jobs/{job['submission_id']}/stop", method="POST")
            deadline = time.monotonic() + timeout_s
            states: dict[str, str] = {}
            while jobs and time.monotonic() < deadline:
                states = {j["submission_id"]: j["status"] for j in call("/api/jobs/")}
                if all(states.get(j["submission_id"]) in ended for j in jobs):
                    break
                time.sleep(0.5)
        except Exception:  # the Ray is gone already, or never had a job server
            return []
        prefix = "tailorline-retrain-"
        stopped = [
            j["submission_id"][len(prefix) :] for j in jobs if j["submission_id"].startswith(prefix)
        ]
        if stopped:
            engine = make_engine(self.core.resolved_db_url)
            try:
                for job_id in stopped:
                    with contextlib.suppress(Exception):
                        reconcile(engine, job_id, "STOPPED", "the local stack was stopped")
            finally:
                engine.dispose()
        return stopped

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _kill_group(pgid: int) -> None:
    """Whatever is left in the child's process group (e.g. Ray workers) after it exited."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
        time.sleep(0.5)
        os.killpg(pgid, signal.SIGKILL)
