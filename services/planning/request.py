"""The one plan request: what a caller may ask a plan for, its defaults and its validation.

Every entry point (the gateway's ``CreatePlan``/``ReplanBatch``, ``tailorline plan``, the Python
gateway client, the demo, the simulator's in-process policies) builds a :class:`PlanRequest` or
takes its defaults from the constants here, and every check of a plan input is written here once:
a bad value is an :class:`~services.common.errors.InvalidArgument` naming the field and the reason,
quoting at most a short, cut echo of the value (:func:`~services.common.errors.shown`).

The bounds (docs/api.md, *Input bounds*) are the ``MAX_*`` constants below: every number is finite
and capped, every id, name and date string has a length limit and no control characters, every
list has a count limit, so no value a caller sends can overflow the forecaster or the solver.

The optimizer checks its own input again (``PlanningProblem.validate``, ``SolveBatch``): it is a
service of its own and depends on nothing in ``services/``.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from services.common.errors import InvalidArgument, shown
from services.store.schema import CODE, ID

#: Weeks planned when a request does not say.
DEFAULT_HORIZON = 12
#: Most weeks one plan may cover (the gateway may allow fewer: ``max_periods``).
MAX_HORIZON = 52
#: What a plan is made for when a request does not say (API, CLI, client, demo, simulator,
#: chart): ``expected_profit`` maximises the mean profit over demand scenarios drawn from the
#: forecast distribution; ``quantile`` plans one quantile (``service_level``) as if certain.
#: docs/benchmarks.md, "Planning under uncertainty", has the evidence for the default.
DEFAULT_DEMAND_MODE = "expected_profit"
DEMAND_MODES = ("expected_profit", "quantile")
#: Demand scenarios of an expected-profit plan when a request does not say.
DEFAULT_SCENARIO_COUNT = 32
#: Most scenarios one expected-profit plan may ask for (the optimizer's limit).
MAX_SCENARIO_COUNT = 512
#: The demand quantile planned for in quantile mode when a request does not say: the median. Out
#: of sample on the ``small`` preset's plan the P50 plan earned 36,541, P60 33,094, P70 16,476 and
#: P90 -29,841 (docs/benchmarks.md); in the simulator quantile 0.5 made the most of the three.
DEFAULT_SERVICE_LEVEL = 0.5
#: How the optimizer solves when a request does not say: ``auto`` chooses by size and time.
DEFAULT_SOLVE_METHOD = "auto"
SOLVE_METHODS = ("auto", "monolithic", "relax_and_fix", "fix_and_optimize")
#: Holding cost per unit and week, as a share of the variant's cheapest unit cost.
DEFAULT_HOLDING_RATE = 0.01
#: Cost of a firm order's unit per week late, as a share of the list price.
DEFAULT_BACKLOG_RATE = 0.02
#: Goodwill penalty of a lost sale, as a share of the list price (on top of the lost revenue).
DEFAULT_LOST_SALE_RATE = 0.05
#: Most scenarios one ``ReplanBatch`` may carry (the optimizer's ``SolveBatch`` default too).
MAX_SCENARIOS = 256

#: Longest id (variant, family, line, scenario, plan): the store's id columns.
MAX_ID_CHARS = ID
#: Longest attribute name or value of a new configuration (the store's code columns).
MAX_CODE_CHARS = CODE
#: Longest plan name.
MAX_NAME_CHARS = 200
#: Longest date string (``2026-11-23``, ``2026-11-23T00:00:00+05:00``).
MAX_DATE_CHARS = 40
#: Most attributes of one new configuration.
MAX_ATTRIBUTES = 64
#: Highest list price of a new configuration (EUR per unit; the store's bound on list prices).
MAX_LIST_PRICE = 1_000_000.0
#: Highest holding, backlog or lost-sale rate (a share of a cost or price per unit).
MAX_RATE = 100.0
#: Longest solver time limit a request may ask for, in seconds (the gateway's deadline applies
#: as well).
MAX_TIME_LIMIT_S = 3600.0
#: Most units on hand of one variant (``initial_inventory``).
MAX_UNITS = 1_000_000_000.0
#: Highest scenario factor (``demand_factor``, ``capacity_factors``).
MAX_FACTOR = 100.0

_RATES = ("holding_rate", "backlog_rate", "lost_sale_rate")


# --------------------------------------------------------------------------- single values


def check_service_level(value: float, field: str = "service_level") -> float:
    """The demand quantile to plan for: a finite number strictly between 0 and 1."""
    if not math.isfinite(value) or not 0.0 < value < 1.0:
        raise InvalidArgument(f"must lie strictly between 0 and 1, got {value}", field=field)
    return float(value)


def check_horizon(value: int, field: str = "horizon", *, max_weeks: int = MAX_HORIZON) -> int:
    """Planned weeks: 1 .. ``max_weeks`` (never more than :data:`MAX_HORIZON`)."""
    top = min(MAX_HORIZON, max_weeks)
    if not 1 <= value <= top:
        raise InvalidArgument(f"must be between 1 and {top} weeks, got {value}", field=field)
    return value


def finite(
    value: float,
    field: str,
    *,
    low: float = 0.0,
    strict: bool = False,
    high: float | None = None,
) -> float:
    """A finite number ``>= low`` (``> low`` when ``strict``) and ``<= high`` (when given)."""
    if not math.isfinite(value) or value < low or (strict and value == low):
        op = ">" if strict else ">="
        raise InvalidArgument(f"must be a finite number {op} {low:g}, got {value}", field=field)
    if high is not None and value > high:
        raise InvalidArgument(f"must be at most {high:g}, got {value:g}", field=field)
    return float(value)


def _control(value: str) -> bool:
    """Whether ``value`` holds a control character (NUL, newline, escape, ...)."""
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def check_text(value: str, field: str, *, max_chars: int, what: str = "text") -> str:
    """A string of at most ``max_chars`` characters without control characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"must be a string, got {type(value).__name__}", field=field)
    if len(value) > max_chars:
        raise InvalidArgument(
            f"{what} of {len(value)} characters; at most {max_chars}: {shown(value)}", field=field
        )
    if _control(value):
        raise InvalidArgument(f"{what} holds a control character: {shown(value)}", field=field)
    return value


def check_id(value: str, field: str) -> str:
    """An id as given (at most :data:`MAX_ID_CHARS` characters, no control characters)."""
    return check_text(value, field, max_chars=MAX_ID_CHARS, what="id")


def parse_week(value: str, field: str) -> pd.Timestamp:
    """Monday of the week of an ISO date string.

    A time of day is dropped; so is a UTC offset or zone (``2026-11-23T00:00:00+05:00`` is the
    week of 23 November 2026): the calendar date as written is what counts, never converted."""
    check_text(value, field, max_chars=MAX_DATE_CHARS, what="date")
    try:
        day = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidArgument(f"not an ISO date: {shown(value)}", field=field) from None
    if day is pd.NaT or pd.isna(day) or not 1900 <= day.year <= 2200:
        raise InvalidArgument(f"not a usable date: {shown(value)}", field=field)
    if day.tzinfo is not None:
        day = day.tz_localize(None)
    day = day.normalize()
    return day - pd.Timedelta(days=day.weekday())


def check_initial_inventory(
    given: Sequence[tuple[str, float]], planned: Sequence[str | Mapping[str, Any]]
) -> tuple[tuple[str, float], ...]:
    """Units on hand per planned variant (ids upper-cased like the planner's ``resolve``); a
    variant that is not planned or a negative/non-finite amount is an InvalidArgument."""
    ids = {v if isinstance(v, str) else str(v["variant_id"]) for v in planned}
    out: dict[str, float] = {}
    for vid, units in given:
        check_id(vid, "initial_inventory")
        key = str(vid).strip().upper()
        where = f"initial_inventory[{vid}]"
        if key not in ids:
            raise InvalidArgument(f"variant {shown(vid)} is not planned", field=where)
        out[key] = finite(float(units), where, high=MAX_UNITS)
    return tuple(sorted(out.items()))


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class NewVariant:
    """A configuration not in the store, planned and forecast like a stored one."""

    variant_id: str
    family_id: str
    list_price: float
    attributes: tuple[tuple[str, str], ...] = ()

    def validate(self, where: str) -> NewVariant:
        """Check what needs no store (the family and attribute names are the planner's);
        fields are ``where.*``."""
        if self.variant_id:
            check_id(self.variant_id, f"{where}.variant_id")
        check_id(self.family_id, f"{where}.family_id")
        finite(self.list_price, f"{where}.list_price", strict=True, high=MAX_LIST_PRICE)
        if len(self.attributes) > MAX_ATTRIBUTES:
            raise InvalidArgument(
                f"{len(self.attributes)} attributes; at most {MAX_ATTRIBUTES}",
                field=f"{where}.attributes",
            )
        for name, value in self.attributes:
            check_text(name, f"{where}.attributes", max_chars=MAX_CODE_CHARS, what="name")
            check_text(value, f"{where}.attributes", max_chars=MAX_CODE_CHARS, what="value")
        return self


def check_refs(refs: Sequence[str | NewVariant], where: str) -> None:
    """Stored variant ids and new configurations as given (``where[i]``); whether they exist is
    the planner's check."""
    for i, ref in enumerate(refs):
        if isinstance(ref, str):
            check_id(ref, f"{where}[{i}]")
        else:
            ref.validate(f"{where}[{i}]")


@dataclass(frozen=True)
class PlanRequest:
    """What a plan is asked for; every default is a module constant.

    ``start_week``: the first planned week (a date string or a Timestamp; empty: the week after
    the store's last order, which the planner resolves). ``variant_ids`` empty: every variant
    launched by the first planned week. ``time_limit_s``/``mip_rel_gap`` None: the optimizer's
    defaults. ``week_correlation`` None: measured from the store's served forecasts against
    their actuals (:meth:`services.planning.service.Planner.week_correlation`). The rates are
    explained in :mod:`services.planning.builder`.
    """

    start_week: str | pd.Timestamp = ""
    horizon: int = DEFAULT_HORIZON
    service_level: float = DEFAULT_SERVICE_LEVEL
    variant_ids: tuple[str, ...] = ()
    new_variants: tuple[NewVariant, ...] = ()
    holding_rate: float = DEFAULT_HOLDING_RATE
    backlog_rate: float = DEFAULT_BACKLOG_RATE
    lost_sale_rate: float = DEFAULT_LOST_SALE_RATE
    allow_backlog: bool = True
    name: str = ""
    time_limit_s: float | None = None
    mip_rel_gap: float | None = None
    initial_inventory: tuple[tuple[str, float], ...] = ()  # (variant_id, units on hand)
    demand_mode: str = DEFAULT_DEMAND_MODE
    scenario_count: int = DEFAULT_SCENARIO_COUNT
    scenario_seed: int = 0
    previous_plan_id: str = ""
    frozen_periods: int = 0
    change_penalty: float = 0.0
    solve_method: str = DEFAULT_SOLVE_METHOD
    week_correlation: float | None = None

    def validate(self, *, max_horizon: int = MAX_HORIZON) -> PlanRequest:
        """Check every value that needs no store; returns ``self``."""
        check_horizon(self.horizon, max_weeks=max_horizon)
        check_service_level(self.service_level)
        if self.demand_mode not in DEMAND_MODES:
            raise InvalidArgument(
                f"must be one of {', '.join(DEMAND_MODES)}, got {shown(str(self.demand_mode))}",
                field="demand_mode",
            )
        if not 1 <= self.scenario_count <= MAX_SCENARIO_COUNT:
            raise InvalidArgument(
                f"must be between 1 and {MAX_SCENARIO_COUNT}, got {self.scenario_count}",
                field="scenario_count",
            )
        if not 0 <= self.scenario_seed < 2**63:
            raise InvalidArgument(
                f"must be a non-negative 64-bit integer, got {self.scenario_seed}",
                field="scenario_seed",
            )
        if self.solve_method not in SOLVE_METHODS:
            raise InvalidArgument(
                f"must be one of {', '.join(SOLVE_METHODS)}, got {shown(str(self.solve_method))}",
                field="solve_method",
            )
        if self.previous_plan_id:
            check_id(self.previous_plan_id, "previous_plan_id")
        if not 0 <= self.frozen_periods <= self.horizon:
            raise InvalidArgument(
                f"must be between 0 and the horizon ({self.horizon}), got {self.frozen_periods}",
                field="frozen_periods",
            )
        if self.frozen_periods and not self.previous_plan_id:
            raise InvalidArgument(
                "frozen periods keep the previous plan: give previous_plan_id",
                field="frozen_periods",
            )
        finite(self.change_penalty, "change_penalty", high=MAX_LIST_PRICE)
        rho = self.week_correlation
        if rho is not None and not (math.isfinite(rho) and 0.0 <= rho < 1.0):
            raise InvalidArgument(f"must lie in [0, 1), got {rho:g}", field="week_correlation")
        if rho is not None and self.demand_mode == "quantile":
            raise InvalidArgument(
                "applies to demand_mode expected_profit only: a quantile plan draws no scenarios",
                field="week_correlation",
            )
        for name in _RATES:
            finite(getattr(self, name), name, high=MAX_RATE)
        if self.time_limit_s is not None:
            finite(self.time_limit_s, "time_limit_s", strict=True, high=MAX_TIME_LIMIT_S)
        if self.mip_rel_gap is not None and finite(self.mip_rel_gap, "mip_rel_gap") >= 1:
            raise InvalidArgument("must lie in [0, 1)", field="mip_rel_gap")
        check_text(self.name, "name", max_chars=MAX_NAME_CHARS, what="name")
        self.first_week()
        check_refs(self.variant_ids, "variant_ids")
        check_refs(self.new_variants, "new_variants")
        for vid, units in self.initial_inventory:
            check_id(vid, "initial_inventory")
            finite(float(units), f"initial_inventory[{vid}]", high=MAX_UNITS)
        return self

    def first_week(self) -> pd.Timestamp | None:
        """The first planned week as given (None: not given, the planner's default applies)."""
        if isinstance(self.start_week, pd.Timestamp):
            return self.start_week
        return parse_week(self.start_week, "start_week") if self.start_week else None


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """A what-if of a base plan request (``ReplanBatch``): ``None``/empty changes nothing."""

    id: str = ""
    service_level: float | None = None
    demand_factor: float | None = None
    capacity_factors: tuple[tuple[str, float], ...] = ()  # (line_id, factor on regular hours)

    def validate(self, where: str, lines: Sequence[str] | None = None) -> Scenario:
        """Check the scenario (against the base problem's ``lines`` when given: without them,
        only what needs no problem); fields are ``where.*``."""
        check_id(self.id, f"{where}.id")
        if self.service_level is not None:
            check_service_level(self.service_level, f"{where}.service_level")
        if self.demand_factor is not None:
            finite(self.demand_factor, f"{where}.demand_factor", high=MAX_FACTOR)
        for line_id, factor in sorted(self.capacity_factors):
            check_id(line_id, f"{where}.capacity_factors")
            at = f'{where}.capacity_factors["{line_id}"]'
            if lines is not None and line_id not in lines:
                raise InvalidArgument(f"unknown line {shown(line_id)}", field=at)
            finite(factor, at, high=MAX_FACTOR)
        return self

    def record(self) -> dict[str, Any]:
        """What the stored plan's request keeps of this scenario (the API's JSON field names)."""
        out: dict[str, Any] = {}
        if self.id:
            out["id"] = self.id
        if self.service_level is not None:
            out["serviceLevel"] = self.service_level
        if self.demand_factor is not None:
            out["demandFactor"] = self.demand_factor
        if self.capacity_factors:
            out["capacityFactors"] = dict(self.capacity_factors)
        return out


def check_scenarios(scenarios: Sequence[Scenario]) -> None:
    """At least one scenario, at most :data:`MAX_SCENARIOS`, and no id twice (an unnamed
    scenario is known by its index), so every result can be matched to its scenario."""
    if not scenarios:
        raise InvalidArgument("give at least one scenario", field="scenarios")
    if len(scenarios) > MAX_SCENARIOS:
        raise InvalidArgument(f"at most {MAX_SCENARIOS} scenarios per batch", field="scenarios")
    seen: set[str] = set()
    for i, scenario in enumerate(scenarios):
        sid = scenario.id or str(i)
        if sid in seen:
            raise InvalidArgument(f"id {shown(sid)} is given twice", field=f"scenarios[{i}].id")
        seen.add(sid)


__all__ = [
    "DEFAULT_BACKLOG_RATE",
    "DEFAULT_DEMAND_MODE",
    "DEFAULT_HOLDING_RATE",
    "DEFAULT_HORIZON",
    "DEFAULT_LOST_SALE_RATE",
    "DEFAULT_SCENARIO_COUNT",
    "DEFAULT_SERVICE_LEVEL",
    "DEFAULT_SOLVE_METHOD",
    "DEMAND_MODES",
    "MAX_ATTRIBUTES",
    "MAX_CODE_CHARS",
    "MAX_DATE_CHARS",
    "MAX_FACTOR",
    "MAX_HORIZON",
    "MAX_ID_CHARS",
    "MAX_LIST_PRICE",
    "MAX_NAME_CHARS",
    "MAX_RATE",
    "MAX_SCENARIOS",
    "MAX_SCENARIO_COUNT",
    "MAX_TIME_LIMIT_S",
    "MAX_UNITS",
    "SOLVE_METHODS",
    "NewVariant",
    "PlanRequest",
    "Scenario",
    "check_horizon",
    "check_id",
    "check_initial_inventory",
    "check_refs",
    "check_scenarios",
    "check_service_level",
    "check_text",
    "finite",
    "parse_week",
]
