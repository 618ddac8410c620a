"""`tailorline up` as an operator meets it, on a fresh home (tiny preset), one `up` for the module:

- the home is set up in a child process, gets its own pseudonym key (0600) and keeps no raw data;
- every listening socket of every process `up` started binds 127.0.0.1;
- `kill -9` of the optimizer or the predictor: the gateway's health goes NOT_SERVING, the component
  is restarted and health is SERVING again with no manual step; nothing of the dead one is left
  (its session: Ray's agents included);
- SIGTERM to the gateway while a plan is in flight (the predictor held with SIGSTOP, ~60 s): the
  plan completes and comes back;
- after `up` stops, no process it started (or their orphans) is left;
- the optimizer's Ray (retraining jobs) runs with the home's token (0600): its job API answers 401
  to a plain call, as `curl` makes it, to list or to stop jobs.

Measured times are printed (``-s``); the bounds asserted are generous (shared CI machines).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.local.procs import Proc, descendants, read_proc, session
from services.local.stack import _cli, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass
class Up:
    proc: subprocess.Popen[str]
    home: Path
    addresses: dict[str, str]
    env: dict[str, str]
    seen: list[Proc]  # every descendant of `up` observed during the tests

    def children(self) -> dict[str, int]:
        """component name -> pid of `up`'s child running it."""
        out = {}
        for p in descendants(self.proc.pid):
            if p.ppid != self.proc.pid or p.state == "Z":
                continue
            cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes()  # the predictor execs
            for name in ("predictor", "optimizer", "gateway"):  # python -m services.predictor...
                if name.encode() in cmdline:
                    out[name] = p.pid
        return out

    def observe(self) -> None:
        self.seen.extend(descendants(self.proc.pid))

    def health(self) -> int | None:
        with grpc.insecure_channel(self.addresses["gateway"]) as channel:
            try:
                return int(
                    health_pb2_grpc.HealthStub(channel)
                    .Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    .status
                )
            except grpc.RpcError:
                return None


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    home = tmp_path_factory.mktemp("up") / "home"
    env = {
        **os.environ,
        "TAILORLINE_HOME": str(home),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    for key in ("TAILORLINE_GATEWAY_AUTH_TOKEN", "TAILORLINE_DEV_PSEUDONYM_KEY"):
        env.pop(key, None)
    ports = [str(free_port()) for _ in range(5)]
    stderr = (home.parent / "up.stderr").open("wb")  # its progress and, if it fails, why
    flags = ["--port", "--metrics-port", "--predictor-http-port", "--predictor-grpc-port"]
    proc = subprocess.Popen(
        [
            *_cli(),
            "--json",
            "up",
            "--preset",
            "tiny",
            "--no-triggers",
            "--retrain-cpus",
            "1",
            *[x for pair in zip([*flags, "--optimizer-port"], ports, strict=True) for x in pair],
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    stderr.close()
    stack = Up(proc, home, {}, env, [])
    try:
        assert proc.stdout is not None
        text = ""
        while not text.rstrip().endswith("}"):  # the addresses, once everything is healthy
            line = proc.stdout.readline()
            if not line:
                why = (home.parent / "up.stderr").read_text(errors="replace")[-4000:]
                pytest.fail(f"tailorline up exited with {proc.wait(5)}:\n{why}")
            text += line
        stack.addresses = json.loads(text)
        stack.observe()
        yield stack
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(300)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def _wait(probe: object, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not probe():  # type: ignore[operator]
        assert time.monotonic() - t0 < timeout_s, f"{what}: not after {timeout_s:.0f} s"
        time.sleep(0.2)
    return time.monotonic() - t0


def test_a_fresh_home_has_its_own_key_and_no_raw_data(up: Up) -> None:
    key = up.home / "pseudonym_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_text().strip()) == 64
    assert not (up.home / "data" / "tiny").exists()  # raw CSVs with names and e-mails: gone
    assert {"predictor", "optimizer", "gateway"} == set(up.children())


def test_the_ray_job_api_refuses_a_plain_call(up: Up) -> None:
    token = up.home / "ray_auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    jobs = up.addresses["Ray jobs (retraining)"]

    def status(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(url, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    bearer = {"Authorization": f"Bearer {token.read_text().strip()}"}
    measured = {
        "GET /api/jobs/": status(f"{jobs}/api/jobs/"),
        "POST /api/jobs/x/stop": status(f"{jobs}/api/jobs/x/stop", "POST"),
        "GET /api/jobs/ with the token": status(f"{jobs}/api/jobs/", headers=bearer),
    }
    print(f"\nup's Ray job API: {measured}")
    assert measured == {
        "GET /api/jobs/": 401,
        "POST /api/jobs/x/stop": 401,
        "GET /api/jobs/ with the token": 200,
    }


def _listeners() -> dict[int, str]:
    """socket inode -> local address of every listening TCP socket (v4 and v6)."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A":  # LISTEN
                out[int(cols[9])] = cols[1]
    return out


def test_every_listener_binds_loopback(up: Up) -> None:
    listeners, found = _listeners(), {}
    for p in descendants(up.proc.pid):
        try:
            fds = list(Path(f"/proc/{p.pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in listeners:
                    found[(p.pid, inode)] = listeners[inode]
    assert len(found) > 10  # gateway, predictor, Serve's proxies, Ray's servers
    v4_mapped, v6 = "0000000000000000FFFF00000100007F:", "00000000000000000000000001000000:"
    loopback = ("0100007F:", v4_mapped, v6)
    exposed = {k: a for k, a in found.items() if not a.startswith(loopback)}
    assert not exposed, exposed


@pytest.mark.parametrize("component", ["optimizer", "predictor"])
def test_kill_9_is_restarted_and_health_recovers(up: Up, component: str) -> None:
    assert up.health() == SERVING
    pid = up.children()[component]
    up.observe()
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    down = _wait(lambda: up.health() != SERVING, 30, "health NOT_SERVING")
    back = _wait(lambda: up.children().get(component, pid) != pid, 120, "restarted")
    serving = _wait(lambda: up.health() == SERVING, 180, "health SERVING again")
    total = time.monotonic() - t0
    up.observe()
    print(
        f"\n{component} kill -9: NOT_SERVING after {down:.1f} s, new process after "
        f"{down + back:.1f} s, SERVING again after {total:.1f} s"
    )
    assert not session(pid), f"left of the killed {component}: {session(pid)}"
    del serving


def test_sigterm_to_the_gateway_lets_an_inflight_plan_finish(up: Up) -> None:
    assert _wait(lambda: up.health() == SERVING, 180, "SERVING") >= 0
    children = up.children()
    plan = subprocess.Popen(
        [
            *_cli(),
            "--json",
            "plan",
            "--gateway",
            up.addresses["gateway"],
            "--horizon",
            "2",
            "--time-limit",
            "5",
        ],
        env=up.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.kill(children["predictor"], signal.SIGSTOP)  # the plan waits for its forecast
    try:
        time.sleep(5)
        t0 = time.monotonic()
        os.kill(children["gateway"], signal.SIGTERM)
        time.sleep(50)
    finally:
        os.kill(children["predictor"], signal.SIGCONT)
    out, err = plan.communicate(timeout=120)
    took = time.monotonic() - t0
    print(f"\nplan returned {took:.1f} s after the gateway's SIGTERM (plan ran {took + 5:.0f} s)")
    assert plan.returncode == 0, err
    assert len(json.loads(out)["periods"]) == 2
    # the drained gateway exited and was restarted; the stack serves again
    _wait(lambda: up.health() == SERVING, 180, "SERVING after the gateway's restart")
    assert up.children()["gateway"] != children["gateway"]


def test_up_stops_and_leaves_no_process_behind(up: Up) -> None:
    up.observe()
    sessions = set(up.children().values())
    seen = {p.pid: p for p in up.seen}
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(300) == 0

    def left() -> list[Proc]:
        alive = [read_proc(pid) for pid in seen]
        same = [p for p in alive if p and p.start == seen[p.pid].start and p.state != "Z"]
        return same + [p for sid in sessions for p in session(sid)]

    _wait(lambda: not left(), 15, f"processes left: {left()}")
