"""Whole units: round the solver's production quantities and check what the rounding costs.

The MIP's production variables are continuous (integer ones would make every plan a much harder
MIP for a difference of less than one unit per quantity). A planner acts on whole units, so the
plan's quantities are rounded afterwards, and the rounding is checked, not assumed:

1. the setups (and family changeovers) stay as the solver chose them, except that a setup whose
   quantity rounds to 0 is dropped;
2. "optimally": production becomes integer and HiGHS solves that MIP (setups fixed, its LP is
   nearly integral, so it closes fast), started from the quantities rounded down;
3. if that finds nothing in time, "nearest": each quantity goes to its nearest whole number and
   the LP of everything else (sales and stock per scenario, overtime, materials, firm
   deliveries, backlog) is solved: it is infeasible when the rounded plan breaks a capacity, a
   material or a firm order that may not be late, and otherwise gives the exact profit;
4. then "down" (never more hours or materials) the same way;
5. when all fail (e.g. a firm order that needs the fraction), the solver's quantities are kept
   and the plan's message says so.

The profit given up (:attr:`Rounding.cost`, >= 0 up to the LP's tolerance) goes into the plan's
KPIs (``rounding_cost``, ``rounded_quantities``) and its message, so a caller sees what whole
units cost against the fractional optimum. The bound is unchanged: the gap is re-measured
against the rounded plan's profit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyomo.environ as pyo

from optimizer.core.solver import Session

#: A quantity within this of a whole number is taken as that number.
TOLERANCE = 1e-6
#: Relative gap of the whole-unit MIP (setups fixed: close to its LP, so it closes fast).
MIP_GAP = 1e-4


@dataclass(frozen=True)
class Rounding:
    """What rounding did: ``rounded`` quantities changed, ``cost`` = profit before - after (a
    cost, so >= 0 for a maximised profit), ``how``: "optimally", "nearest", "down", "" (nothing
    to round) or "kept" (no rounding was feasible: the fractional plan stands), ``objective``:
    the rounded plan's objective (None when unchanged)."""

    rounded: int
    cost: float
    how: str
    objective: float | None = None

    @property
    def note(self) -> str:
        if self.how == "kept":
            return "; whole units: no rounding was feasible, fractional quantities kept"
        if not self.rounded:
            return ""
        return (
            f"; whole units: {self.rounded} quantities rounded {self.how}, "
            f"profit change {-self.cost:+,.2f}"
        )


def _target(value: float, how: str) -> float:
    if how == "nearest":
        return float(round(value))
    return float(math.floor(value + TOLERANCE))


def round_to_units(
    m: pyo.ConcreteModel,
    session: Session,
    time_limit_s: float,
    *,
    maximise: bool = True,
    frozen: int = 0,
) -> Rounding:
    """Round ``m.x`` to whole units in place (the model's values become the rounded plan's);
    see the module docstring. ``time_limit_s`` bounds each LP. The first ``frozen`` periods keep
    the previous plan's quantities as they are."""
    xs = [v for (_, _, t), v in m.x.items() if not v.fixed and t >= frozen]
    values = {id(v): float(v.value or 0.0) for v in xs}
    fractional = [v for v in xs if abs(values[id(v)] - round(values[id(v)])) > TOLERANCE]
    if not fractional:
        return Rounding(0, 0.0, "")
    before = float(pyo.value(m.objective))
    saved = {
        id(v): v.value for v in m.component_data_objects(pyo.Var, descend_into=True) if not v.fixed
    }
    # every other discrete decision (setups, family changeovers) stays as the solver chose it
    discrete = [
        v
        for v in m.component_data_objects(pyo.Var, descend_into=True)
        if v.is_integer() and id(v) not in values
    ]
    free = [v for v in discrete if not v.fixed]
    free_ids = {id(v) for v in free}
    for v in free:
        v.fix(1.0 if (v.value or 0.0) > 0.5 else 0.0)
    for key, v in m.x.items():  # a setup whose quantity rounds to 0 is dropped
        y = m.y[key]
        if id(v) in values and id(y) in free_ids and round(values[id(v)]) == 0:
            y.fix(0.0)
    for v in discrete:
        v.domain = pyo.UnitInterval
    changed = [*xs, *discrete]
    result = None
    how = ""
    try:
        for how in ("optimally", "nearest", "down"):
            if how == "optimally":  # whole units as integers, the rest as the solver chose
                for v in xs:
                    v.domain = pyo.NonNegativeIntegers
                    v.set_value(_target(values[id(v)], "down"), skip_validation=True)
                result = session.run(time_limit_s, MIP_GAP, start=True, changed=changed, mip=True)
                for v in xs:
                    v.domain = pyo.NonNegativeReals
                if result.has_solution:
                    for v in xs:  # integral up to HiGHS's tolerance: make them exact
                        v.set_value(float(round(v.value or 0.0)), skip_validation=True)
                    break
            else:
                for v in xs:
                    v.fix(_target(values[id(v)], how))
                result = session.run(time_limit_s, 0.0, changed=changed)
                if result.status == "optimal":
                    break
            result = None
    finally:
        for v in xs:
            v.unfix()
            v.domain = pyo.NonNegativeReals
        for v in free:
            v.unfix()
        for v in discrete:
            v.domain = pyo.Binary
        session.update_variables(changed)
    if result is None or result.objective is None:
        for var in m.component_data_objects(pyo.Var, descend_into=True):
            if id(var) in saved:
                var.set_value(saved[id(var)], skip_validation=True)
        return Rounding(0, 0.0, "kept")
    rounded = sum(1 for v in fractional if abs(float(v.value or 0.0) - values[id(v)]) > TOLERANCE)
    after = float(result.objective)
    cost = before - after if maximise else after - before
    return Rounding(rounded, cost, how, after)


__all__ = ["TOLERANCE", "Rounding", "round_to_units"]
