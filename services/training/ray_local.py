"""Stop a local Ray completely: ``ray.shutdown()`` and then, by PID, any of its workers that
outlived it.

``ray.shutdown()`` stops the raylet and GCS a process started with ``ray.init()``; the workers
(task and actor processes, children of the raylet) are meant to exit when their raylet goes. One
did not: after a test run a ``ray::TrainController`` actor of Ray Train was still alive, reparented
to PID 1, holding memory until it was stopped by hand. So the raylet's descendants are listed
before the shutdown, given a grace period to exit, then terminated (and killed if they ignore
that) by PID: never by name, and only processes this Ray started.
"""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger(__name__)

#: Seconds the workers get to exit by themselves after the shutdown.
GRACE_S = 10.0


def _workers() -> list:
    """Descendants of the raylet this process started (empty when it joined another Ray)."""
    import psutil
    import ray

    node = getattr(ray._private.worker, "_global_node", None)
    if node is None:
        return []
    out = []
    for info in node.all_processes.get("raylet", []):
        try:
            out += psutil.Process(info.process.pid).children(recursive=True)
        except psutil.Error:
            continue
    return out


def _running(p: object) -> bool:
    import psutil

    try:
        return p.status() != psutil.STATUS_ZOMBIE  # type: ignore[attr-defined]
    except psutil.Error:
        return False


def shutdown_ray(grace_s: float = GRACE_S) -> list[int]:
    """``ray.shutdown()``, then stop the local Ray's workers still alive ``grace_s`` later;
    returns the PIDs that had to be stopped."""
    import psutil
    import ray

    try:
        workers = _workers()
    except Exception:
        log.debug("could not list the local Ray's workers", exc_info=True)
        workers = []
    ray.shutdown()
    if not workers:
        return []
    _, alive = psutil.wait_procs(workers, timeout=grace_s)
    alive = [p for p in alive if _running(p)]  # an exited worker its new parent has not reaped
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, stubborn = psutil.wait_procs(alive, timeout=5.0)
    for p in stubborn:
        with contextlib.suppress(psutil.Error):
            p.kill()
    if alive:
        log.warning(
            "stopped %d Ray worker(s) that outlived ray.shutdown(): %s",
            len(alive),
            ", ".join(str(p.pid) for p in alive),
        )
    return [p.pid for p in alive]
