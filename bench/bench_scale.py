"""Scale benchmark of the planning model on synthetic plans (optimizer.core.synthetic).

    .venv/bin/python bench/bench_scale.py sweep   [--sizes 50x26x2,200x52x3] [--time-limit 300]
    .venv/bin/python bench/bench_scale.py direct  [--items 200 --periods 52]
    .venv/bin/python bench/bench_scale.py heuristic [--size 1000x52x5] [--time-limit 120]

sweep: monolithic HiGHS to a 1% gap: build, translate, solve, total seconds and the share of
Pyomo's build + translation in the total. direct: the same CLSP built by Pyomo (our
build_model) and directly through highspy arrays; both LP relaxations must agree, the table
compares the time to get the model into HiGHS. heuristic: monolithic vs relax-and-fix vs
fix-and-optimize on one big plan, with the same time limit, side by side. The monolithic solve
starts from the dynamic-programming plan (optimizer.core.start) and every bound is the tightest of
HiGHS's and the per-variant bound, so each method reports a gap.
Each table is printed with the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import random
import time


def _size(text: str) -> tuple[int, int, int]:
    v, t, ln = (int(x) for x in text.lower().split("x"))
    return v, t, ln


def sweep(sizes: list[str], time_limit: float, gap: float, seed: int) -> None:
    from optimizer import SolveOptions, solve
    from optimizer.core.synthetic import synthetic_problem

    print(f"\nload average before: {os.getloadavg()}  limit {time_limit:g} s  gap {gap:g}")
    print(
        "| variants x periods x lines | binaries | status | profit | gap | build s | translate s "
        "| solve s | total s | build+translate share |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for text in sizes:
        v, t, ln = _size(text)
        problem = synthetic_problem(v, t, ln, seed=seed)
        t0 = time.perf_counter()
        plan = solve(problem, SolveOptions(time_limit_s=time_limit, mip_rel_gap=gap, explain=False))
        total = time.perf_counter() - t0
        over = plan.build_time_s + plan.translate_time_s
        profit = "-" if plan.objective is None else f"{plan.objective:,.0f}"
        pgap = "-" if plan.gap is None else f"{100 * plan.gap:.3f}%"
        print(
            f"| {v}x{t}x{ln} | {len(problem.routes) * t} | {plan.status} | {profit} | {pgap} "
            f"| {plan.build_time_s:.1f} | {plan.translate_time_s:.1f} | {plan.solve_time_s:.1f} "
            f"| {total:.1f} | {100 * over / total:.1f}% |",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()}")


def random_clsp(items: int, periods: int, seed: int) -> str:
    """A Trigeiro-format text: demand 60-140, capacity at ~85% of demand + setups."""
    rng = random.Random(seed)
    rows = [[rng.choice((0, rng.randint(60, 140))) for _ in range(items)] for _ in range(periods)]
    st = [rng.randint(10, 50) for _ in range(items)]
    cap = int(sum(map(sum, rows)) / periods / 0.85 + 0.5 * sum(st))
    lines = [f"{items} {periods}", "1", str(cap)]
    lines += [
        f"1 {rng.randint(1, 4)} {st[i]} {rng.choice((200, 400, 600, 800, 1000))}"
        for i in range(items)
    ]
    for start in range(0, items, 15):
        lines += [" ".join(str(r[k]) for k in range(start, min(items, start + 15))) for r in rows]
    return "\n".join(lines) + "\n"


def direct(items: int, periods: int, seed: int) -> None:
    """Pyomo (prepare + build_model + translation) vs numpy arrays passed to highspy."""
    import highspy
    import numpy as np
    import pyomo.environ as pyo

    from optimizer.core.data import prepare
    from optimizer.core.model import build_model
    from optimizer.core.solver import Session
    from optimizer.core.trigeiro import parse, to_problem

    inst = parse(random_clsp(items, periods, seed), name=f"random-{items}x{periods}")
    print(f"\nload average before: {os.getloadavg()}  CLSP {items} items x {periods} periods")
    # --- Pyomo
    t0 = time.perf_counter()
    d = prepare(to_problem(inst).validate())
    m = build_model(d, strengthen="none")
    build = time.perf_counter() - t0
    for v in m.y.values():
        if not v.fixed:
            v.domain = pyo.UnitInterval
    session = Session(m)
    translate = session.translate()
    lp = session.run(300, 0.0)
    pyomo_lp = lp.objective
    # --- highspy: min sum sc y + h s;  s[t-1] + x - s = d;  sum b x + st y <= C;  x <= M y
    t1 = time.perf_counter()
    n, T = inst.items, inst.periods
    nx = n * T
    col_x, col_y, col_s = 0, nx, 2 * nx
    cost = np.zeros(3 * nx)
    lo = np.zeros(3 * nx)
    hi = np.full(3 * nx, highspy.kHighsInf)
    rows_lo, rows_hi, starts, idx, val = [], [], [], [], []

    def row(entries: list[tuple[int, float]], lo_: float, hi_: float) -> None:
        starts.append(len(idx))
        for j, a in entries:
            idx.append(j)
            val.append(a)
        rows_lo.append(lo_)
        rows_hi.append(hi_)

    for i in range(n):
        rem = 0.0
        remaining = [0.0] * T
        for t in reversed(range(T)):
            rem += inst.demand[i][t]
            remaining[t] = rem
        for t in range(T):
            k = i * T + t
            cost[col_y + k] = inst.sc[i]
            cost[col_s + k] = inst.h[i]
            hi[col_y + k] = 1.0
            big_m = max(0.0, min(remaining[t], (inst.capacity - inst.st[i]) / inst.b[i]))
            ent = [(col_x + k, 1.0), (col_s + k, -1.0)]
            if t > 0:
                ent.append((col_s + k - 1, 1.0))
            row(ent, inst.demand[i][t], inst.demand[i][t])
            row([(col_x + k, 1.0), (col_y + k, -big_m)], -highspy.kHighsInf, 0.0)
    for t in range(T):
        ent = [(col_x + i * T + t, inst.b[i]) for i in range(n)]
        ent += [(col_y + i * T + t, inst.st[i]) for i in range(n)]
        row(ent, -highspy.kHighsInf, inst.capacity)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    lp_model = highspy.HighsLp()
    lp_model.num_col_ = 3 * nx
    lp_model.num_row_ = len(rows_lo)
    lp_model.col_cost_ = cost
    lp_model.col_lower_ = lo
    lp_model.col_upper_ = hi
    lp_model.row_lower_ = np.array(rows_lo)
    lp_model.row_upper_ = np.array(rows_hi)
    lp_model.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp_model.a_matrix_.start_ = np.array([*starts, len(idx)], dtype=np.int32)
    lp_model.a_matrix_.index_ = np.array(idx, dtype=np.int32)
    lp_model.a_matrix_.value_ = np.array(val)
    h.passModel(lp_model)
    direct_build = time.perf_counter() - t1
    h.run()
    direct_lp = h.getInfo().objective_function_value
    same = pyomo_lp is not None and abs(pyomo_lp - direct_lp) <= 1e-6 * max(1.0, abs(direct_lp))
    print("| build route | binaries | build s | translate s | into HiGHS s | LP relaxation |")
    print("|---|---|---|---|---|---|")
    print(
        f"| Pyomo build_model + persistent HiGHS | {nx} | {build:.2f} | {translate:.2f} "
        f"| {build + translate:.2f} | {pyomo_lp:,.2f} |"
    )
    print(
        f"| numpy arrays -> highspy.passModel | {nx} | {direct_build:.2f} | - "
        f"| {direct_build:.2f} | {direct_lp:,.2f} |"
    )
    print(
        f"same LP optimum: {same}; Pyomo/direct time ratio "
        f"{(build + translate) / max(direct_build, 1e-9):.0f}x; "
        f"load average after: {os.getloadavg()}"
    )


def heuristic(size: str, time_limit: float, seed: int, methods: list[str]) -> None:
    from optimizer import SolveOptions, solve
    from optimizer.core.synthetic import synthetic_problem

    v, t, ln = _size(size)
    problem = synthetic_problem(v, t, ln, seed=seed)
    print(
        f"\nload average before: {os.getloadavg()}  plan {size} ({len(problem.routes) * t} "
        f"binaries), time limit {time_limit:g} s per method"
    )
    print(
        "| method | status | profit | bound | gap | build s | translate s | solve s | total s "
        "| build+translate share |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    notes: list[str] = []
    for method in methods:
        t0 = time.perf_counter()
        plan = solve(
            problem,
            SolveOptions(time_limit_s=time_limit, mip_rel_gap=0.01, method=method, explain=False),
        )
        total = time.perf_counter() - t0
        profit = "-" if plan.objective is None else f"{plan.objective:,.0f}"
        bound = "-" if plan.best_bound is None else f"{plan.best_bound:,.0f}"
        pgap = "-" if plan.gap is None else f"{100 * plan.gap:.3f}%"
        print(
            f"| {method} | {plan.status} | {profit} | {bound} | {pgap} | {plan.build_time_s:.1f} "
            f"| {plan.translate_time_s:.1f} | {plan.solve_time_s:.1f} | {total:.1f} "
            f"| {100 * (plan.build_time_s + plan.translate_time_s) / total:.1f}% |",
            flush=True,
        )
        notes.append(f"{method}: {plan.message}")
    print(f"load average after: {os.getloadavg()}")
    for note in notes:  # how each start was made (Lagrangian iterations, pattern LPs, seconds)
        print(note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("what", choices=("sweep", "direct", "heuristic"))
    ap.add_argument("--sizes", default="20x12x2,50x26x2,100x52x3,200x52x3")
    ap.add_argument("--size", default="1000x52x5")
    ap.add_argument("--methods", default="monolithic,relax_and_fix,fix_and_optimize")
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--periods", type=int, default=52)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.what == "sweep":
        sweep(args.sizes.split(","), args.time_limit or 300.0, args.gap, args.seed)
    elif args.what == "direct":
        direct(args.items, args.periods, args.seed)
    else:
        heuristic(args.size, args.time_limit or 120.0, args.seed, args.methods.split(","))


if __name__ == "__main__":
    main()
