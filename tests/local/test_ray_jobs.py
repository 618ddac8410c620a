"""The optimizer's Ray as the local stack runs it for retraining jobs (``--dashboard-port``,
``--auth-token-file``), with ANOTHER Ray running on the same machine (a colleague's, another
stack's):

- its job API refuses a plain call (no token: 401, a wrong one: 403), as ``curl`` would make it,
  to list jobs or to stop one; with the home's token it answers;
- a submitted job's driver joins THIS Ray, never the other one: Ray 2.60's job supervisor resolves
  the driver's ``RAY_ADDRESS`` from ``ray_current_cluster`` in the node's temp dir, which
  :func:`optimizer.serving.local.start` writes (without it, "auto" takes any GCS on the machine).

Two Rays for the module: the optimizer (a real ``tailorline optimizer`` process) and a bare one.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.common.keys import ensure_ray_auth_token
from services.local.procs import kill_session, session
from services.local.stack import _cli, free_port
from services.training.launch import LocalRayLauncher, auth_headers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: a Ray that is not ours: 1 CPU and a resource of its own, its GCS address on stdout
OTHER_RAY = """
import sys, tempfile, ray
ray.init(address="local", num_cpus=1, resources={"other_ray": 1}, include_dashboard=False,
         _temp_dir=tempfile.mkdtemp(prefix="tl-other-ray-"))
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
"""

#: a job's driver: which cluster did it join?
WHERE = (
    "import json, ray; ray.init(); "
    "print('JOINED', json.dumps({'gcs': ray.get_runtime_context().gcs_address, "
    "'resources': sorted(ray.cluster_resources())}))"
)


@dataclass
class Rays:
    jobs: str  # our Ray's job server (http://127.0.0.1:port)
    token: Path
    optimizer: subprocess.Popen[bytes]
    other_gcs: str


def _start_other(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", OTHER_RAY],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, f"the other Ray did not start (code {proc.poll()})"
    return proc, line


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
    kill_session(proc.pid)  # its own session: Ray's GCS, raylet, agents and workers


@pytest.fixture(scope="module")
def rays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rays]:
    home = tmp_path_factory.mktemp("ray-jobs")
    token = ensure_ray_auth_token(home)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    other, other_gcs = _start_other(env)
    log_path = home / "optimizer.log"
    optimizer = None
    try:
        with log_path.open("wb") as log:
            optimizer = subprocess.Popen(
                [
                    *_cli(),
                    "optimizer",
                    "--grpc-port",
                    str(free_port()),
                    "--num-cpus",
                    "1",
                    "--dashboard-port",
                    "0",
                    "--retrain-cpus",
                    "1",
                    "--auth-token-file",
                    str(token),
                ],
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline, jobs = time.monotonic() + 300, ""
        while not jobs:
            text = log_path.read_text(errors="replace")
            assert optimizer.poll() is None, text[-3000:]
            assert time.monotonic() < deadline, f"the optimizer did not come up: {text[-3000:]}"
            jobs = next(
                (ln.rsplit(" ", 1)[1] for ln in text.splitlines() if "Ray job submission" in ln),
                "",
            )
            time.sleep(0.5)
        yield Rays(jobs, token, optimizer, other_gcs)
    finally:
        if optimizer is not None:
            _stop(optimizer)
        _stop(other)


def _status(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_token_is_owner_only_and_kept(rays: Rays) -> None:
    assert stat.S_IMODE(rays.token.stat().st_mode) == 0o600
    assert len(rays.token.read_text().strip()) == 64
    before = rays.token.read_text()
    assert ensure_ray_auth_token(rays.token.parent) == rays.token
    assert rays.token.read_text() == before  # never rewritten: the running Ray keeps its token


def test_the_job_api_refuses_a_call_without_the_token(rays: Rays) -> None:
    wrong = {"Authorization": "Bearer " + "0" * 64}
    measured = {
        "GET /api/jobs/": _status(f"{rays.jobs}/api/jobs/"),
        "POST /api/jobs/x/stop": _status(f"{rays.jobs}/api/jobs/x/stop", "POST"),
        "DELETE /api/jobs/x": _status(f"{rays.jobs}/api/jobs/x", "DELETE"),
        "GET /api/jobs/ (wrong token)": _status(f"{rays.jobs}/api/jobs/", headers=wrong),
        "POST stop (wrong token)": _status(f"{rays.jobs}/api/jobs/x/stop", "POST", wrong),
        "GET /api/jobs/ (token)": _status(
            f"{rays.jobs}/api/jobs/", headers=auth_headers(rays.token)
        ),
    }
    print(f"\n{measured}")
    assert measured == {
        "GET /api/jobs/": 401,
        "POST /api/jobs/x/stop": 401,
        "DELETE /api/jobs/x": 401,
        "GET /api/jobs/ (wrong token)": 403,
        "POST stop (wrong token)": 403,
        "GET /api/jobs/ (token)": 200,
    }


def _listening_ports(pid: int) -> set[str]:
    """Ports process ``pid`` listens on (TCP, v4 and v6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and int(cols[9]) in inodes:  # LISTEN
                ports.add(str(int(cols[1].rsplit(":", 1)[1], 16)))
    return ports


def _our_gcs_ports(optimizer: subprocess.Popen[bytes]) -> set[str]:
    """What the optimizer's Ray's GCS listens on: its gcs_server runs in the optimizer's session."""
    for p in session(optimizer.pid):
        try:
            argv0 = Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"gcs_server"):
            return _listening_ports(p.pid)
    raise AssertionError("no gcs_server in the optimizer's session")


def test_a_job_joins_this_ray_and_not_another_one(rays: Rays) -> None:
    launcher = LocalRayLauncher(None, rays.jobs, auth_token_file=rays.token)
    client = launcher.client()
    ports = _our_gcs_ports(rays.optimizer)
    ids = [
        client.submit_job(
            entrypoint=f"{sys.executable} -c {json.dumps(WHERE)}",
            runtime_env={"env_vars": launcher.job_env()},
        )
        for _ in range(3)  # the fallback's pick among the machine's GCSes is arbitrary
    ]
    for job in ids:
        deadline = time.monotonic() + 240
        while str(client.get_job_status(job).value) not in ("SUCCEEDED", "FAILED", "STOPPED"):
            assert time.monotonic() < deadline, f"job {job} did not end"
            time.sleep(1)
        logs = client.get_job_logs(job)
        assert str(client.get_job_status(job).value) == "SUCCEEDED", logs[-3000:]
        joined = json.loads(logs.split("JOINED ", 1)[1].splitlines()[0])
        assert joined["gcs"] != rays.other_gcs
        assert joined["gcs"].rsplit(":", 1)[1] in ports, (joined, ports)
        assert "other_ray" not in joined["resources"]
