"""`tailorline up` as a user runs it: it prints the addresses once everything is healthy, a plan
comes back through `tailorline plan`, and SIGTERM stops every process it started (Ray's workers
included: nothing is left in any of the children's process groups)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from services.local.stack import _cli, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _groups() -> dict[int, int]:
    """pid -> process group of every live (non-zombie) process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            out[int(entry.name)] = int(fields[2])
    return out


def test_up_serves_plans_and_sigterm_leaves_no_process_behind(
    gateway_home: Path, tmp_path: Path
) -> None:
    ports = [str(free_port()) for _ in range(5)]
    env = {**os.environ, "TAILORLINE_HOME": str(gateway_home)}
    env.pop("TAILORLINE_GATEWAY_AUTH_TOKEN", None)
    stderr = (tmp_path / "up.stderr").open("wb")  # its progress and, if it fails, why
    up = subprocess.Popen(
        [
            *_cli(),
            "--json",
            "up",
            "--port",
            ports[0],
            "--metrics-port",
            ports[1],
            "--predictor-http-port",
            ports[2],
            "--predictor-grpc-port",
            ports[3],
            "--optimizer-port",
            ports[4],
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    stderr.close()
    try:
        assert up.stdout is not None
        text = ""
        while not text.rstrip().endswith("}"):  # the addresses, as JSON, once all are healthy
            line = up.stdout.readline()
            if not line:
                why = (tmp_path / "up.stderr").read_text(errors="replace")[-4000:]
                pytest.fail(f"tailorline up exited with {up.wait(5)}:\n{why}")
            assert len(text) < 10_000, text
            text += line
        addresses = json.loads(text)
        assert addresses["gateway"] == f"127.0.0.1:{ports[0]}"
        children = [p for p, g in _groups().items() if _parent(p) == up.pid]
        assert len(children) == 3  # predictor, optimizer, gateway
        assert len([p for p, g in _groups().items() if g in children]) > 3  # Ray's processes too

        plan = subprocess.run(
            [
                *_cli(),
                "--json",
                "plan",
                "--gateway",
                addresses["gateway"],
                "--horizon",
                "2",
                "--time-limit",
                "5",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert plan.returncode == 0, plan.stderr
        assert len(json.loads(plan.stdout)["periods"]) == 2

        up.send_signal(signal.SIGTERM)
        assert up.wait(120) == 0
        deadline = time.monotonic() + 10
        left = [p for p, g in _groups().items() if g in children]
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = [p for p, g in _groups().items() if g in children]
        assert not left
    finally:
        if up.poll() is None:  # a failed assertion above: still stop everything it started
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(120)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait(30)


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat[stat.rindex(")") + 2 :].split()[1])
