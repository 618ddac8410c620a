"""Local mode: start a private Ray, deploy ``serve_config.yaml`` on it, stop both cleanly.

The config file is the one the Helm chart embeds; :func:`local_config` changes only what must differ
on a developer machine (the gRPC and HTTP ports, the HTTP host, and ``max_replicas`` capped at what
the local CPUs can hold), so what runs here is what runs on Kubernetes.

Ray is started with ``address="local"`` (always a new private instance, never one a colleague
started with ``ray start`` on the same machine), usage stats off and auth mode set explicitly. Every
listener binds ``host`` (default 127.0.0.1, so nothing is reachable from another machine without the
gateway's token): Ray's own servers (GCS, raylet, workers, agents) through its no-cluster mode,
Serve's HTTP proxy through its config, and Serve's gRPC proxy and the replicas' inter-deployment
gRPC servers (which Ray 2.60 always binds to ``[::]``) through a worker set-up hook,
:func:`bind_serve_grpc`, that every Ray worker of this instance runs. No dashboard, unless
``dashboard_port`` is given: then its job server (loopback only) takes Ray job submissions - the
local stack's retraining jobs - and ``retrain_cpus`` more logical CPUs are added for them, so a
retrain's trials never take the CPUs the solver replicas are sized for; that Ray then keeps its
session files in a temp dir of its own whose ``ray_current_cluster`` names this Ray's GCS
(:func:`_pin_job_address`), so its jobs find this Ray and no other.

``auth_token_file`` (a file of the caller's, mode 0600) starts Ray with token authentication
(``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH``): its GCS, dashboard and job server then refuse
any caller without ``Authorization: Bearer <token>`` (a plain ``curl`` to list or stop jobs gets
401). Serve's gRPC proxy, which the gateway calls, is not one of Ray's authenticated servers and
answers as before. Without it auth is ``disabled`` (a Ray with no job server).
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from optimizer.serving.ports import free_port
from optimizer.serving.tracing import TRACING_ENV

logger = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).with_name("serve_config.yaml")
DEFAULT_GRPC_PORT = 9000
LOOPBACK = "127.0.0.1"
BIND_HOST_ENV = "TAILORLINE_OPTIMIZER_BIND_HOST"


def load_config(path: Path = CONFIG_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    if not isinstance(config, dict) or not config.get("applications"):
        raise ValueError(f"{path}: not a Serve config with applications")
    return config


def local_config(
    config: dict[str, Any],
    *,
    grpc_port: int,
    http_port: int,
    num_cpus: int | None,
    replicas: int | None = None,
    host: str = LOOPBACK,
) -> dict[str, Any]:
    """A copy of ``config`` for this machine: loopback HTTP on ``http_port``, gRPC on
    ``grpc_port``, and each autoscaled deployment's ``max_replicas`` (and ``min_replicas``,
    ``initial_replicas``) capped at what ``num_cpus`` CPUs hold given its ``num_cpus`` per replica.
    ``replicas`` pins every autoscaled deployment to that many replicas instead (benchmarks).
    ``host``: the HTTP proxy's bind address."""
    out = copy.deepcopy(config)
    out["http_options"] = {**out.get("http_options", {}), "host": host, "port": http_port}
    out["grpc_options"] = {**out.get("grpc_options", {}), "port": grpc_port}
    for app in out["applications"]:
        for dep in app.get("deployments", []):
            auto = dep.get("autoscaling_config")
            if not auto:
                continue
            if replicas is not None:
                # None, not absent: an absent key keeps the code's autoscaling_config
                # (serve.build_app's defaults), which would scale past the pinned count
                dep["autoscaling_config"] = None
                dep["num_replicas"] = replicas
                continue
            per_replica = float(dep.get("ray_actor_options", {}).get("num_cpus", 1) or 0)
            if num_cpus is not None and per_replica > 0:
                cap = max(1, int(num_cpus // per_replica))
                for key in ("max_replicas", "min_replicas", "initial_replicas"):
                    if key in auto:
                        auto[key] = min(int(auto[key]), cap)
    return out


@dataclass
class LocalServe:
    """A running local Ray + Serve with the optimizer deployed; :meth:`stop` ends both."""

    grpc_port: int
    http_port: int
    app_names: tuple[str, ...]
    num_cpus: int | None = None
    dashboard_port: int | None = None
    host: str = LOOPBACK
    auth_token_file: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def job_address(self) -> str | None:
        """The Ray job server's address (``JobSubmissionClient``), None without a dashboard."""
        return None if self.dashboard_port is None else f"http://127.0.0.1:{self.dashboard_port}"

    def apply(self, config: dict[str, Any], timeout_s: float = 180.0) -> None:
        """Deploy a changed config (e.g. new ``user_config`` knobs) to the running Serve, as
        ``serve deploy`` or an edited RayService would; ports stay what they are."""
        from ray.serve.schema import ServeDeploySchema

        local = local_config(
            config,
            grpc_port=self.grpc_port,
            http_port=self.http_port,
            num_cpus=self.num_cpus,
            host=self.host,
        )
        _deploy(ServeDeploySchema.model_validate(local))
        _wait_running(self.app_names, timeout_s)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        import ray
        from ray import serve

        try:
            serve.shutdown()
        finally:
            ray.shutdown()
        logger.info("optimizer stopped")

    def __enter__(self) -> LocalServe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    *,
    grpc_port: int = DEFAULT_GRPC_PORT,
    http_port: int | None = None,
    num_cpus: int | None = None,
    config_path: Path = CONFIG_PATH,
    replicas: int | None = None,
    timeout_s: float = 180.0,
    log_to_driver: bool = False,
    dashboard_port: int | None = None,
    retrain_cpus: int = 0,
    host: str = LOOPBACK,
    auth_token_file: Path | None = None,
) -> LocalServe:
    """Start Ray (``num_cpus`` logical CPUs; None = all), Serve with the config's gRPC servicers on
    ``grpc_port``, deploy the applications and wait until they are RUNNING and the gRPC proxy
    answers. ``http_port`` None picks a free one; ``log_to_driver`` streams replica logs here.
    ``dashboard_port`` (0 = a free one) starts the dashboard and its job server on 127.0.0.1;
    ``retrain_cpus`` adds logical CPUs for Ray jobs (replica caps stay sized by ``num_cpus``).
    ``host`` is the address every listener binds (127.0.0.1: this machine only; 0.0.0.0: all
    interfaces, with Ray's node address its own choice). ``auth_token_file``: Ray's token auth
    with that token (see the module's docstring). On any failure Ray is shut down again."""
    _auth_env(auth_token_file)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    loopback = host == LOOPBACK
    if loopback:
        # Ray's "no cluster" mode (its default on macOS/Windows): the node address is 127.0.0.1,
        # so the GCS, the raylet, the workers and the agents listen there only. Read when ray is
        # first imported; the raylet and workers inherit it.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from ray import serve
    from ray.serve.config import gRPCOptions
    from ray.serve.schema import ServeDeploySchema

    http_port = http_port or free_port()
    config = ServeDeploySchema.model_validate(
        local_config(
            load_config(config_path),
            grpc_port=grpc_port,
            http_port=http_port,
            num_cpus=num_cpus,
            replicas=replicas,
            host=host,
        )
    )
    if dashboard_port == 0:
        dashboard_port = free_port()
    if dashboard_port is not None:
        _agent_port(free_port())
    total_cpus = None if num_cpus is None else num_cpus + max(0, retrain_cpus)
    # A private temp dir: a job's driver finds its cluster through "auto", i.e. the
    # ray_current_cluster file in the temp dir, which in the shared /tmp/ray names whichever Ray on
    # the machine started last (a colleague's): the retrain would run on, and die with, that one.
    temp_dir = tempfile.mkdtemp(prefix="tl-ray-") if dashboard_port is not None else None
    ray.init(
        address="local",
        _temp_dir=temp_dir,
        num_cpus=total_cpus,
        include_dashboard=dashboard_port is not None,
        dashboard_host=LOOPBACK if loopback else host,
        dashboard_port=dashboard_port or 8265,
        log_to_driver=log_to_driver,
        runtime_env={
            "worker_process_setup_hook": f"{__name__}.bind_serve_grpc",
            # the replicas export their spans where this process was told to (tracing.py)
            "env_vars": {
                BIND_HOST_ENV: host,
                **{k: os.environ[k] for k in TRACING_ENV if os.environ.get(k)},
            },
        },
    )
    handle = LocalServe(
        grpc_port,
        http_port,
        tuple(a.name for a in config.applications),
        num_cpus=num_cpus,
        dashboard_port=dashboard_port,
        host=host,
        auth_token_file=auth_token_file,
    )
    try:
        if temp_dir is not None:
            _pin_job_address(temp_dir)
        serve.start(
            proxy_location=config.proxy_location,
            http_options=config.http_options.model_dump(),
            grpc_options=gRPCOptions(**config.grpc_options.model_dump()),
            logging_config=config.logging_config,
        )
        _deploy(config)
        _wait_running(handle.app_names, timeout_s)
        _wait_grpc(handle.grpc_target, timeout_s)
        if handle.job_address is not None:
            _wait_http(f"{handle.job_address}/api/version", timeout_s, auth_token_file)
    except BaseException:
        handle.stop()
        raise
    logger.info("optimizer serving gRPC on %s", handle.grpc_target)
    return handle


def _auth_env(token_file: Path | None) -> None:
    """Ray's auth mode for this process and every Ray process it starts (read from the
    environment by Ray's GCS, raylet, agents and workers): ``token`` with ``token_file``, else
    ``disabled``. The file must hold the token: Ray would otherwise make one of its own in
    ``~/.ray/auth_token``."""
    if token_file is None:
        os.environ["RAY_AUTH_MODE"] = "disabled"
        return
    path = Path(token_file).resolve()
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the Ray auth token file {token_file}: {exc}") from None
    if not token:
        raise ValueError(f"the Ray auth token file {token_file} is empty")
    os.environ.pop("RAY_AUTH_TOKEN", None)  # would win over the file
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)


def _pin_job_address(temp_dir: str) -> None:
    """Write this Ray's GCS address to ``<temp_dir>/ray_current_cluster``, as ``ray start`` does.

    A submitted job's driver gets its ``RAY_ADDRESS`` from Ray 2.60's job supervisor, which
    resolves ``"auto"`` (it overwrites any ``RAY_ADDRESS`` a runtime env sets) from that file in
    the node's temp dir; ``ray.init(address="local")`` writes no such file, and without one
    "auto" takes any GCS process found on the machine: a colleague's Ray, another stack's."""
    import ray
    from ray._private.utils import write_ray_address

    write_ray_address(ray.get_runtime_context().gcs_address, temp_dir)


def bind_serve_grpc() -> None:
    """Worker set-up hook (runs in every Ray worker of a local optimizer): Serve's gRPC proxy and
    a replica's inter-deployment gRPC server bind ``$TAILORLINE_OPTIMIZER_BIND_HOST`` instead of
    ``[::]`` (all interfaces), which Ray 2.60 hard-codes. A bind-all host changes nothing."""
    host = os.environ.get(BIND_HOST_ENV, LOOPBACK)
    if host in ("0.0.0.0", "::", "[::]"):
        return
    from ray.serve._private import default_impl, replica

    def rebind(address: str) -> str:
        return f"{host}:{address[5:]}" if address.startswith("[::]:") else address

    add_grpc, add_port = default_impl.add_grpc_address, replica.add_port_to_grpc_server

    def add_grpc_address(grpc_server: Any, server_address: str) -> Any:
        return add_grpc(grpc_server, rebind(server_address))

    def add_port_to_grpc_server(server: Any, address: str) -> Any:
        return add_port(server, rebind(address))

    default_impl.add_grpc_address = add_grpc_address
    replica.add_port_to_grpc_server = add_port_to_grpc_server


def _agent_port(port: int) -> None:
    """Make this process's ``ray.init`` start the dashboard agent (which runs submitted jobs) on
    ``port``. ``ray.init`` has no argument for it and always uses 52365, so a second Ray with a
    dashboard on the same machine (a colleague's, another stack) gets no agent and refuses every
    job ("No available agent to submit job"); ``ray start`` has ``--dashboard-agent-listen-port``.
    """
    from ray._private import parameter

    init = parameter.RayParams.__init__
    if getattr(init, "_tailorline_agent_port", None) is not None:
        init = init.__wrapped__  # type: ignore[attr-defined]

    def patched(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("dashboard_agent_listen_port", port)
        init(self, *args, **kwargs)

    patched.__wrapped__ = init  # type: ignore[attr-defined]
    patched._tailorline_agent_port = port  # type: ignore[attr-defined]
    parameter.RayParams.__init__ = patched  # type: ignore[method-assign]


def _deploy(config: Any) -> None:
    # What `serve run config.yaml` / `serve deploy` do: hand the whole config to the controller,
    # so the deployments' options come from the file exactly as on KubeRay.
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    assert client is not None, "serve.start() must run first"
    client.deploy_apps(config, _blocking=False)


def _wait_running(app_names: tuple[str, ...], timeout_s: float) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    while True:
        apps = serve.status().applications
        states = {name: apps[name].status if name in apps else None for name in app_names}
        failed = {
            n: apps[n].message
            for n, s in states.items()
            if s in (ApplicationStatus.DEPLOY_FAILED, ApplicationStatus.UNHEALTHY)
        }
        if failed:
            raise RuntimeError(f"Serve application(s) failed to deploy: {failed}")
        if all(s == ApplicationStatus.RUNNING for s in states.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Serve applications not RUNNING after {timeout_s:.0f} s: {states}")
        time.sleep(0.5)


def _wait_grpc(target: str, timeout_s: float) -> None:
    """Until Serve's own gRPC health RPC answers on the proxy port."""
    import grpc
    from ray.serve.generated import serve_pb2, serve_pb2_grpc

    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(target) as channel:
        stub = serve_pb2_grpc.RayServeAPIServiceStub(channel)
        while True:
            try:
                stub.Healthz(serve_pb2.HealthzRequest(), timeout=5)  # type: ignore[attr-defined]
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def _wait_http(url: str, timeout_s: float, token_file: Path | None = None) -> None:
    """Until ``url`` answers 200 (the dashboard's job server is up); with the token if any."""
    import urllib.error
    import urllib.request

    headers = {}
    if token_file is not None:
        headers["Authorization"] = f"Bearer {Path(token_file).read_text(encoding='utf-8').strip()}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s")
        time.sleep(0.5)
