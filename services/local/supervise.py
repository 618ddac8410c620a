"""Supervision of the local stack: a component that dies is restarted, with backoff.

``tailorline up`` calls :meth:`Supervisor.tick` about once a second. A component whose process
has exited is cleaned up at once (whatever is left of its session: Ray's GCS, raylet, agents and
actors), then started again on the same ports after a delay that doubles with every quick failure
(``base_s``, 2x, 4x, ... up to ``max_s``); one that stayed up ``stable_s`` starts again from
``base_s``. While it is down the gateway's health says NOT_SERVING (it probes predictor and
optimizer every ``health_interval_s``) and SERVING again once the new process answers; a
restarted gateway serves at once. After ``max_failures`` quick failures in a row the supervisor
gives up (:class:`~services.common.errors.Unavailable`, with the tail of the component's log).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.common.errors import Unavailable
from services.local.stack import COMPONENTS, LocalStack


@dataclass(frozen=True)
class Backoff:
    """How restarts are spaced."""

    base_s: float = 1.0
    max_s: float = 30.0
    stable_s: float = 60.0
    max_failures: int = 8

    def delay(self, failures: int) -> float:
        return float(min(self.max_s, self.base_s * 2 ** max(0, failures - 1)))


@dataclass
class _State:
    started_at: float
    failures: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Restarts the components of ``stack`` that die; ``say`` gets one line per event."""

    stack: LocalStack
    say: Callable[[str], None] = print
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    restarts: dict[str, int] = field(default_factory=dict)
    _state: dict[str, _State] = field(default_factory=dict)

    def tick(self) -> None:
        """Look at every component once: note deaths, start the ones whose delay is over."""
        now = self.clock()
        for name in COMPONENTS:
            st = self._state.setdefault(name, _State(started_at=now))
            if st.restart_at is not None:
                if now >= st.restart_at:
                    st.restart_at, st.started_at = None, now
                    self.stack.start_component(name)
                    self.restarts[name] = self.restarts.get(name, 0) + 1
                    self.say(f"{name} restarted (restart {self.restarts[name]})")
                continue
            proc = self.stack.procs.get(name)
            if proc is None or proc.poll() is None:
                if proc is not None and now - st.started_at >= self.backoff.stable_s:
                    st.failures = 0
                continue
            code = proc.returncode
            tail = self.stack.log_tail(name)
            self.stack.stop_process(name)  # its session's leftovers (Ray's agents) go now
            st.failures += 1
            if st.failures > self.backoff.max_failures:
                raise Unavailable(
                    f"{name} failed {st.failures} times in a row, last with code {code}; "
                    f"giving up: {tail}"
                )
            delay = self.backoff.delay(st.failures)
            st.restart_at = self.clock() + delay
            self.say(f"{name} exited with code {code}; restarting in {delay:.0f} s")

    @property
    def down(self) -> list[str]:
        """Components waiting for their restart."""
        return [n for n, st in self._state.items() if st.restart_at is not None]
