"""A local Ray stopped by ``shutdown_ray`` leaves no process of its own behind."""

from __future__ import annotations

import contextlib

import psutil
import pytest

from services.training.ray_local import shutdown_ray

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_process_a_task_started_does_not_outlive_the_ray_it_ran_on(monkeypatch) -> None:
    """A process of the local Ray that outlives ``ray.shutdown()`` (a Train controller actor once
    did, re-parented to PID 1) is stopped by PID; a process Ray did not start is left alone.
    Stand-in: a task's child, with Ray's own clean-up of a worker's children turned off."""
    import subprocess

    import ray

    bystander = subprocess.Popen(["sleep", "60"])  # this test's own, not Ray's
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_kill_child_processes_on_worker_exit", "0")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:

        @ray.remote
        def start_child() -> int:
            return subprocess.Popen(["sleep", "60"], start_new_session=True).pid

        pid = ray.get(start_child.remote())
        child = psutil.Process(pid)
        assert child.is_running()
    finally:
        stopped = shutdown_ray(grace_s=2.0)
    try:
        assert pid in stopped
        with contextlib.suppress(psutil.NoSuchProcess):
            assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
        assert bystander.poll() is None  # not Ray's: still running
    finally:
        bystander.kill()
        bystander.wait()
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
