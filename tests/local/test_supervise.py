"""The supervisor's restart policy, against a stand-in stack (no processes): a death is cleaned up
at once, the restart waits a delay that doubles with every quick failure and resets once the
component stayed up, and it gives up after too many failures in a row."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from services.common.errors import Unavailable
from services.local.supervise import Backoff, Supervisor


@dataclass
class FakeProc:
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class FakeStack:
    procs: dict[str, FakeProc] = field(
        default_factory=lambda: {n: FakeProc() for n in ("predictor", "optimizer", "gateway")}
    )
    events: list[str] = field(default_factory=list)

    def log_tail(self, name: str) -> str:
        return f"{name} log"

    def stop_process(self, name: str) -> None:
        self.events.append(f"stop {name}")
        self.procs.pop(name)

    def start_component(self, name: str) -> None:
        self.events.append(f"start {name}")
        self.procs[name] = FakeProc()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_restarts_with_doubling_delay_and_resets_when_stable() -> None:
    stack, clock, said = FakeStack(), Clock(), []
    sup = Supervisor(stack, said.append, Backoff(1, 30, 60, 8), clock)  # type: ignore[arg-type]
    sup.tick()
    assert stack.events == []

    def die_and_restart() -> float:
        stack.procs["optimizer"].returncode = -9
        sup.tick()
        assert stack.events[-1] == "stop optimizer" and sup.down == ["optimizer"]
        died = clock.now
        while sup.down:
            clock.now += 0.5
            sup.tick()
        assert stack.events[-1] == "start optimizer"
        return clock.now - died

    assert [die_and_restart() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    clock.now += 61  # stayed up: the next death starts from the base delay again
    sup.tick()
    assert die_and_restart() == 1.0
    assert sup.restarts == {"optimizer": 5}
    assert "optimizer exited with code -9; restarting in 1 s" in said
    assert "predictor" in stack.procs and "start predictor" not in stack.events


def test_gives_up_after_too_many_quick_failures() -> None:
    stack, clock = FakeStack(), Clock()
    sup = Supervisor(stack, lambda _m: None, Backoff(1, 2, 60, 2), clock)  # type: ignore[arg-type]
    with pytest.raises(Unavailable, match=r"predictor failed 3 times in a row.*predictor log"):
        for _ in range(100):
            stack.procs.get("predictor", FakeProc()).returncode = 1
            sup.tick()
            clock.now += 1
