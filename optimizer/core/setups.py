"""The free setup variables of a built model -- the variants' setups ``y`` and the family
changeovers ``z`` -- grouped by period, and the changes to them (domain, fixing) that a persistent
HiGHS session must be told about: what relax-and-fix, fix-and-optimize
(:mod:`optimizer.core.heuristics`) and the Lagrangian's pattern plans
(:mod:`optimizer.core.lagrange`) share.

A setup pattern names the variants' setups; fixing it fixes each family changeover to whether
any of its variants' setups is on (a changeover without one costs hours and money for nothing),
so patterns never need to mention ``z``.
"""

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
        # z of a family changeover -> the y it enables (fixed with them, after them)
        self.members: dict[int, list[pyo.Var]] = {}
        family_of = getattr(m, "_family_of", {})
        z = getattr(m, "z", None)
        if z is not None:
            for (_g, _ln, t), v in z.items():
                if not v.fixed:
                    self.by_t.setdefault(t, []).append(v)
                    self.members[id(v)] = []
            for (i, ln, t), v in m.y.items():
                g = family_of.get((i, ln))
                if g is not None and not z[g, ln, t].fixed:
                    self.members[id(z[g, ln, t])].append(v)
        self.ids = {id(v) for vs in self.by_t.values() for v in vs}
        self.changed: list[pyo.Var] = []

    def binary_vars(self, vs: list[pyo.Var]) -> None:
        for v in vs:
            v.unfix()
            v.domain = pyo.Binary
        self.changed.extend(vs)

    def _fix(self, vs: list[pyo.Var], values: dict[int, float] | None) -> None:
        """Fix the variants' setups at ``values`` (default: their values rounded), then each
        family changeover among ``vs`` at 1 exactly when one of its variants' setups is on."""
        changeovers = []
        for v in vs:
            if id(v) in self.members:
                changeovers.append(v)
                continue
            val = values[id(v)] if values is not None else (v.value or 0.0)
            v.domain = pyo.Binary
            v.fix(1.0 if val > 0.5 else 0.0)
        for v in changeovers:
            on = any(y.fixed and (y.value or 0.0) > 0.5 for y in self.members[id(v)])
            if not on:  # a member left free (another neighbourhood) keeps its value's need
                on = any(not y.fixed and (y.value or 0.0) > 0.5 for y in self.members[id(v)])
            v.domain = pyo.Binary
            v.fix(1.0 if on else 0.0)
        self.changed.extend(vs)

    def fix_vars(self, vs: list[pyo.Var], values: dict[int, float] | None = None) -> None:
        self._fix(vs, values)

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
        self._fix([v for t in periods for v in self.by_t.get(t, [])], values)

    def take(self) -> list[pyo.Var]:
        out, self.changed = self.changed, []
        return out

    def snapshot(self) -> dict[int, float]:
        return {id(v): float(v.value or 0.0) for vs in self.by_t.values() for v in vs}
