"""Turn the store's data and the models' predictions into the optimizer's ``PlanningProblem``.

This is the gateway's "build the planning problem" step as a plain function: pandas frames in
(the tables of docs/data-format.md as returned by ``services.store.frames.load_frames``, the demand
quantiles and the cost predictions), frozen dataclasses out. Nothing here talks to a server.

What enters the problem, per planned week ``start_week + t`` (t = 0..horizon-1):
- variants: the requested ids (default: every variant launched by the first planned week) with
  their list price, the demand quantiles of the forecast (every ``pNN`` column it has), the
  demand mode (expected profit over scenarios drawn from those quantiles, or one quantile, the
  service level, as if certain) and the scenario count and seed;
  holding cost = ``holding_rate`` x the variant's cheapest unit cost per week; lost-sale penalty =
  ``lost_sale_rate`` x price (goodwill, on top of the lost revenue); backlog cost of firm orders =
  ``backlog_rate`` x price per week late;
- lines: regular hours per week, overtime limit and cost, setup hours and cost;
- routes: every (variant, line) where the line is eligible for the variant's family, with the
  predicted unit cost and processing hours per unit, and the cost model's learned fixed cost per
  run (``run_cost``) and variant setup hours (``setup_hours``) as the route's setup cost and
  hours where the served version has them (docs/model-interface.md); a figure that is missing,
  not a number or not above 0 (``setup_hours`` is 0 when no record carries it) leaves the line's
  standard;
- family changeovers: per (family, line), the cost model's ``family_setup_hours`` and
  ``family_setup_cost`` where it has them and they are above 0, else the ``family_setups``
  table's standard (no table and nothing learned: every setup is the variant's own);
- materials: stock on hand, arrivals dated inside the horizon (by week), unit cost; the bill of
  materials of each variant is the sum of the BOM rows whose ``condition`` it meets;
- firm orders: custom orders placed before the first planned week and due inside the horizon;
- initial inventory: finished units on hand at the start, per variant (default none).

Firm orders are netted out of the forecast (``net_firm_orders``, on by default). The demand
model's target is every unit ordered in a week, stock and custom orders together, counted in the
week they are placed (services/features/demand.py, docs/models.md), so its forecast of week t
carries the custom units of week t; the firm orders due in t enter the problem too, and on top of
the whole forecast they over-state the demand of the first weeks by about the custom share (10-20%
of the units in the synthetic data). In a steady state as many custom units are placed in a week
as fall due in it, so of the forecast's custom units of week t, the firm orders due in t stand for
the ones already booked (the rest, due in t but not placed yet, stay in the forecast). They are
taken out pooled per family: the firm units of family g due in t, ``F[g, t]``, are shared among
the planned variants of g in proportion to each one's forecast of t (the mean of its quantile
values, ``w``), and each variant's share is subtracted from every quantile value of t, floored at
0 (:func:`net_of_firm_orders`):

    demand[v, t, q] = max(0, forecast[v, t, q] - F[g, t] * w[v, t] / sum of w[u, t] over g's u)

a constant per (v, t), so the quantiles stay non-decreasing. Pooling matters: a custom order is
2 + Poisson(4) units (6 on average) against a forecast of ~3 units a week per variant of which
~0.4 are custom; netting each order from its own variant's forecast alone would wipe that
variant's whole stock demand out of the week (``small`` seed 3, the true mean as the forecast,
planned from every week of the history: -3.7 units in the cells with a firm order, and a larger
mean absolute error than not netting at all), while pooled per family it takes the over-statement
of the first week from +0.37 units per variant to -0.02 and lowers the error. The firm orders
enter the problem unchanged. A forecast that is already of the demand beyond the firm orders (the
simulator's oracle and naive policies plan for the stock orders' units) is built with
``net_firm_orders=False``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from optimizer import (
    WEEK_CORRELATION,
    FirmOrder,
    Line,
    Material,
    MaterialUse,
    PlanningProblem,
    PreviousPlanLine,
    Route,
    Variant,
)
from services.common.errors import InvalidArgument
from services.common.quantiles import QUANTILE_COLUMNS, QUANTILES
from services.planning.request import PlanRequest

WEEK = pd.Timedelta(days=7)


def _monday(values: pd.Series) -> pd.Series:
    dates = pd.to_datetime(values).dt.normalize()
    return dates - pd.to_timedelta(dates.dt.weekday, unit="D")


def _matches(condition: str, attrs: Mapping[str, str]) -> bool:
    if not condition:
        return True
    for part in condition.split(";"):
        key, _, value = part.partition("=")
        if attrs.get(key.strip()) != value.strip():
            return False
    return True


BomRows = dict[str, list[tuple[str, float, str]]]


def bom_by_family(bom: pd.DataFrame) -> BomRows:
    """The BOM as plain tuples ``(material, quantity, condition)`` per family, read once per plan
    (a pandas filter per variant cost ~10 ms each: seconds for a 500-variant plan)."""
    out: BomRows = {}
    for family, material, quantity, condition in bom[
        ["family_id", "material_id", "quantity_per_unit", "condition"]
    ].itertuples(index=False):
        cond = "" if condition is None or (isinstance(condition, float)) else str(condition)
        out.setdefault(str(family), []).append((str(material), float(quantity), cond))
    return out


def variant_bom(variant: Mapping[str, Any], bom: pd.DataFrame | BomRows) -> dict[str, float]:
    """Material usage per unit of one variant: the sum of the family's BOM rows it matches."""
    attrs = {k[5:]: str(v) for k, v in variant.items() if str(k).startswith("attr_")}
    rows = bom_by_family(bom) if isinstance(bom, pd.DataFrame) else bom
    usage: dict[str, float] = {}
    for material, quantity, cond in rows.get(str(variant["family_id"]), ()):
        if _matches(cond, attrs):
            usage[material] = usage.get(material, 0.0) + quantity
    return usage


def default_variants(frames: Mapping[str, pd.DataFrame], start_week: pd.Timestamp) -> list[str]:
    """Every variant launched by the first planned week."""
    variants = frames["variants"]
    launched = pd.to_datetime(variants["launch_date"]) <= start_week + WEEK - pd.Timedelta(days=1)
    return sorted(variants.loc[launched, "variant_id"].astype(str))


def _learned(value: Any) -> float | None:
    """A learned figure the planner takes: a number above 0, else None (the standard stays)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


def learned_setups(costs: pd.DataFrame) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """(variant, line) -> (setup hours, setup cost) the cost model learned (``setup_hours``,
    ``run_cost``), each None where it has none; empty for a cost table without them."""
    if "run_cost" not in costs.columns and "setup_hours" not in costs.columns:
        return {}
    hours = costs["setup_hours"] if "setup_hours" in costs.columns else [None] * len(costs)
    cost = costs["run_cost"] if "run_cost" in costs.columns else [None] * len(costs)
    return {
        (str(v), str(ln)): (_learned(h), _learned(c))
        for v, ln, h, c in zip(costs["variant_id"], costs["line_id"], hours, cost, strict=True)
    }


def learned_changeovers(costs: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    """(family, line) -> (hours, cost) of the changeover the cost model learned, where both are
    above 0 (the same on every row of the pair); empty for a cost table without them."""
    need = {"family_id", "family_setup_hours", "family_setup_cost"}
    if not need <= set(costs.columns):
        return {}
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for g, ln, h, c in costs[
        ["family_id", "line_id", "family_setup_hours", "family_setup_cost"]
    ].itertuples(index=False):
        hours, cost = _learned(h), _learned(c)
        if hours is not None and cost is not None:
            out.setdefault((str(g), str(ln)), (hours, cost))
    return out


def build_problem(
    frames: Mapping[str, pd.DataFrame],
    forecast: pd.DataFrame,
    costs: pd.DataFrame,
    request: PlanRequest,
    *,
    new_variants: Sequence[Mapping[str, Any]] = (),
    previous: Sequence[PreviousPlanLine] = (),
    net_firm_orders: bool = True,
) -> PlanningProblem:
    """Assemble the problem. ``forecast``: variant_id, target_week, and the quantile columns
    (``p10``, ``p50``, ``p90``, ...: :func:`forecast_levels`; one row per
    variant and planned week); ``costs``: variant_id, line_id, unit_cost, hours_per_unit.
    ``new_variants``: configurations not in the store (dicts with variant_id, family_id,
    list_price, attr_*), planned like stored ones. ``previous``: the plan in force, in this
    plan's periods (:func:`previous_lines`), for ``frozen_periods`` and ``change_penalty``.
    ``costs`` may also carry the cost model's learned setup figures (``run_cost``,
    ``setup_hours``, ``family_id``, ``family_setup_hours``, ``family_setup_cost``: the module
    doc).
    ``net_firm_orders``: the forecast is of every unit ordered, custom orders included (the
    demand model's), so the firm orders are netted out of it (the module doc); False: it is of
    the demand beyond the firm orders already and enters as it is."""
    request.validate()
    start = request.first_week()
    if start is None:
        raise InvalidArgument("give the first planned week", field="start_week")
    weeks = [start + k * WEEK for k in range(request.horizon)]
    week_pos = {w: k for k, w in enumerate(weeks)}

    stored = frames["variants"].set_index("variant_id", drop=False)
    catalog = pd.concat([stored, pd.DataFrame(list(new_variants))], ignore_index=True)
    catalog = catalog.drop_duplicates("variant_id", keep="last").set_index("variant_id", drop=False)
    ids = list(request.variant_ids or default_variants(frames, start))
    ids += [str(v["variant_id"]) for v in new_variants if str(v["variant_id"]) not in ids]
    unknown = [v for v in ids if v not in catalog.index]
    if unknown:
        raise InvalidArgument(f"unknown variant {unknown[0]!r}", field="variant_ids")
    on_hand = dict(request.initial_inventory)
    unplanned = sorted(set(on_hand) - set(ids))
    if unplanned:
        raise InvalidArgument(
            f"stock given for {unplanned[0]!r}, which is not planned", field="initial_inventory"
        )

    # Plain dicts for the per-variant loop: pandas .loc per (variant, week) and per (variant,
    # line) cost seconds on a 500-variant plan; a dict lookup costs nothing.
    fc = forecast.assign(target_week=_monday(forecast["target_week"]))
    fc = fc[fc["target_week"].isin(weeks)]
    levels, columns = forecast_levels(fc)
    quantiles = {
        (str(v), pd.Timestamp(w)): tuple(float(x) for x in row)
        for v, w, *row in fc[["variant_id", "target_week", *columns]].itertuples(index=False)
    }
    lines_of: dict[str, list[str]] = {}
    for family, line in frames["line_eligibility"][["family_id", "line_id"]].itertuples(
        index=False
    ):
        lines_of.setdefault(str(family), []).append(str(line))
    cost_by = {
        (str(v), str(line)): (float(c), float(h))
        for v, line, c, h in costs[
            ["variant_id", "line_id", "unit_cost", "hours_per_unit"]
        ].itertuples(index=False)
    }
    setup_by = learned_setups(costs)
    boms = bom_by_family(frames["bom"])
    records = catalog.to_dict("index")

    lines_df = frames["lines"]
    lines = tuple(
        Line(
            id=str(r.line_id),
            capacity_hours=(float(r.capacity_hours),) * request.horizon,
            overtime_max_hours=float(r.overtime_hours_max),
            overtime_cost=float(r.overtime_cost_per_hour),
            setup_hours=float(r.setup_hours),
            setup_cost=float(r.setup_cost),
        )
        for r in lines_df.itertuples(index=False)
    )

    materials_df = frames["materials"]
    arrivals = frames.get("material_arrivals")
    per_week: dict[str, list[float]] = {
        str(m): [0.0] * request.horizon for m in materials_df["material_id"]
    }
    if arrivals is not None and len(arrivals):
        arr = arrivals.assign(week=_monday(arrivals["date"]))
        arr = arr[arr["week"].isin(weeks)]
        for (material, week), qty in arr.groupby(["material_id", "week"])["quantity"].sum().items():
            if material in per_week:
                per_week[material][week_pos[week]] += float(qty)
    materials = tuple(
        Material(
            id=str(r.material_id),
            unit_cost=float(r.unit_cost),
            stock=float(r.stock),
            arrivals=tuple(per_week[str(r.material_id)]),
        )
        for r in materials_df.itertuples(index=False)
    )

    orders = frames["orders"]
    custom = orders[(orders["kind"].astype(str) == "custom") & orders["variant_id"].isin(ids)]
    custom = custom.assign(
        due_week=_monday(custom["due_date"]), order_week=_monday(custom["order_date"])
    )
    open_orders = custom[(custom["order_week"] < start) & custom["due_week"].isin(weeks)]
    firm = tuple(
        FirmOrder(
            id=str(r.order_id),
            variant=str(r.variant_id),
            quantity=float(r.quantity),
            due_period=week_pos[r.due_week],
            price=float(r.unit_price),
        )
        for r in open_orders.itertuples(index=False)
    )

    demand_of: dict[str, list[tuple[float, ...]]] = {}
    for vid in ids:
        demand = []
        for w in weeks:
            q = quantiles.get((vid, w))
            if q is None:
                raise InvalidArgument(
                    f"no forecast for variant {vid!r} in week {w.date()}", field="forecast"
                )
            levels_row, top = [], 0.0
            for x in q:  # never negative, never decreasing
                top = max(top, x)
                levels_row.append(top)
            demand.append(tuple(levels_row))
        demand_of[vid] = demand
    if net_firm_orders:
        family_of = {vid: str(records[vid]["family_id"]) for vid in ids}
        demand_of = net_of_firm_orders(demand_of, family_of, firm)

    variants: list[Variant] = []
    routes: list[Route] = []
    for vid in ids:
        row = records[vid]
        price = float(row["list_price"])
        demand = demand_of[vid]
        unit_costs = []
        for line in lines_of.get(str(row["family_id"]), []):
            c = cost_by.get((vid, line))
            if c is None:
                raise InvalidArgument(
                    f"no cost estimate for variant {vid!r} on line {line!r}", field="costs"
                )
            unit_costs.append(c[0])
            setup_hours, setup_cost = setup_by.get((vid, line), (None, None))
            routes.append(
                Route(
                    variant=vid,
                    line=line,
                    unit_cost=max(0.0, c[0]),
                    hours_per_unit=max(1e-6, c[1]),
                    setup_hours=setup_hours,
                    setup_cost=setup_cost,
                )
            )
        if not unit_costs:
            raise InvalidArgument(
                f"no line is eligible for family {row['family_id']!r}", field="line_eligibility"
            )
        bom = variant_bom(row, boms)
        variants.append(
            Variant(
                id=vid,
                price=(price,) * request.horizon,
                demand=tuple(demand),
                service_level=request.service_level,
                holding_cost=request.holding_rate * min(unit_costs),
                backlog_cost=request.backlog_rate * price,
                lost_sale_cost=request.lost_sale_rate * price,
                initial_inventory=float(on_hand.get(vid, 0.0)),
                bom=tuple(MaterialUse(material=m, quantity=q) for m, q in sorted(bom.items())),
            )
        )

    # ---- family changeovers (issue 16) -------------------------------------------------------
    # The optional family_setups table: the major changeover of a line to a family in a week
    # (line_id, family_id, setup_hours, setup_cost); lines.setup_hours/setup_cost stay the minor
    # setup of a variant within its family. No table: every setup is the variant's own.
    from dataclasses import replace as _with

    from optimizer import FamilySetup

    variants = [_with(v, family=str(records[v.id]["family_id"])) for v in variants]
    # the table's standards, then what the cost model learned from the changeover records
    changeover_of: dict[tuple[str, str], tuple[float, float]] = {}
    changeovers = frames.get("family_setups")
    if changeovers is not None and len(changeovers):
        for ln, g, h, c in changeovers[
            ["line_id", "family_id", "setup_hours", "setup_cost"]
        ].itertuples(index=False):
            changeover_of[str(g), str(ln)] = (float(h), float(c))
    changeover_of.update(learned_changeovers(costs))
    planned = {v.family for v in variants}
    line_ids = {ln.id for ln in lines}
    family_setups = tuple(
        FamilySetup(line=ln, family=g, hours=h, cost=c)
        for (g, ln), (h, c) in sorted(changeover_of.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        if g in planned and ln in line_ids
    )
    # ---- end of family changeovers -----------------------------------------------------------

    return PlanningProblem(
        periods=tuple(str(w.date()) for w in weeks),
        variants=tuple(variants),
        lines=lines,
        routes=tuple(routes),
        quantiles=levels,
        materials=materials,
        orders=firm,
        allow_backlog=request.allow_backlog,
        frozen_periods=request.frozen_periods,
        previous_plan=tuple(previous),
        change_penalty=request.change_penalty,
        name=request.name,
        family_setups=family_setups,  # issue 16: see "family changeovers" above
        demand_mode="expected_profit" if request.demand_mode == "expected_profit" else "quantile",
        scenario_count=request.scenario_count,
        scenario_seed=request.scenario_seed,
        week_correlation=(
            WEEK_CORRELATION if request.week_correlation is None else request.week_correlation
        ),
    ).validate()


def net_of_firm_orders(
    demand: Mapping[str, Sequence[Sequence[float]]],
    family: Mapping[str, str],
    firm: Sequence[FirmOrder],
) -> dict[str, list[tuple[float, ...]]]:
    """``demand`` (per variant, per period, the quantile values of a forecast of every unit
    ordered) less the ``firm`` orders, pooled per ``family`` of the variants (the module doc):
    the firm units of a family due in a period are shared among its variants in ``demand`` in
    proportion to the mean of their quantile values in that period, and each share is
    subtracted from every quantile value of the variant and period, floored at 0 (a family
    forecast at 0 in a period has nothing to net)."""
    due: dict[tuple[str, int], float] = {}
    for order in firm:
        key = (family[order.variant], order.due_period)
        due[key] = due.get(key, 0.0) + order.quantity
    weight = {vid: [sum(q) / len(q) if q else 0.0 for q in rows] for vid, rows in demand.items()}
    pooled: dict[tuple[str, int], float] = {}
    for vid, means in weight.items():
        for t, w in enumerate(means):
            key = (family[vid], t)
            pooled[key] = pooled.get(key, 0.0) + w
    out: dict[str, list[tuple[float, ...]]] = {}
    for vid, rows in demand.items():
        netted = []
        for t, q in enumerate(rows):
            units, total = due.get((family[vid], t), 0.0), pooled.get((family[vid], t), 0.0)
            share = units * weight[vid][t] / total if units > 0 and total > 0 else 0.0
            netted.append(tuple(max(0.0, float(x) - share) for x in q))
        out[vid] = netted
    return out


def forecast_levels(forecast: pd.DataFrame) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """The quantile levels a forecast table carries (its ``pNN`` columns of
    :data:`~services.common.quantiles.QUANTILE_COLUMNS`), ascending, and their columns."""
    pairs = [(q, c) for q, c in zip(QUANTILES, QUANTILE_COLUMNS, strict=True) if c in forecast]
    if not pairs:
        raise InvalidArgument(
            f"the forecast has none of the quantile columns {', '.join(QUANTILE_COLUMNS)}",
            field="forecast",
        )
    return tuple(q for q, _ in pairs), tuple(c for _, c in pairs)


def previous_lines(
    periods: Sequence[str], lines: Sequence[tuple[str, str, int, float]], weeks: Sequence[Any]
) -> list[PreviousPlanLine]:
    """The previous plan's quantities ``(variant, line, its period index, quantity)`` in the new
    plan's periods: a week is matched by its date, weeks the new plan does not cover are
    dropped."""
    position = {pd.Timestamp(w).normalize(): k for k, w in enumerate(weeks)}
    out = []
    for variant, line, period, quantity in lines:
        if not 0 <= period < len(periods):
            continue
        k = position.get(pd.Timestamp(periods[period]).normalize())
        if k is not None:
            out.append(PreviousPlanLine(variant=variant, line=line, period=k, quantity=quantity))
    return out
