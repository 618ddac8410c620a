"""Proto <-> dataclass conversion for the optimizer's gRPC API (tailorline.optimizer.v1).

The proto mirrors :mod:`optimizer.core.problem` field for field, so this module is mechanical: no
validation beyond what the wire form cannot express (an enum value this server does not know, a
scenario factor that is negative); everything else is checked by ``PlanningProblem.validate()`` so
the rules live in one place. Errors are :class:`ProblemInvalid` whose ``field`` is a path into the
*request* (``problem.lines[0].capacity_hours[2]``, ``scenarios[1].capacity_factors["L2"]``).

Scenarios (what-ifs of a base problem) are turned into plain problems here as well: a scenario is a
different wire form of a ``PlanningProblem``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
from tailorline.optimizer.v1 import plan_pb2 as plan_pb
from tailorline.optimizer.v1 import problem_pb2 as pb

from optimizer.core.errors import ProblemInvalid
from optimizer.core.problem import (
    WEEK_CORRELATION,
    Bottleneck,
    ChangeoverGroup,
    CostBreakdown,
    Diagnosis,
    Explanation,
    FamilyChangeover,
    FamilySetup,
    FirmOrder,
    Kpis,
    Line,
    LinePeriod,
    Material,
    MaterialUse,
    Plan,
    PlanLine,
    PlanningProblem,
    PreviousPlanLine,
    Route,
    Shortage,
    SolveOptions,
    Variant,
    VariantPeriod,
    Violation,
)

K = TypeVar("K")

# Enum value <-> the Literal strings of optimizer.core.problem.
# UNSPECIFIED maps to the Python default.
_MODES: dict[Any, str] = {pb.PLANNING_MODE_PLANNING: "planning", pb.PLANNING_MODE_CLSP: "clsp"}
_DEMAND_MODES: dict[Any, str] = {
    pb.DEMAND_MODE_QUANTILE: "quantile",
    pb.DEMAND_MODE_EXPECTED_PROFIT: "expected_profit",
}
_METHODS: dict[Any, str] = {
    pb.SOLVE_METHOD_MONOLITHIC: "monolithic",
    pb.SOLVE_METHOD_RELAX_AND_FIX: "relax_and_fix",
    pb.SOLVE_METHOD_FIX_AND_OPTIMIZE: "fix_and_optimize",
    pb.SOLVE_METHOD_AUTO: "auto",
}
_STATUSES: dict[Any, str] = {
    plan_pb.PLAN_STATUS_OPTIMAL: "optimal",
    plan_pb.PLAN_STATUS_FEASIBLE: "feasible",
    plan_pb.PLAN_STATUS_INFEASIBLE: "infeasible",
    plan_pb.PLAN_STATUS_NO_SOLUTION: "no_solution",
    plan_pb.PLAN_STATUS_ERROR: "error",
}
_SENSES: dict[Any, str] = {
    plan_pb.OBJECTIVE_SENSE_MAXIMIZE: "max",
    plan_pb.OBJECTIVE_SENSE_MINIMIZE: "min",
}
_KINDS: dict[Any, str] = {plan_pb.SHORTAGE_KIND_LOST: "lost", plan_pb.SHORTAGE_KIND_LATE: "late"}
_REASONS: dict[Any, str] = {
    plan_pb.SHORTAGE_REASON_CAPACITY: "capacity",
    plan_pb.SHORTAGE_REASON_MATERIAL: "material",
    plan_pb.SHORTAGE_REASON_DUE_DATE: "due_date",
    plan_pb.SHORTAGE_REASON_UNPROFITABLE: "unprofitable",
}


def _from_enum(table: Mapping[Any, str], value: Any, default: str, where: str) -> str:
    if value == 0:
        return default
    try:
        return table[value]
    except KeyError:
        raise ProblemInvalid(where, f"unknown enum value {value}") from None


def _to_enum(table: Mapping[Any, str], value: str) -> Any:
    for number, name in table.items():
        if name == value:
            return number
    raise ValueError(f"no enum value for {value!r}")


def _opt(msg: Any, name: str) -> Any:
    """The value of an ``optional`` proto field, or None when it is absent."""
    return getattr(msg, name) if msg.HasField(name) else None


# --------------------------------------------------------------------------- problem


def problem_from_proto(msg: pb.PlanningProblem, where: str = "problem") -> PlanningProblem:
    """Wire -> dataclass. Absent optional fields take the dataclass defaults. Not validated:
    call :func:`validated_problem` (or ``.validate()``) before solving."""
    variants = tuple(
        Variant(
            id=v.id,
            price=tuple(v.price),
            demand=tuple(tuple(row.values) for row in v.demand),
            service_level=v.service_level if v.HasField("service_level") else 0.5,
            holding_cost=v.holding_cost,
            backlog_cost=v.backlog_cost,
            lost_sale_cost=v.lost_sale_cost,
            initial_inventory=v.initial_inventory,
            bom=tuple(MaterialUse(material=u.material, quantity=u.quantity) for u in v.bom),
            demand_scenarios=tuple(tuple(path.demand) for path in v.demand_scenarios),
            family=v.family,
        )
        for v in msg.variants
    )
    lines = tuple(
        Line(
            id=ln.id,
            capacity_hours=tuple(ln.capacity_hours),
            overtime_max_hours=ln.overtime_max_hours,
            overtime_cost=ln.overtime_cost,
            setup_hours=ln.setup_hours,
            setup_cost=ln.setup_cost,
        )
        for ln in msg.lines
    )
    routes = tuple(
        Route(
            variant=r.variant,
            line=r.line,
            unit_cost=r.unit_cost,
            hours_per_unit=r.hours_per_unit if r.HasField("hours_per_unit") else 1.0,
            setup_hours=_opt(r, "setup_hours"),
            setup_cost=_opt(r, "setup_cost"),
            min_lot=r.min_lot,
        )
        for r in msg.routes
    )
    return PlanningProblem(
        periods=tuple(msg.periods),
        variants=variants,
        lines=lines,
        routes=routes,
        quantiles=tuple(msg.quantiles) or (0.5,),
        materials=tuple(
            Material(id=m.id, unit_cost=m.unit_cost, stock=m.stock, arrivals=tuple(m.arrivals))
            for m in msg.materials
        ),
        orders=tuple(
            FirmOrder(
                id=o.id,
                variant=o.variant,
                quantity=o.quantity,
                due_period=o.due_period,
                price=_opt(o, "price"),
            )
            for o in msg.orders
        ),
        allow_backlog=msg.allow_backlog if msg.HasField("allow_backlog") else True,
        frozen_periods=msg.frozen_periods,
        previous_plan=tuple(
            PreviousPlanLine(variant=p.variant, line=p.line, period=p.period, quantity=p.quantity)
            for p in msg.previous_plan
        ),
        change_penalty=msg.change_penalty,
        mode=_from_enum(_MODES, msg.mode, "planning", f"{where}.mode"),  # type: ignore[arg-type]
        name=msg.name,
        demand_mode=_from_enum(  # type: ignore[arg-type]
            _DEMAND_MODES, msg.demand_mode, "quantile", f"{where}.demand_mode"
        ),
        scenario_count=msg.scenario_count if msg.HasField("scenario_count") else 32,
        scenario_seed=msg.scenario_seed,
        week_correlation=(
            msg.week_correlation if msg.HasField("week_correlation") else WEEK_CORRELATION
        ),
        family_setups=tuple(
            FamilySetup(line=f.line, family=f.family, hours=f.hours, cost=f.cost)
            for f in msg.family_setups
        ),
        end_stock_value=msg.end_stock_value if msg.HasField("end_stock_value") else 1.0,
    )


def problem_to_proto(problem: PlanningProblem) -> pb.PlanningProblem:
    """Dataclass -> wire; every optional field is written, so the round trip is exact."""
    msg = pb.PlanningProblem(
        periods=problem.periods,
        quantiles=problem.quantiles,
        allow_backlog=problem.allow_backlog,
        frozen_periods=problem.frozen_periods,
        change_penalty=problem.change_penalty,
        mode=_to_enum(_MODES, problem.mode),
        name=problem.name,
        demand_mode=_to_enum(_DEMAND_MODES, problem.demand_mode),
        scenario_count=problem.scenario_count,
        scenario_seed=problem.scenario_seed,
        week_correlation=problem.week_correlation,
        end_stock_value=problem.end_stock_value,
    )
    for v in problem.variants:
        msg.variants.add(
            id=v.id,
            price=v.price,
            demand=[pb.PeriodDemand(values=row) for row in v.demand],
            service_level=v.service_level,
            holding_cost=v.holding_cost,
            backlog_cost=v.backlog_cost,
            lost_sale_cost=v.lost_sale_cost,
            initial_inventory=v.initial_inventory,
            bom=[pb.MaterialUse(material=u.material, quantity=u.quantity) for u in v.bom],
            demand_scenarios=[pb.DemandPath(demand=row) for row in v.demand_scenarios],
            family=v.family,
        )
    for ln in problem.lines:
        msg.lines.add(**dataclasses.asdict(ln))
    for r in problem.routes:
        msg.routes.add(**{k: v for k, v in dataclasses.asdict(r).items() if v is not None})
    for m in problem.materials:
        msg.materials.add(**dataclasses.asdict(m))
    for o in problem.orders:
        msg.orders.add(**{k: v for k, v in dataclasses.asdict(o).items() if v is not None})
    for p in problem.previous_plan:
        msg.previous_plan.add(**dataclasses.asdict(p))
    for f in problem.family_setups:
        msg.family_setups.add(**dataclasses.asdict(f))
    return msg


def _prefixed(exc: ProblemInvalid, where: str) -> ProblemInvalid:
    return ProblemInvalid(f"{where}.{exc.field}" if where else exc.field, exc.reason)


def validated_problem(problem: PlanningProblem, where: str = "problem") -> PlanningProblem:
    """``problem.validate()`` with the error's field made a path into the request."""
    try:
        return problem.validate()
    except ProblemInvalid as exc:
        raise _prefixed(exc, where) from None


# --------------------------------------------------------------------------- options


def options_overrides_from_proto(msg: pb.SolveOptions) -> dict[str, Any]:
    """The :class:`SolveOptions` fields the request sets explicitly; the server fills the rest."""
    out: dict[str, Any] = {}
    for name in ("time_limit_s", "mip_rel_gap", "threads", "explain", "whole_units"):
        if msg.HasField(name):
            out[name] = getattr(msg, name)
    if msg.method:
        out["method"] = _from_enum(_METHODS, msg.method, "monolithic", "options.method")
    if msg.window:
        out["window"] = msg.window
    if msg.overlap:
        out["overlap"] = msg.overlap
    return out


def options_from_overrides(defaults: SolveOptions, overrides: Mapping[str, Any]) -> SolveOptions:
    """``defaults`` with the request's fields on top, validated (``options.<field>`` on error)."""
    return dataclasses.replace(defaults, **overrides).validate()


def options_to_proto(options: SolveOptions) -> pb.SolveOptions:
    msg = pb.SolveOptions(
        time_limit_s=options.time_limit_s,
        mip_rel_gap=options.mip_rel_gap,
        method=_to_enum(_METHODS, options.method),
        explain=options.explain,
        whole_units=options.whole_units,
        window=options.window,
        overlap=options.overlap,
    )
    if options.threads is not None:
        msg.threads = options.threads
    return msg


# --------------------------------------------------------------------------- plan


def plan_to_proto(plan: Plan) -> plan_pb.Plan:
    msg = plan_pb.Plan(
        status=_to_enum(_STATUSES, plan.status),
        method=_to_enum(_METHODS, plan.method),
        mode=_to_enum(_MODES, plan.mode),
        sense=_to_enum(_SENSES, plan.sense),
        build_time_s=plan.build_time_s,
        translate_time_s=plan.translate_time_s,
        solve_time_s=plan.solve_time_s,
        total_time_s=plan.total_time_s,
        lines=[plan_pb.PlanLine(**dataclasses.asdict(x)) for x in plan.lines],
        variants=[plan_pb.VariantPeriod(**dataclasses.asdict(x)) for x in plan.variants],
        line_periods=[plan_pb.LinePeriod(**dataclasses.asdict(x)) for x in plan.line_periods],
        costs=plan_pb.CostBreakdown(**dataclasses.asdict(plan.costs)),
        kpis=plan_pb.Kpis(**dataclasses.asdict(plan.kpis)),
        explanation=plan_pb.Explanation(
            bottlenecks=[
                plan_pb.Bottleneck(**dataclasses.asdict(b)) for b in plan.explanation.bottlenecks
            ],
            shortages=[
                plan_pb.Shortage(
                    variant=s.variant,
                    period=s.period,
                    quantity=s.quantity,
                    kind=_to_enum(_KINDS, s.kind),
                    reason=_to_enum(_REASONS, s.reason),
                    detail=s.detail,
                )
                for s in plan.explanation.shortages
            ],
            notes=plan.explanation.notes,
            groupings=[
                plan_pb.ChangeoverGroup(**dataclasses.asdict(g)) for g in plan.explanation.groupings
            ],
        ),
        message=plan.message,
        changeovers=[plan_pb.FamilyChangeover(**dataclasses.asdict(c)) for c in plan.changeovers],
    )
    for name in ("objective", "best_bound", "gap"):
        value = getattr(plan, name)
        if value is not None:
            setattr(msg, name, value)
    return msg


def _fields(cls: type[K], msg: Any) -> K:
    """The dataclass from the message's fields of the same names; an ``optional`` field that is
    absent becomes None."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    optional = {
        f.name
        for f in msg.DESCRIPTOR.fields
        if getattr(f, "has_presence", False) and not f.message_type
    }
    return cls(**{n: _opt(msg, n) if n in optional else getattr(msg, n) for n in names})


def plan_from_proto(msg: plan_pb.Plan) -> Plan:
    """Wire -> dataclass (what a Python client of the service, e.g. the gateway, works with)."""
    ex = msg.explanation
    return Plan(
        status=_from_enum(_STATUSES, msg.status, "error", "plan.status"),  # type: ignore[arg-type]
        objective=_opt(msg, "objective"),
        best_bound=_opt(msg, "best_bound"),
        gap=_opt(msg, "gap"),
        method=_from_enum(_METHODS, msg.method, "monolithic", "plan.method"),  # type: ignore[arg-type]
        mode=_from_enum(_MODES, msg.mode, "planning", "plan.mode"),  # type: ignore[arg-type]
        sense=_from_enum(_SENSES, msg.sense, "max", "plan.sense"),  # type: ignore[arg-type]
        build_time_s=msg.build_time_s,
        translate_time_s=msg.translate_time_s,
        solve_time_s=msg.solve_time_s,
        total_time_s=msg.total_time_s,
        lines=tuple(_fields(PlanLine, x) for x in msg.lines),
        variants=tuple(_fields(VariantPeriod, x) for x in msg.variants),
        line_periods=tuple(_fields(LinePeriod, x) for x in msg.line_periods),
        costs=_fields(CostBreakdown, msg.costs),
        kpis=_fields(Kpis, msg.kpis),
        explanation=Explanation(
            bottlenecks=tuple(_fields(Bottleneck, b) for b in ex.bottlenecks),
            shortages=tuple(
                Shortage(
                    variant=s.variant,
                    period=s.period,
                    quantity=s.quantity,
                    kind=_from_enum(_KINDS, s.kind, "lost", "shortage.kind"),  # type: ignore[arg-type]
                    reason=_from_enum(_REASONS, s.reason, "capacity", "shortage.reason"),  # type: ignore[arg-type]
                    detail=s.detail,
                )
                for s in ex.shortages
            ),
            notes=tuple(ex.notes),
            groupings=tuple(
                ChangeoverGroup(
                    family=g.family,
                    line=g.line,
                    period=g.period,
                    variants=tuple(g.variants),
                    saving=g.saving,
                    hours_saved=g.hours_saved,
                )
                for g in ex.groupings
            ),
        ),
        message=msg.message,
        changeovers=tuple(
            FamilyChangeover(
                family=c.family,
                line=c.line,
                period=c.period,
                variants=tuple(c.variants),
                hours=c.hours,
                cost=c.cost,
            )
            for c in msg.changeovers
        ),
    )


def diagnosis_to_proto(diagnosis: Diagnosis) -> plan_pb.Diagnosis:
    return plan_pb.Diagnosis(
        summary=diagnosis.summary,
        violations=[plan_pb.Violation(**dataclasses.asdict(v)) for v in diagnosis.violations],
    )


def diagnosis_from_proto(msg: plan_pb.Diagnosis) -> Diagnosis:
    return Diagnosis(
        summary=msg.summary, violations=tuple(_fields(Violation, v) for v in msg.violations)
    )


# --------------------------------------------------------------------------- scenarios


def _factor(value: float, where: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise ProblemInvalid(where, f"must be a finite number >= 0, got {value}")
    return value


class ScenarioSpec(Protocol):
    """A what-if of the base problem as plain data (e.g. ``services.planning.request.Scenario``):
    None/empty changes nothing; ``capacity_factors`` maps or pairs line id -> factor."""

    @property
    def id(self) -> str: ...

    @property
    def service_level(self) -> float | None: ...

    @property
    def demand_factor(self) -> float | None: ...

    @property
    def capacity_factors(self) -> Mapping[str, float] | Iterable[tuple[str, float]]: ...


def scenario_to_proto(scenario: ScenarioSpec) -> svc_pb.Scenario:
    """Plain data -> wire (checked by the service, like every request: :func:`scenario_problem`)."""
    msg = svc_pb.Scenario(id=scenario.id, capacity_factors=dict(scenario.capacity_factors))
    if scenario.service_level is not None:
        msg.service_level = scenario.service_level
    if scenario.demand_factor is not None:
        msg.demand_factor = scenario.demand_factor
    return msg


def scenario_problem(
    base: PlanningProblem | None, scenario: svc_pb.Scenario, where: str
) -> PlanningProblem:
    """The validated problem a scenario stands for: its own ``problem`` or the base one, with the
    service level (which plans in quantile mode), demand factor and capacity factors applied.
    ``where`` prefixes error fields."""
    if scenario.HasField("problem"):
        problem = problem_from_proto(scenario.problem, f"{where}.problem")
        problem_where = f"{where}.problem"
    elif base is not None:
        problem, problem_where = base, "problem"
    else:
        raise ProblemInvalid(f"{where}.problem", "no problem: set the batch's or the scenario's")
    validated_problem(problem, problem_where)
    if scenario.HasField("service_level"):
        level = scenario.service_level
        if not 0.0 < level < 1.0:
            raise ProblemInvalid(f"{where}.service_level", f"must lie in (0, 1), got {level}")
        # a quantile what-if plans that quantile as if certain: in expected-profit mode a
        # service level changed nothing, so the scenario silently repeated the base plan
        problem = dataclasses.replace(
            problem,
            demand_mode="quantile",
            variants=tuple(dataclasses.replace(v, service_level=level) for v in problem.variants),
        )
    if scenario.HasField("demand_factor"):
        f = _factor(scenario.demand_factor, f"{where}.demand_factor")
        problem = dataclasses.replace(
            problem,
            variants=tuple(
                dataclasses.replace(
                    v,
                    demand=tuple(tuple(q * f for q in row) for row in v.demand),
                    demand_scenarios=tuple(tuple(q * f for q in row) for row in v.demand_scenarios),
                )
                for v in problem.variants
            ),
        )
    if scenario.capacity_factors:
        known = {ln.id for ln in problem.lines}
        factors = {}
        for line_id in sorted(scenario.capacity_factors):
            w = f'{where}.capacity_factors["{line_id}"]'
            if line_id not in known:
                raise ProblemInvalid(w, f"unknown line {line_id!r}")
            factors[line_id] = _factor(scenario.capacity_factors[line_id], w)
        problem = dataclasses.replace(
            problem,
            lines=tuple(
                dataclasses.replace(
                    ln, capacity_hours=tuple(h * factors[ln.id] for h in ln.capacity_hours)
                )
                if ln.id in factors
                else ln
                for ln in problem.lines
            ),
        )
    return problem
