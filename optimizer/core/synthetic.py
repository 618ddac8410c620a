"""A seeded random PlanningProblem for tests and benchmarks (no dependency on services/datagen).

``synthetic_problem(variants, periods, lines, seed=...)`` makes a made-to-order shop: demand at
P10/P50/P90 with a seasonal swing, each variant eligible on one or two lines, capacity sized so
the lines run at about ``load`` of the median demand's hours (setups included), materials through
a BOM, a few firm custom orders, some minimum lots. The same arguments give the same problem.

``families=k`` (k > 0) groups the variants into k product families with batch-customisation
setups: each family runs on one or two lines (its variants are eligible exactly there), changing a
line over to a family takes 3-8 hours and costs 400-1,500 (``FamilySetup``), and a variant's own
setup within its family is small (0.1-0.5 hours, 10-40). Demand, prices and unit costs are those of
``families=0`` with the same seed (the family draws use their own random stream).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from optimizer.core.problem import (
    FamilySetup,
    FirmOrder,
    Line,
    Material,
    MaterialUse,
    PlanningProblem,
    Route,
    Variant,
)

#: The levels of the synthetic forecasts (the optimizer takes any levels a problem states; this
#: generator is its own test data and depends on nothing in services/).
SYNTHETIC_LEVELS = (0.1, 0.5, 0.9)


def synthetic_problem(
    variants: int,
    periods: int,
    lines: int,
    *,
    seed: int = 0,
    load: float = 0.9,
    materials: int | None = None,
    orders: int | None = None,
    allow_backlog: bool = True,
    families: int = 0,
) -> PlanningProblem:
    rng = random.Random(seed)
    T = range(periods)
    line_ids = [f"L{k + 1}" for k in range(lines)]
    frng = random.Random(f"families-{seed}")  # family draws: the base stream stays as it was
    family_ids = [f"F{k + 1}" for k in range(families)]
    family_lines = {g: frng.sample(line_ids, k=min(lines, frng.choice((1, 2)))) for g in family_ids}
    changeovers = [
        FamilySetup(
            line=ln,
            family=g,
            hours=round(frng.uniform(3.0, 8.0), 1),
            cost=round(frng.uniform(400, 1500), 0),
        )
        for g in family_ids
        for ln in sorted(family_lines[g])
    ]
    mat_ids = [
        f"M{k + 1}" for k in range(max(1, variants // 25) if materials is None else materials)
    ]
    var_list: list[Variant] = []
    route_list: list[Route] = []
    hours_needed = dict.fromkeys(line_ids, 0.0)
    mat_need = dict.fromkeys(mat_ids, 0.0)
    phase = rng.uniform(0, 2 * math.pi)
    for k in range(variants):
        vid = f"V{k + 1:04d}"
        base = rng.lognormvariate(math.log(40), 0.6)
        price = round(rng.uniform(30, 120), 2)
        spread = rng.uniform(0.2, 0.5)
        demand = []
        for t in T:
            season = 1 + 0.25 * math.sin(2 * math.pi * t / 52 + phase)
            p50 = base * season * rng.uniform(0.8, 1.2)
            demand.append(
                (round(p50 * (1 - spread), 1), round(p50, 1), round(p50 * (1 + spread), 1))
            )
        bom = tuple(
            MaterialUse(mt, round(rng.uniform(0.5, 3.0), 2))
            for mt in rng.sample(mat_ids, k=min(len(mat_ids), rng.randint(1, 2)))
        )
        var_list.append(
            Variant(
                id=vid,
                price=tuple(price for _ in T),
                demand=tuple(demand),
                service_level=rng.choice((0.5, 0.6, 0.75, 0.9)),
                holding_cost=round(0.01 * price, 3),
                backlog_cost=round(0.05 * price, 3),
                lost_sale_cost=round(0.1 * price, 3),
                initial_inventory=round(rng.uniform(0, 1) * demand[0][1], 1),
                bom=bom,
            )
        )
        eligible = rng.sample(line_ids, k=min(lines, rng.choice((1, 2, 2))))
        family = ""
        if family_ids:
            family = frng.choice(family_ids)
            eligible = family_lines[family]
            var_list[-1] = replace(var_list[-1], family=family)
        for ln in eligible:
            hpu = round(rng.uniform(0.05, 0.25), 3)
            unit_cost = round(price * rng.uniform(0.35, 0.55), 2)  # the draws' order is kept
            setup_hours = round(rng.uniform(1.0, 4.0), 2)
            setup_cost = round(rng.uniform(60, 400), 1)
            if family:  # the minor setup within the family
                setup_hours = round(frng.uniform(0.1, 0.5), 2)
                setup_cost = round(frng.uniform(10, 40), 1)
            route_list.append(
                Route(
                    variant=vid,
                    line=ln,
                    unit_cost=unit_cost,
                    hours_per_unit=hpu,
                    setup_hours=setup_hours,
                    setup_cost=setup_cost,
                    min_lot=round(base * 0.5, 0) if rng.random() < 0.2 else 0.0,
                )
            )
            share = 1.0 / len(eligible)
            p50_total = sum(d[1] for d in demand)
            hours_needed[ln] += share * (hpu * p50_total + (0.3 if family else 2.5) * periods * 0.6)
        for use in bom:
            mat_need[use.material] += use.quantity * sum(d[1] for d in demand)
    for fs in changeovers:  # about every other week per family and line
        hours_needed[fs.line] += fs.hours * periods * 0.5
    line_list = [
        Line(
            id=ln,
            capacity_hours=tuple(
                round(max(8.0, hours_needed[ln] / periods / load) * rng.uniform(0.9, 1.1), 1)
                for _ in T
            ),
            overtime_max_hours=round(0.1 * max(8.0, hours_needed[ln] / periods / load), 1),
            overtime_cost=round(rng.uniform(40, 90), 1),
        )
        for ln in line_ids
    ]
    mat_list = []
    for mt in mat_ids:
        per_period = mat_need[mt] / periods
        supply = rng.uniform(0.85, 1.2)  # some materials are tight
        mat_list.append(
            Material(
                id=mt,
                unit_cost=round(rng.uniform(1, 6), 2),
                stock=round(per_period * 2, 1),
                arrivals=tuple(round(per_period * supply, 1) for _ in T),
            )
        )
    n_orders = max(1, variants * periods // 40) if orders is None else orders
    order_list = []
    for k in range(n_orders):
        v = rng.choice(var_list)
        due = rng.randrange(min(2, periods - 1), periods) if periods > 1 else 0
        order_list.append(
            FirmOrder(
                id=f"O{k + 1:05d}",
                variant=v.id,
                quantity=float(rng.randint(5, 40)),
                due_period=due,
                price=round(v.price[due] * 1.15, 2),
            )
        )
    return PlanningProblem(
        periods=tuple(f"W{t + 1:02d}" for t in T),
        variants=tuple(var_list),
        lines=tuple(line_list),
        routes=tuple(route_list),
        quantiles=SYNTHETIC_LEVELS,
        materials=tuple(mat_list),
        orders=tuple(order_list),
        allow_backlog=allow_backlog,
        name=f"synthetic-{variants}x{periods}x{lines}-s{seed}"
        + (f"-f{families}" if families else ""),
        family_setups=tuple(changeovers),
    )
