"""The free setup variables ``y`` of a built model, grouped by period, and the changes to them
(domain, fixing) that a persistent HiGHS session must be told about: what relax-and-fix,
fix-and-optimize (:mod:`optimizer.core.heuristics`) and the Lagrangian's pattern plans
(:mod:`optimizer.core.lagrange`) share."""

from __future__ import annotations

import pyomo.environ as pyo


class Setups:
    """The free setup variables grouped by period, with the changes HiGHS must hear about."""

    def __init__(self, m: pyo.ConcreteModel) -> None:
        self.model = m
        self.by_t: dict[int, list[pyo.Var]] = {}
        for (_, _, t), v in m.y.items():
            if not v.fixed:
                self.by_t.setdefault(t, []).append(v)
        self.ids = {id(v) for vs in self.by_t.values() for v in vs}
        self.changed: list[pyo.Var] = []

    def binary_vars(self, vs: list[pyo.Var]) -> None:
        for v in vs:
            v.unfix()
            v.domain = pyo.Binary
        self.changed.extend(vs)

    def fix_vars(self, vs: list[pyo.Var], values: dict[int, float] | None = None) -> None:
        for v in vs:
            val = values[id(v)] if values is not None else (v.value or 0.0)
            v.domain = pyo.Binary
            v.fix(1.0 if val > 0.5 else 0.0)
        self.changed.extend(vs)

    def binary(self, periods: range) -> None:
        for t in periods:
            for v in self.by_t.get(t, []):
                v.unfix()
                v.domain = pyo.Binary
                self.changed.append(v)

    def relax(self, periods: range) -> None:
        for t in periods:
            for v in self.by_t.get(t, []):
                v.unfix()
                v.domain = pyo.UnitInterval
                self.changed.append(v)

    def fix(self, periods: range, values: dict[int, float] | None = None) -> None:
        for t in periods:
            for v in self.by_t.get(t, []):
                val = values[id(v)] if values is not None else (v.value or 0.0)
                v.domain = pyo.Binary
                v.fix(1.0 if val > 0.5 else 0.0)
                self.changed.append(v)

    def take(self) -> list[pyo.Var]:
        out, self.changed = self.changed, []
        return out

    def snapshot(self) -> dict[int, float]:
        return {id(v): float(v.value or 0.0) for vs in self.by_t.values() for v in vs}
