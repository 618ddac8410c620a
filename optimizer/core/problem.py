"""The optimizer's public data types: what goes in (``PlanningProblem``, ``SolveOptions``) and what
comes out (``Plan``). Frozen dataclasses of tuples and scalars, JSON-able through ``to_dict()`` /
``from_dict()``; nothing here imports Pyomo or anything from ``services/``.

Periods are referred to by their 0-based index into ``PlanningProblem.periods``. Quantities are
product units, times are hours, money is one currency. A variant can run on a line exactly when a
:class:`Route` for the pair exists (line eligibility).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from optimizer.core.codec import from_plain, to_plain
from optimizer.core.errors import ProblemInvalid

Mode = Literal["planning", "clsp"]
DemandMode = Literal["quantile", "expected_profit"]
Method = Literal["auto", "monolithic", "relax_and_fix", "fix_and_optimize"]
Status = Literal["optimal", "feasible", "infeasible", "no_solution", "error"]
ShortageReason = Literal["capacity", "material", "due_date", "unprofitable"]


class _Plain:
    """Mixin: ``to_dict()`` / ``from_dict()`` through :mod:`optimizer.core.codec`."""

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        return from_plain(cls, data)


# --------------------------------------------------------------------------- problem

#: Scenarios per plan in expected-profit mode, at most (the model grows linearly with them).
MAX_SCENARIOS = 512
#: ``method="auto"``: relax-and-fix instead of the monolithic MIP only above this many free setup
#: decisions, and only when the time limit is below AUTO_SECONDS_PER_1K_SETUPS per thousand of
#: them (docs/benchmarks.md, "solve methods side by side": on the demo's 150x8x3 plan the
#: monolithic MIP gave the best plan in 60 s on a quiet machine and a poor one on an
#: oversubscribed machine, where relax-and-fix degraded gracefully).
AUTO_RELAX_AND_FIX_SETUPS = 2_000
AUTO_SECONDS_PER_1K_SETUPS = 5.0


@dataclass(frozen=True)
class MaterialUse(_Plain):
    """Bill of materials row: ``quantity`` units of ``material`` per unit of the variant."""

    material: str
    quantity: float


@dataclass(frozen=True)
class Variant(_Plain):
    """A sellable configuration.

    ``demand[t]`` holds the forecast demand of period t at each level of
    ``PlanningProblem.quantiles``. In ``quantile`` demand mode the model plans for the quantile
    equal to ``service_level`` (linear interpolation between the given levels, clamped at the
    ends); in ``expected_profit`` mode it plans for the mean profit over demand scenarios, drawn
    from these quantiles (:mod:`optimizer.core.scenarios`) unless ``demand_scenarios`` gives them
    (one row of per-period demand per scenario, all equally likely). Forecast demand that is not
    served is lost (``lost_sale_cost`` per unit on top of the lost revenue); firm orders are
    backlogged instead (``backlog_cost`` per unit and period late).

    ``family``: the product family the variant belongs to ("" = none). Where
    ``PlanningProblem.family_setups`` states a changeover of a line to this family, the variant's
    own (minor) setup on that line needs the family's (major) setup in the same period.
    """

    id: str
    price: tuple[float, ...]
    demand: tuple[tuple[float, ...], ...]
    service_level: float = 0.5
    holding_cost: float = 0.0
    backlog_cost: float = 0.0
    lost_sale_cost: float = 0.0
    initial_inventory: float = 0.0
    bom: tuple[MaterialUse, ...] = ()
    demand_scenarios: tuple[tuple[float, ...], ...] = ()
    family: str = ""


@dataclass(frozen=True)
class Line(_Plain):
    """A production line: regular hours per period, optional overtime, default setup figures."""

    id: str
    capacity_hours: tuple[float, ...]
    overtime_max_hours: float = 0.0
    overtime_cost: float = 0.0
    setup_hours: float = 0.0
    setup_cost: float = 0.0


@dataclass(frozen=True)
class FamilySetup(_Plain):
    """The major changeover of ``line`` to ``family`` in a period: ``hours`` of the line and
    ``cost``, paid once per period in which any variant of the family is set up on the line.
    The variants' own setups (``Route``/``Line`` setup figures) are then the minor setups within
    the family."""

    line: str
    family: str
    hours: float = 0.0
    cost: float = 0.0


@dataclass(frozen=True)
class Route(_Plain):
    """Eligibility of ``variant`` on ``line`` with its per-unit figures.

    ``setup_hours`` / ``setup_cost`` of None take the line's defaults; ``min_lot`` is the smallest
    quantity worth a setup (0 = none).
    """

    variant: str
    line: str
    unit_cost: float = 0.0
    hours_per_unit: float = 1.0
    setup_hours: float | None = None
    setup_cost: float | None = None
    min_lot: float = 0.0


@dataclass(frozen=True)
class Material(_Plain):
    """A material: ``stock`` on hand at the start, ``arrivals[t]`` arriving in period t."""

    id: str
    unit_cost: float = 0.0
    stock: float = 0.0
    arrivals: tuple[float, ...] = ()


@dataclass(frozen=True)
class FirmOrder(_Plain):
    """A confirmed custom order: ``quantity`` of ``variant`` due by period ``due_period``.

    ``price`` None means the variant's price in the due period.
    """

    id: str
    variant: str
    quantity: float
    due_period: int
    price: float | None = None


@dataclass(frozen=True)
class PreviousPlanLine(_Plain):
    """One quantity of the plan in force, for plan stability."""

    variant: str
    line: str
    period: int
    quantity: float


#: The scenarios' default correlation between any two weeks of a variant (an equicorrelated
#: copula, :mod:`optimizer.core.scenarios`), where the store has too little feedback data to
#: measure it (the gateway measures it per store: ``services.monitoring.correlation``). Measured
#: the same way: 0.13, 0.22 and 0.20 in the ``small`` preset's simulated worlds, 0.46 for the
#: demand model on real grocery sales and 0.28 for a 13-week median there (docs/benchmarks.md,
#: "The shape of the week correlation"); 0.3 lies within them.
WEEK_CORRELATION = 0.3


@dataclass(frozen=True)
class PlanningProblem(_Plain):
    """Everything the model needs; see docs/formulation.md for how each field enters it.

    ``mode="clsp"`` is the textbook capacitated lot-sizing problem: cost minimisation, demand
    only as firm orders met exactly on time, no backlog, no overtime, no revenue.

    ``demand_mode``: ``quantile`` plans each variant's ``service_level`` quantile as if it were
    certain; ``expected_profit`` decides production, setups and overtime once and maximises the
    mean profit over ``scenario_count`` demand scenarios (sales, stock and lost sales follow each
    scenario), drawn with ``scenario_seed`` and a correlation ``week_correlation`` between any
    two weeks of a variant (docs/formulation.md, "Expected profit").

    ``family_setups``: major changeovers per (line, family) (docs/formulation.md, "Family
    setups"); empty = every setup is the variant's own. One for a family that no planned variant
    belongs to is ignored.

    ``end_stock_value`` (expected-profit mode): stock expected on hand at the horizon's end is
    worth this share, in [0, 1], of the variant's variable unit cost on its cheapest line with its
    materials, as closing stock at cost counts in an accrual profit. A rolling plan sells that
    stock in the weeks after its horizon; at 0 it is worth nothing and the plan makes too little
    near its end (docs/formulation.md, "Stock left at the horizon's end").
    """

    periods: tuple[str, ...]
    variants: tuple[Variant, ...]
    lines: tuple[Line, ...]
    routes: tuple[Route, ...]
    quantiles: tuple[float, ...] = (0.5,)
    materials: tuple[Material, ...] = ()
    orders: tuple[FirmOrder, ...] = ()
    allow_backlog: bool = True
    frozen_periods: int = 0
    previous_plan: tuple[PreviousPlanLine, ...] = ()
    change_penalty: float = 0.0
    mode: Mode = "planning"
    name: str = ""
    demand_mode: DemandMode = "quantile"
    scenario_count: int = 32
    scenario_seed: int = 0
    week_correlation: float = WEEK_CORRELATION
    family_setups: tuple[FamilySetup, ...] = ()
    end_stock_value: float = 1.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanningProblem:
        try:
            problem = from_plain(cls, data)
        except (TypeError, ValueError, KeyError) as exc:
            raise ProblemInvalid("problem", str(exc)) from exc
        return problem

    def validate(self) -> PlanningProblem:
        """Raise :class:`ProblemInvalid` naming the first bad field; return self when sound."""
        _validate(self)
        return self


def _finite_nonneg(value: float, where: str) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ProblemInvalid(where, f"must be a finite number, got {value!r}")
    if value < 0:
        raise ProblemInvalid(where, f"must be >= 0, got {value}")


def _unique(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for k, i in enumerate(ids):
        if not i:
            raise ProblemInvalid(f"{where}[{k}].id", "must not be empty")
        if i in seen:
            raise ProblemInvalid(f"{where}[{k}].id", f"duplicate id {i!r}")
        seen.add(i)


def _validate(p: PlanningProblem) -> None:
    n = len(p.periods)
    if n == 0:
        raise ProblemInvalid("periods", "the horizon is empty")
    if not p.variants:
        raise ProblemInvalid("variants", "no variants to plan")
    if not p.lines:
        raise ProblemInvalid("lines", "no production lines")
    if not p.quantiles or list(p.quantiles) != sorted(set(p.quantiles)):
        raise ProblemInvalid("quantiles", "must be a non-empty strictly increasing list")
    if any(not 0.0 < q < 1.0 for q in p.quantiles):
        raise ProblemInvalid("quantiles", "levels must lie strictly between 0 and 1")
    if p.mode not in ("planning", "clsp"):
        raise ProblemInvalid("mode", f"must be 'planning' or 'clsp', got {p.mode!r}")
    if p.demand_mode not in ("quantile", "expected_profit"):
        raise ProblemInvalid(
            "demand_mode", f"must be 'quantile' or 'expected_profit', got {p.demand_mode!r}"
        )
    if p.demand_mode == "expected_profit" and p.mode == "clsp":
        raise ProblemInvalid("demand_mode", "CLSP mode has no forecast demand to plan over")
    if not 1 <= p.scenario_count <= MAX_SCENARIOS:
        raise ProblemInvalid("scenario_count", f"must lie in [1, {MAX_SCENARIOS}]")
    if not 0.0 <= p.week_correlation < 1.0 or not math.isfinite(p.week_correlation):
        raise ProblemInvalid("week_correlation", "must lie in [0, 1)")
    _unique([v.id for v in p.variants], "variants")
    _unique([ln.id for ln in p.lines], "lines")
    _unique([m.id for m in p.materials], "materials")
    materials = {m.id for m in p.materials}
    for k, v in enumerate(p.variants):
        w = f"variants[{k}]"
        if len(v.price) != n:
            raise ProblemInvalid(
                f"{w}.price", f"needs one value per period ({n}), got {len(v.price)}"
            )
        if len(v.demand) != n:
            raise ProblemInvalid(
                f"{w}.demand", f"needs one row per period ({n}), got {len(v.demand)}"
            )
        for t, row in enumerate(v.demand):
            if len(row) != len(p.quantiles):
                raise ProblemInvalid(
                    f"{w}.demand[{t}]", f"needs one value per quantile ({len(p.quantiles)})"
                )
            for q in row:
                _finite_nonneg(q, f"{w}.demand[{t}]")
            if list(row) != sorted(row):
                raise ProblemInvalid(f"{w}.demand[{t}]", "quantile values must not decrease")
        for t, price in enumerate(v.price):
            _finite_nonneg(price, f"{w}.price[{t}]")
        if v.demand_scenarios and len(v.demand_scenarios) != p.scenario_count:
            raise ProblemInvalid(
                f"{w}.demand_scenarios",
                f"needs scenario_count ({p.scenario_count}) rows, got {len(v.demand_scenarios)}",
            )
        for j, row in enumerate(v.demand_scenarios):
            if len(row) != n:
                raise ProblemInvalid(
                    f"{w}.demand_scenarios[{j}]", f"needs one value per period ({n})"
                )
            for t, q in enumerate(row):
                _finite_nonneg(q, f"{w}.demand_scenarios[{j}][{t}]")
        if not 0.0 < v.service_level < 1.0:
            raise ProblemInvalid(f"{w}.service_level", "must lie strictly between 0 and 1")
        for name in ("holding_cost", "backlog_cost", "lost_sale_cost", "initial_inventory"):
            _finite_nonneg(getattr(v, name), f"{w}.{name}")
        for j, use in enumerate(v.bom):
            if use.material not in materials:
                raise ProblemInvalid(f"{w}.bom[{j}].material", f"unknown material {use.material!r}")
            _finite_nonneg(use.quantity, f"{w}.bom[{j}].quantity")
    for k, ln in enumerate(p.lines):
        w = f"lines[{k}]"
        if len(ln.capacity_hours) != n:
            raise ProblemInvalid(f"{w}.capacity_hours", f"needs one value per period ({n})")
        for t, c in enumerate(ln.capacity_hours):
            _finite_nonneg(c, f"{w}.capacity_hours[{t}]")
        for name in ("overtime_max_hours", "overtime_cost", "setup_hours", "setup_cost"):
            _finite_nonneg(getattr(ln, name), f"{w}.{name}")
    variants = {v.id for v in p.variants}
    lines = {ln.id for ln in p.lines}
    seen: set[tuple[str, str]] = set()
    for k, r in enumerate(p.routes):
        w = f"routes[{k}]"
        if r.variant not in variants:
            raise ProblemInvalid(f"{w}.variant", f"unknown variant {r.variant!r}")
        if r.line not in lines:
            raise ProblemInvalid(f"{w}.line", f"unknown line {r.line!r}")
        if (r.variant, r.line) in seen:
            raise ProblemInvalid(w, f"duplicate route {r.variant!r} on {r.line!r}")
        seen.add((r.variant, r.line))
        for name in ("unit_cost", "hours_per_unit", "min_lot"):
            _finite_nonneg(getattr(r, name), f"{w}.{name}")
        for name in ("setup_hours", "setup_cost"):
            if getattr(r, name) is not None:
                _finite_nonneg(getattr(r, name), f"{w}.{name}")
    for k, m in enumerate(p.materials):
        w = f"materials[{k}]"
        _finite_nonneg(m.unit_cost, f"{w}.unit_cost")
        _finite_nonneg(m.stock, f"{w}.stock")
        if m.arrivals and len(m.arrivals) != n:
            raise ProblemInvalid(f"{w}.arrivals", f"needs one value per period ({n}) or none")
        for t, a in enumerate(m.arrivals):
            _finite_nonneg(a, f"{w}.arrivals[{t}]")
    _unique([o.id for o in p.orders], "orders")
    for k, o in enumerate(p.orders):
        w = f"orders[{k}]"
        if o.variant not in variants:
            raise ProblemInvalid(f"{w}.variant", f"unknown variant {o.variant!r}")
        if not 0 <= o.due_period < n:
            raise ProblemInvalid(f"{w}.due_period", f"must be a period index in [0, {n - 1}]")
        _finite_nonneg(o.quantity, f"{w}.quantity")
        if o.price is not None:
            _finite_nonneg(o.price, f"{w}.price")
    if not 0 <= p.frozen_periods <= n:
        raise ProblemInvalid("frozen_periods", f"must lie in [0, {n}]")
    _finite_nonneg(p.change_penalty, "change_penalty")
    if not (math.isfinite(p.end_stock_value) and 0.0 <= p.end_stock_value <= 1.0):
        raise ProblemInvalid("end_stock_value", f"must lie in [0, 1], got {p.end_stock_value}")
    for k, pl in enumerate(p.previous_plan):
        w = f"previous_plan[{k}]"
        if (pl.variant, pl.line) not in seen:
            raise ProblemInvalid(w, f"no route for {pl.variant!r} on {pl.line!r}")
        if not 0 <= pl.period < n:
            raise ProblemInvalid(f"{w}.period", f"must be a period index in [0, {n - 1}]")
        _finite_nonneg(pl.quantity, f"{w}.quantity")
    _validate_family_setups(p, lines)
    if p.mode == "clsp":
        if len(p.lines) != 1:
            raise ProblemInvalid("lines", "CLSP mode plans exactly one line")
        if any(ln.overtime_max_hours > 0 for ln in p.lines):
            raise ProblemInvalid("lines[0].overtime_max_hours", "CLSP mode has no overtime")
        if p.allow_backlog:
            raise ProblemInvalid("allow_backlog", "CLSP mode forbids backlog")


def _validate_family_setups(p: PlanningProblem, lines: set[str]) -> None:
    seen: set[tuple[str, str]] = set()
    for k, fs in enumerate(p.family_setups):
        w = f"family_setups[{k}]"
        if fs.line not in lines:
            raise ProblemInvalid(f"{w}.line", f"unknown line {fs.line!r}")
        if not fs.family:
            raise ProblemInvalid(f"{w}.family", "must not be empty")
        if (fs.line, fs.family) in seen:
            raise ProblemInvalid(w, f"duplicate family setup of {fs.family!r} on {fs.line!r}")
        seen.add((fs.line, fs.family))
        _finite_nonneg(fs.hours, f"{w}.hours")
        _finite_nonneg(fs.cost, f"{w}.cost")


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SolveOptions(_Plain):
    """How to solve. ``time_limit_s`` bounds the whole solve (heuristics split it over their
    sub-problems); a time limit returns the best plan found. ``window``/``overlap`` size the
    relax-and-fix windows in periods (0 = chosen from the horizon). ``method="auto"`` chooses by
    size and time limit (:func:`optimizer.core.pipeline.choose_method`); ``whole_units`` rounds
    production to whole units and checks the rounding (:mod:`optimizer.core.rounding`)."""

    time_limit_s: float = 60.0
    mip_rel_gap: float = 1e-4
    threads: int | None = None
    method: Method = "auto"
    explain: bool = True
    whole_units: bool = True
    window: int = 0
    overlap: int = 0

    def validate(self) -> SolveOptions:
        if not self.time_limit_s > 0:
            raise ProblemInvalid("options.time_limit_s", "must be > 0")
        if not 0 <= self.mip_rel_gap < 1:
            raise ProblemInvalid("options.mip_rel_gap", "must lie in [0, 1)")
        if self.threads is not None and self.threads < 1:
            raise ProblemInvalid("options.threads", "must be >= 1")
        if self.method not in ("auto", "monolithic", "relax_and_fix", "fix_and_optimize"):
            raise ProblemInvalid("options.method", f"unknown method {self.method!r}")
        if self.window < 0 or self.overlap < 0:
            raise ProblemInvalid("options.window", "window and overlap must be >= 0")
        return self


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class PlanLine(_Plain):
    """Production of ``variant`` on ``line`` in ``period``; ``setup`` says a setup is paid."""

    variant: str
    line: str
    period: int
    quantity: float
    setup: bool


@dataclass(frozen=True)
class FamilyChangeover(_Plain):
    """A family changeover of the plan: ``line`` set up for ``family`` in ``period`` (``hours``
    and ``cost`` paid once), with the variants set up on it."""

    family: str
    line: str
    period: int
    variants: tuple[str, ...]
    hours: float
    cost: float


@dataclass(frozen=True)
class VariantPeriod(_Plain):
    """Per variant and period: demand planned for, what is sold, stock, shortfalls."""

    variant: str
    period: int
    demand: float
    firm_due: float
    sales: float
    inventory: float
    backlog: float
    lost_sales: float


@dataclass(frozen=True)
class LinePeriod(_Plain):
    """Per line and period: hours used (production + setups), overtime, utilisation of regular
    capacity plus overtime, and the capacity shadow price (objective gain per extra hour, from
    the LP with setups fixed; 0 when not computed)."""

    line: str
    period: int
    hours_used: float
    capacity_hours: float
    overtime_hours: float
    utilisation: float
    shadow_price: float


@dataclass(frozen=True)
class CostBreakdown(_Plain):
    revenue: float = 0.0
    production: float = 0.0
    setup: float = 0.0
    holding: float = 0.0
    backlog: float = 0.0
    lost_sales: float = 0.0
    overtime: float = 0.0
    material: float = 0.0
    change_penalty: float = 0.0
    #: The part of ``setup`` paid for family changeovers (already in ``setup``: not added again).
    family_setup: float = 0.0
    #: Expected-profit mode: the stock expected at the horizon's end, valued at cost
    #: (``PlanningProblem.end_stock_value``); part of the profit, as closing stock at cost is.
    end_stock_value: float = 0.0

    @property
    def total_cost(self) -> float:
        return (
            self.production
            + self.setup
            + self.holding
            + self.backlog
            + self.lost_sales
            + self.overtime
            + self.material
            + self.change_penalty
        )

    @property
    def profit(self) -> float:
        return self.revenue + self.end_stock_value - self.total_cost


@dataclass(frozen=True)
class Kpis(_Plain):
    """Plan figures. In expected-profit mode ``fill_rate`` is the expected share of forecast
    demand served, and ``profit_p10``/``profit_p90`` the 10th/90th percentile of the plan's
    profit over its ``scenarios`` (None in quantile mode, where demand has one value)."""

    fill_rate: float = 1.0
    on_time_firm_rate: float = 1.0
    total_production: float = 0.0
    setups: int = 0
    mean_utilisation: float = 0.0
    max_utilisation: float = 0.0
    scenarios: int = 0
    profit_p10: float | None = None
    profit_p90: float | None = None
    family_setups: int = 0
    expected_leftover: float = 0.0
    rounding_cost: float = 0.0
    rounded_quantities: int = 0


@dataclass(frozen=True)
class Bottleneck(_Plain):
    line: str
    period: int
    utilisation: float
    shadow_price: float


@dataclass(frozen=True)
class Shortage(_Plain):
    """Demand not met: ``kind`` is ``lost`` (forecast demand) or ``late`` (firm order backlog)."""

    variant: str
    period: int
    quantity: float
    kind: Literal["lost", "late"]
    reason: ShortageReason
    detail: str


@dataclass(frozen=True)
class Violation(_Plain):
    """One relaxed constraint of an infeasible problem and how much it had to give."""

    constraint: str
    amount: float
    detail: str


@dataclass(frozen=True)
class Diagnosis(_Plain):
    """Why a problem is infeasible: the constraints an elastic relaxation had to violate."""

    summary: str
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class ChangeoverGroup(_Plain):
    """Variants that ride on one family changeover, and what that saves against a changeover
    of their own each: ``(len(variants) - 1)`` times the changeover's cost and hours."""

    family: str
    line: str
    period: int
    variants: tuple[str, ...]
    saving: float
    hours_saved: float


@dataclass(frozen=True)
class Explanation(_Plain):
    bottlenecks: tuple[Bottleneck, ...] = ()
    shortages: tuple[Shortage, ...] = ()
    notes: tuple[str, ...] = ()
    groupings: tuple[ChangeoverGroup, ...] = ()


@dataclass(frozen=True)
class Plan(_Plain):
    """A solved plan. ``objective`` is profit (planning mode) or total cost (CLSP mode);
    ``best_bound`` the solver's dual bound on it and ``gap`` their relative distance.
    Times in seconds: ``build`` (Pyomo model), ``translate`` (to the solver), ``solve``."""

    status: Status
    objective: float | None
    best_bound: float | None
    gap: float | None
    method: Method = "monolithic"
    mode: Mode = "planning"
    sense: Literal["max", "min"] = "max"
    build_time_s: float = 0.0
    translate_time_s: float = 0.0
    solve_time_s: float = 0.0
    total_time_s: float = 0.0
    lines: tuple[PlanLine, ...] = ()
    variants: tuple[VariantPeriod, ...] = ()
    line_periods: tuple[LinePeriod, ...] = ()
    costs: CostBreakdown = field(default_factory=CostBreakdown)
    kpis: Kpis = field(default_factory=Kpis)
    explanation: Explanation = field(default_factory=Explanation)
    message: str = ""
    changeovers: tuple[FamilyChangeover, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> Plan:
        """``strict=False`` for a stored plan: fields a newer version added are left out."""
        return from_plain(cls, data, strict=strict)
