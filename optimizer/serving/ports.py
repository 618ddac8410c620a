"""Free TCP ports for the servers a process is about to start (stdlib only, so the store's test
helpers can use it too)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Ports handed out by this process's free_port: never handed out twice.
_HANDED_OUT: set[int] = set()
# Below Ray's worker ports (10002-19999 by default) nothing of ours binds.
_PICK_FROM = 20000


def _ephemeral_start() -> int:
    """First port of the kernel's range for outgoing connections (Linux: 32768 by default)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii")
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now, for a process started next to bind.

    The port is free when returned, and stays free until that process binds it unless someone
    else takes it meanwhile. A port the OS picks (bind to 0) comes from the range it also gives
    every outgoing connection: with Ray starting beside (dozens of connections a second) one of
    them could take the port in the seconds before the server binds it, and the server would exit
    with "address already in use". So the port is drawn at random between Ray's worker ports and
    the start of that range (20000-32767 on a default Linux), where no outgoing connection goes,
    and never twice in one process; the OS's pick only where that window is too small."""
    rng = random.SystemRandom()
    high = _ephemeral_start() - 1
    for _ in range(200 if high - _PICK_FROM >= 1000 else 0):
        port = rng.randint(_PICK_FROM, high)
        if port in _HANDED_OUT:
            continue
        try:
            with socket.socket() as s:
                s.bind((host, port))
        except OSError:  # in use: draw again
            continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:
        s.bind((host, 0))
        port = int(s.getsockname()[1])
    _HANDED_OUT.add(port)
    return port
