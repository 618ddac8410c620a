"""Why the plan looks as it does, and why a request cannot be planned.

- Bottlenecks: line-periods that are full or whose capacity has a positive shadow price. The
  shadow prices come from the LP that keeps the plan's setups fixed (``y`` fixed, integrality
  dropped), the standard way to price resources of a MIP solution.
- Shortages: forecast demand lost and firm units late, each with a reason: ``material`` (a
  material it uses is scarce: positive dual on its balance), ``capacity`` (one of its lines is a
  bottleneck up to that period), ``due_date`` (inside the frozen periods, or due before capacity
  could reach it) or ``unprofitable`` (nothing binds: the margin does not pay for it).
- Grouped changeovers: each family changeover of the plan that two or more variants ride on, and
  what that saves against a changeover of their own each ((n - 1) times its cost and hours).
- Infeasible requests: an elastic relaxation. First the resources (capacity, materials, frozen
  plan) get slack and the due dates stay hard: the slack says how much more of which resource
  the firm orders need. Then only the due dates get slack: how many units would be late.
"""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.contrib.solver.common.util import NoDualsError

from optimizer.core.data import ModelData
from optimizer.core.model import build_model
from optimizer.core.problem import (
    Bottleneck,
    ChangeoverGroup,
    Diagnosis,
    Explanation,
    Plan,
    Shortage,
    ShortageReason,
    SolveOptions,
    Violation,
)
from optimizer.core.solver import Session

EPS = 1e-6
FULL = 0.98
MAX_LISTED = 50


def shadow_prices(
    m: pyo.ConcreteModel, session: Session, time_limit_s: float
) -> tuple[dict[tuple[str, int], float], dict[tuple[str, int], float]]:
    """Capacity and material duals of the LP with the incumbent's setups fixed.

    Returns ({(line, t): value of one more hour}, {(material, t): value of one more unit});
    both empty when the LP does not solve to optimality. The model's setups are restored."""
    # Every setup leaves the integer domain, also those the build fixed at 0 (no demand left to
    # cover, e.g. when stock on hand covers the horizon): one binary column left makes HiGHS
    # solve a MIP, which has no duals (pyomo's NoDualsError).
    setups = list(m.y.values()) + list(m.z.values())
    free = [v for v in setups if not v.fixed]
    for v in free:
        v.fix(round(v.value or 0.0))
    for v in setups:
        v.domain = pyo.UnitInterval
    cap: dict[tuple[str, int], float] = {}
    mat: dict[tuple[str, int], float] = {}
    try:
        res = session.run(time_limit_s, 0.0, changed=setups)
        if res.status == "optimal":
            try:
                for c, val in session.duals([m.capacity]).items():
                    cap[c.index()] = abs(float(val))
                if hasattr(m, "material_balance"):
                    for c, val in session.duals([m.material_balance]).items():
                        mat[c.index()] = abs(float(val))
            except NoDualsError:  # no dual solution: the explanation goes without prices
                cap, mat = {}, {}
    finally:
        for v in free:
            v.unfix()
        for v in setups:
            v.domain = pyo.Binary
        session.update_variables(setups)
    return cap, mat


def explain(
    m: pyo.ConcreteModel, d: ModelData, session: Session, plan: Plan, time_limit_s: float
) -> tuple[Explanation, dict[tuple[str, int], float]]:
    cap_dual, mat_dual = shadow_prices(m, session, time_limit_s)
    util = {(lp.line, lp.period): lp.utilisation for lp in plan.line_periods}
    bottlenecks = sorted(
        (
            Bottleneck(line=ln, period=t, utilisation=u, shadow_price=cap_dual.get((ln, t), 0.0))
            for (ln, t), u in util.items()
            if u >= FULL or cap_dual.get((ln, t), 0.0) > EPS
        ),
        key=lambda b: (-b.shadow_price, -b.utilisation, b.line, b.period),
    )
    busy = {k for k, u in util.items() if u >= FULL} | {k for k, v in cap_dual.items() if v > EPS}
    scarce = {k for k, v in mat_dual.items() if v > EPS}
    lines_of: dict[str, list[str]] = {i: [] for i in d.I}
    for i, ln in d.R:
        lines_of[i].append(ln)
    mats_of: dict[str, list[str]] = {i: [] for i in d.I}
    for (i, mt), qty in d.usage.items():
        if qty > 0:
            mats_of[i].append(mt)

    def reason(i: str, t: int, late: bool) -> tuple[ShortageReason, str]:
        mats = sorted({mt for mt in mats_of[i] for k in range(t + 1) if (mt, k) in scarce})
        if mats:
            return "material", f"material {', '.join(mats)} is used up by period {t}"
        full = sorted({(ln, k) for ln in lines_of[i] for k in range(t + 1) if (ln, k) in busy})
        if full:
            where = ", ".join(f"{ln}@{k}" for ln, k in full[:6])
            return "capacity", f"eligible line capacity is exhausted ({where})"
        if t < d.frozen:
            return "due_date", f"period {t} lies in the frozen zone (first {d.frozen} periods)"
        if late:
            return "due_date", "due before the plan could reach it"
        if not lines_of[i]:
            return "capacity", "no eligible line"
        return "unprofitable", "serving it costs more than it earns at this service level"

    shortages = []
    for i in d.I:
        before = 0.0
        for t in d.T:
            lost = _val(m.u[i, t])
            if lost > EPS:
                why, detail = reason(i, t, late=False)
                shortages.append(Shortage(i, t, lost, "lost", why, detail))
            late = _val(m.b[i, t])
            if late - before > EPS:
                why, detail = reason(i, t, late=True)
                shortages.append(Shortage(i, t, late - before, "late", why, detail))
            before = late
    shortages.sort(key=lambda s: (-s.quantity, s.variant, s.period))
    notes = []
    if plan.status == "feasible":
        notes.append(f"time limit reached: best plan found, gap {100 * (plan.gap or 0):.2f}%")
    if len(shortages) > MAX_LISTED:
        notes.append(f"{len(shortages) - MAX_LISTED} smaller shortages not listed")
    if len(bottlenecks) > MAX_LISTED:
        notes.append(f"{len(bottlenecks) - MAX_LISTED} further bottlenecks not listed")
    if not cap_dual:
        notes.append("shadow prices unavailable (the fixed-setup LP did not solve)")
    groupings = grouped_changeovers(plan)
    if groupings:
        notes.append(_grouping_note(plan, groupings))
    if len(groupings) > MAX_LISTED:
        notes.append(f"{len(groupings) - MAX_LISTED} smaller grouped changeovers not listed")
    return (
        Explanation(
            bottlenecks=tuple(bottlenecks[:MAX_LISTED]),
            shortages=tuple(shortages[:MAX_LISTED]),
            notes=tuple(notes),
            groupings=tuple(groupings[:MAX_LISTED]),
        ),
        cap_dual,
    )


def grouped_changeovers(plan: Plan) -> list[ChangeoverGroup]:
    """The plan's family changeovers that two or more variants ride on, the biggest saving
    first: a changeover of their own each would cost (n - 1) more changeovers."""
    out = [
        ChangeoverGroup(
            family=c.family,
            line=c.line,
            period=c.period,
            variants=c.variants,
            saving=(len(c.variants) - 1) * c.cost,
            hours_saved=(len(c.variants) - 1) * c.hours,
        )
        for c in plan.changeovers
        if len(c.variants) >= 2
    ]
    return sorted(out, key=lambda g: (-g.saving, -g.hours_saved, g.line, g.period, g.family))


def _grouping_note(plan: Plan, groupings: list[ChangeoverGroup]) -> str:
    riders = sum(len(c.variants) for c in plan.changeovers)
    saving = sum(g.saving for g in groupings)
    hours = sum(g.hours_saved for g in groupings)
    top = groupings[0]
    return (
        f"{len(plan.changeovers)} family changeovers carry {riders} variant setups; grouping "
        f"saves {saving:,.0f} in changeover cost and {hours:,.1f} line hours against one "
        f"changeover per variant setup (most: {len(top.variants)} variants of {top.family} on "
        f"{top.line} in period {top.period}, {top.saving:,.0f})"
    )


def _val(v: pyo.Var) -> float:
    return float(v.value or 0.0)


def _nonzero(m: pyo.ConcreteModel, name: str) -> list[tuple[tuple[object, ...], float]]:
    var = m.component(name)
    if var is None:
        return []
    out = []
    for k, v in var.items():
        if (v.value or 0.0) > EPS:
            out.append((k if isinstance(k, tuple) else (k,), float(v.value)))
    return out


def _label(name: str, key: tuple[object, ...]) -> str:
    return f"{name}[{','.join(str(k) for k in key)}]"


def diagnose(d: ModelData, options: SolveOptions) -> Diagnosis:
    """Elastic relaxation of an infeasible problem: which constraints conflict, by how much."""
    limit = max(2.0, min(30.0, options.time_limit_s / 2))
    violations: list[Violation] = []
    parts: list[str] = []
    m = build_model(d, elastic=("capacity", "material_balance", "frozen_plan"), strengthen="none")
    res = Session(m, options.threads).run(limit, 1e-6)
    if res.has_solution:
        hours: dict[str, float] = {}
        for key, amt in _nonzero(m, "e_capacity"):
            ln, t = key
            hours[str(ln)] = hours.get(str(ln), 0.0) + amt
            violations.append(
                Violation(
                    _label("capacity", key),
                    amt,
                    f"line {ln} needs {amt:.4g} more hours in period {t}",
                )
            )
        for key, amt in _nonzero(m, "e_material_balance"):
            mt, t = key
            violations.append(
                Violation(
                    _label("material_balance", key),
                    amt,
                    f"material {mt} short by {amt:.4g} units in period {t}",
                )
            )
            parts.append(f"material {mt} short by {amt:.4g}")
        for name in ("e_frozen_plan", "e_frozen_plan_down"):
            for key, amt in _nonzero(m, name):
                violations.append(
                    Violation(
                        _label("frozen_plan", key),
                        amt,
                        f"the frozen plan would have to change by {amt:.4g} units",
                    )
                )
        parts[:0] = [f"line {ln} short by {h:.4g} h" for ln, h in sorted(hours.items())]
    if not d.allow_backlog:
        m2 = build_model(d, elastic=("due_date",), strengthen="none")
        res2 = Session(m2, options.threads).run(limit, 1e-6)
        late_total = 0.0
        if res2.has_solution:
            before: dict[str, float] = {}
            for key, amt in sorted(_nonzero(m2, "e_due_date"), key=lambda kv: int(str(kv[0][1]))):
                i, t = key
                new = amt - before.get(str(i), 0.0)
                before[str(i)] = amt
                if new > EPS:
                    late_total += new
                    violations.append(
                        Violation(
                            _label("due_date", key),
                            new,
                            f"{new:.4g} units of {i} cannot be delivered by period {t}",
                        )
                    )
            if late_total > EPS:
                parts.append(f"or {late_total:.4g} firm units delivered late")
    if not violations:
        return Diagnosis(summary="infeasible, but no single constraint family explains it")
    head = "firm orders cannot be met by their due dates with backlog forbidden"
    if d.allow_backlog:
        head = "the plan in force and the resources conflict"
    summary = f"{head}: " + "; ".join(parts) if parts else head
    return Diagnosis(summary=summary, violations=tuple(violations))
