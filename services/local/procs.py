"""Processes of the local stack, found through ``/proc`` (Linux), so that none outlives ``up``.

Each component starts as the leader of a session of its own (``start_new_session``); Ray starts
its GCS, raylet, agents and workers inside that session, but puts each actor in a process group of
its own, so a process group is not enough: :func:`kill_session` ends every process of the session.
A retraining job's driver runs in a session of its own; ``up`` makes itself a child subreaper
(:func:`become_subreaper`), so that such orphans are re-parented to it and
:func:`kill_descendants` finds them when it stops. On systems without ``/proc`` these helpers
find nothing, and the process-group kill of :mod:`services.local.stack` is all there is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Proc:
    """One line of ``/proc/PID/stat``: the ids that tie a process to its parent and session."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start: int  # start time in clock ticks since boot (tells a reused pid apart)


def read_proc(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], int(fields[19]))


def processes() -> list[Proc]:
    """Every process visible in ``/proc`` (empty where there is none)."""
    out = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                proc = read_proc(int(entry.name))
                if proc is not None:
                    out.append(proc)
    return out


def session(sid: int) -> list[Proc]:
    """The live (not zombie) processes of session ``sid``."""
    return [p for p in processes() if p.sid == sid and p.state != "Z"]


def descendants(pid: int) -> list[Proc]:
    """Children, grandchildren, ... of ``pid`` (zombies included)."""
    by_parent: dict[int, list[Proc]] = {}
    for p in processes():
        by_parent.setdefault(p.ppid, []).append(p)
    out: list[Proc] = []
    todo = [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            out.append(child)
            todo.append(child.pid)
    return out


def _signal_all(procs: list[Proc], signum: int) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p.pid, signum)


def _alive(procs: list[Proc]) -> list[Proc]:
    out = []
    for p in procs:
        now = read_proc(p.pid)
        if now is not None and now.start == p.start and now.state != "Z":
            out.append(p)
    return out


def terminate(procs: list[Proc], grace_s: float = 5.0) -> None:
    """SIGTERM, up to ``grace_s`` to exit, then SIGKILL whatever is left."""
    _signal_all(procs, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_all(_alive(procs), signal.SIGKILL)


def kill_session(sid: int, grace_s: float = 5.0) -> None:
    """End every process of session ``sid`` (a component and all it started: Ray's agents too)."""
    members = session(sid)
    if members:
        terminate(members, grace_s)


def kill_descendants(pid: int, grace_s: float = 5.0) -> None:
    """End every live descendant of ``pid`` (with a subreaper: orphans of its children too)."""
    members = [p for p in descendants(pid) if p.state != "Z"]
    if members:
        terminate(members, grace_s)
    reap_orphans(pid, keep=())


def reap_orphans(pid: int, keep: tuple[int, ...]) -> None:
    """Collect exited orphans re-parented to ``pid`` (the subreaper), not its own ``keep``
    children (a ``Popen`` must reap its own process to see its exit code)."""
    for p in processes():
        if p.ppid == pid and p.state == "Z" and p.pid not in keep:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(p.pid, os.WNOHANG)


def become_subreaper() -> bool:
    """Make this process the reaper of its descendants' orphans (Linux); False where not."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
