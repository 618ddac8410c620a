"""Setup moves: a local search over the setup pattern, each move priced by the scenario LP.

Expected-profit mode's start (:func:`optimizer.core.pipeline._expected_profit_start`) is the plan
of the scenarios' median demand as if certain, its setups priced over the scenarios. With
intermittent demand the median of many cells is 0, so that plan leaves out setups the scenarios
pay for, and HiGHS's search on the scenario model hardly moves it in the time a weekly plan has
(docs/benchmarks.md, sessions 28 and 31). This search does, with LPs only:

- the LP over the current pattern (every setup fixed, 0 or 1) gives, for each closed setup
  ``(i, l, t)``, the dual ``pi`` of its ``setup_forcing`` row: what one more unit of ``x[i,l,t]``
  would add to the expected profit. A move that opens it is estimated at
  ``pi * (expected demand of i in t and t+1) - SC - ST * capacity dual`` (less the family
  changeover's cost and hours where its family is not yet set up on that line and period); only
  one line per variant and period;
- per round, the ``batch`` closed setups with the best positive estimate are opened together and
  the LP re-solved; if the expected profit is not higher, the ``batch`` open setups that make the
  least are closed together instead (those that make nothing first);
- a pattern is kept only when its LP is better, so the plan never gets worse than the start;
  when neither move of a round pays, the batch is halved. The search ends after ``STALL`` LPs in
  a row found nothing, when a round of single moves finds nothing, or when the time left is
  shorter than the first LP took (an LP is never started to be cut off by the deadline).

Every LP is the scenario model with all setups fixed (interior point with crossover: the dual
simplex's duals, from a degenerate vertex, guided far worse), so a move costs one LP and the
duals of the kept pattern guide the next round; the kept pattern's values are copied and put
back at the end, so no LP is solved twice. The setups leave the
integer domain while the search runs (a fixed binary column still makes HiGHS solve a MIP, which
has no duals) and get it back at the end, fixed at the best pattern, whose values the model
holds. Measured on the ``small`` preset's 4-week plan (150 variants x 3 lines, 8 family
changeovers, 32 scenarios): docs/benchmarks.md, "setup moves".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import pyomo.environ as pyo

from optimizer.core.data import ModelData
from optimizer.core.setups import Setups
from optimizer.core.solver import RunResult, Session

#: Expected-profit mode: the share of the solve's time limit the search may take, never past the
#: limit (after the start, before or after the bound phase: ``BOUND_FIRST_S``).
MOVE_SHARE = 0.3
#: Expected-profit mode: with at least this many seconds left after the start, the bound phase
#: goes first and the moves after it; with less, the moves first and the bound with what is left.
#: A weekly re-plan (the simulator's 10 s: 4 s left) wants the better plan, and its bound phase
#: proved little (a 73% gap on the ``small`` preset's 4-week plan); on the 8-week plan at 60 s
#: (25 s left) the moves first left the bound no time, and the gap reported went from 41% to
#: 139% for a plan 2% better.
BOUND_FIRST_S = 20.0
#: Moves tried together at first (halved whenever a round finds nothing better).
BATCH = 20
#: The search ends after this many LPs in a row that found nothing better (two rounds of an opening
#: and a closing move): on the family bench's "separate" plan (``bench/bench_family_setups.py``,
#: 4 s an LP) six LPs found nothing and took the bound phase's time.
STALL = 4
#: Periods of expected demand a newly opened setup is estimated to serve (the one it is set up
#: in and the next).
COVER = 2
#: the LP method of a move: interior point with crossover. Its duals guide far better than the dual
#: simplex's from the last basis (a degenerate vertex: on the 4-week plan 28,871 -> 29,763 in 6 s,
#: against 34,676 with these), at about the same 0.5-0.7 s an LP.
LP = "ipm"

Key = tuple[str, str, int]


@dataclass
class MoveStats:
    lps: int = 0
    kept: int = 0
    opened: int = 0
    closed: int = 0
    seconds: float = 0.0


def _pattern(m: pyo.ConcreteModel, setups: Setups) -> dict[Key, float]:
    """The free setups' values now, rounded to 0 or 1."""
    return {
        k: 1.0 if (v.value or 0.0) > 0.5 else 0.0 for k, v in m.y.items() if id(v) in setups.ids
    }


def _by_id(m: pyo.ConcreteModel, setups: Setups, pattern: dict[Key, float]) -> dict[int, float]:
    """``pattern`` keyed as :meth:`Setups.fix` takes it."""
    return {id(v): pattern.get(k, 0.0) for k, v in m.y.items() if id(v) in setups.ids}


def _lp(session: Session, setups: Setups, pattern: dict[Key, float], deadline: float) -> RunResult:
    """The LP with the variants' setups fixed at ``pattern`` (family changeovers follow them)."""
    m = session.model
    setups.fix(range(len(m.PERIODS)), _by_id(m, setups, pattern))
    changed = setups.take()
    for v in changed:  # fixed, but continuous: HiGHS solves an LP and has duals
        v.domain = pyo.UnitInterval
    left = max(0.05, deadline - time.perf_counter())
    return session.run(left, 0.0, changed=changed, lp=LP, mip=False)


def _state(session: Session, setups: Setups) -> tuple[dict[Key, float], dict[Key, float], dict]:
    """(pattern, production of the open setups, setup_forcing duals of the closed ones, capacity
    duals) of the LP just solved."""
    m = session.model
    pattern = _pattern(m, setups)
    made = {k: float(m.x[k].value or 0.0) for k, on in pattern.items() if on}
    closed = [m.setup_forcing[k] for k, on in pattern.items() if not on]
    pi = {c.index(): abs(float(val)) for c, val in session.opt._get_duals(closed).items()}
    cap = {c.index(): abs(float(val)) for c, val in session.duals([m.capacity]).items()}
    return pattern, made, {"pi": pi, "cap": cap}


def _values(m: pyo.ConcreteModel) -> list[tuple[pyo.Var, float | None]]:
    return [(v, v.value) for v in m.component_data_objects(pyo.Var, descend_into=True)]


def _openings(
    m: pyo.ConcreteModel, d: ModelData, pattern: dict[Key, float], duals: dict
) -> list[Key]:
    """Closed setups by estimated gain (best first), positive ones only, one line per variant
    and period."""
    pi, cap = duals["pi"], duals["cap"]
    family_of = getattr(m, "_family_of", {})
    z = getattr(m, "z", None)
    on_family = set()
    if z is not None:
        on_family = {k for k, v in z.items() if (v.value or 0.0) > 0.5}
    busy = {(i, t) for (i, _ln, t), on in pattern.items() if on}
    n = len(d.T)
    best: dict[tuple[str, int], tuple[float, Key]] = {}
    for (i, ln, t), price in pi.items():
        if (i, t) in busy or price <= 0:
            continue
        served = sum(d.demand[i, tau] for tau in range(t, min(n, t + COVER)))
        gain = price * served - pyo.value(m.SC[i, ln]) - pyo.value(m.ST[i, ln]) * cap[ln, t]
        g = family_of.get((i, ln))
        if g is not None and (g, ln, t) not in on_family:
            gain -= pyo.value(m.FSC[g, ln]) + pyo.value(m.FST[g, ln]) * cap[ln, t]
        if gain > 0 and gain > best.get((i, t), (0.0, None))[0]:
            best[i, t] = (gain, (i, ln, t))
    return [k for _, k in sorted(best.values(), reverse=True)]


def setup_moves(
    session: Session, setups: Setups, d: ModelData, deadline: float, start: RunResult
) -> tuple[RunResult, str]:
    """The search from ``start``, an all-setups-fixed plan whose values the model holds:
    (the best plan found, whose values the model holds, its setups fixed; a note)."""
    m = session.model
    if not start.has_solution or start.objective is None or time.perf_counter() >= deadline:
        return start, ""
    t0 = time.perf_counter()
    stats = MoveStats()
    best = start
    # setups the build fixed (nothing to cover) leave the integer domain too, or HiGHS solves MIPs
    others = [v for v in (*m.y.values(), *getattr(m, "z", {}).values()) if id(v) not in setups.ids]
    for v in others:
        v.domain = pyo.UnitInterval
    setups.changed.extend(others)
    pattern = _pattern(m, setups)
    res = _lp(session, setups, pattern, deadline)  # the start again, as an LP with duals
    stats.lps += 1
    if res.has_solution and res.objective is not None:
        pattern, made, duals = _state(session, setups)
        best = replace(start, objective=res.objective)
        kept = _values(m)
        batch, failed = BATCH, 0
        # an LP is started only when one takes less than the time left (the first's time)
        lp_s = time.perf_counter() - t0
        while time.perf_counter() + lp_s < deadline and failed < STALL:
            improved = False
            opens = _openings(m, d, pattern, duals)[:batch]
            shut = [k for _, k in sorted((x, k) for k, x in made.items())][:batch]
            for kind, keys in (("open", opens), ("close", shut)):
                if not keys or time.perf_counter() + lp_s >= deadline:
                    continue
                trial = dict(pattern)
                for k in keys:
                    trial[k] = 1.0 if kind == "open" else 0.0
                res = _lp(session, setups, trial, deadline)
                stats.lps += 1
                assert best.objective is not None
                if (
                    res.has_solution
                    and res.objective is not None
                    and res.objective > best.objective + 1e-6
                ):
                    pattern, made, duals = _state(session, setups)
                    best = replace(best, objective=res.objective)
                    kept = _values(m)
                    improved, failed = True, 0
                    stats.kept += 1
                    if kind == "open":
                        stats.opened += len(keys)
                    else:
                        stats.closed += len(keys)
                    break
                failed += 1
            if not improved:
                if batch == 1:
                    break
                batch //= 2
        for v, value in kept:  # the best pattern's plan (a later LP may have overwritten it)
            v.set_value(value, skip_validation=True)
    setups.fix(range(len(m.PERIODS)), _by_id(m, setups, pattern))
    for v in others:
        v.domain = pyo.Binary
    session.update_variables([*setups.take(), *others])
    stats.seconds = time.perf_counter() - t0
    note = (
        f"; setup moves: {start.objective:,.0f} -> {best.objective:,.0f} "
        f"({stats.opened} opened, {stats.closed} closed; {stats.kept} of {stats.lps} LPs kept), "
        f"{stats.seconds:.1f} s"
    )
    return best, note
