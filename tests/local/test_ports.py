"""The ports the local stack hands its servers: free, distinct, and out of the range the kernel
gives outgoing connections (one of those taking a port between the pick and the bind made a
server exit with "address already in use")."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from optimizer.serving import ports
from optimizer.serving.ports import free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    drawn = [free_port() for _ in range(50)]
    assert len(set(drawn)) == 50
    assert all(20000 <= p < ephemeral_start for p in drawn)
    for port in drawn[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen()


def test_a_port_someone_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_ephemeral_start", lambda: 21001)  # draw from 20000-21000
    listeners = []
    try:
        for port in range(20000, 21001, 3):  # a third of them taken by others
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            s.listen()
            listeners.append(s)
        taken = {s.getsockname()[1] for s in listeners}
        drawn = [free_port() for _ in range(200)]
        assert all(20000 <= p <= 21000 for p in drawn)
        assert not taken & set(drawn)
    finally:
        for s in listeners:
            s.close()
