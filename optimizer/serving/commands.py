"""CLI adapter of the optimizer: ``tailorline solve-clsp FILE.DAT [--time-limit S] [--json]``.

The optimizer imports nothing from ``services``: the global options are read duck-typed from the
root context's ``obj`` (:func:`json_wanted`), and bad input raises the optimizer's own errors,
which carry their status code (the ``tailorline`` root prints them as one line). Pyomo is
imported inside the command, so ``tailorline --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from optimizer.core.errors import ProblemInvalid


def json_wanted(ctx: typer.Context) -> bool:
    """Whether the global ``--json`` was given (the root's state has a ``json`` flag; a command
    run on its own root has none)."""
    return bool(getattr(ctx.find_root().obj, "json", False))


def echo_json(payload: Any) -> None:
    """``payload`` as the ``tailorline`` command prints JSON (indented, sorted keys)."""
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def register(app: typer.Typer) -> None:
    app.command("solve-clsp")(solve_clsp)


def solve_clsp(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A Trigeiro-format lot-sizing file (e.g. G53.DAT)."),
    time_limit: float = typer.Option(60.0, "--time-limit", help="Solver time limit, seconds."),
    gap: float = typer.Option(0.0, "--gap", help="Relative MIP gap to stop at."),
    threads: int | None = typer.Option(None, "--threads", help="HiGHS threads (default: all)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Solve a capacitated lot-sizing instance in CLSP mode (one line, cost minimisation)."""
    from optimizer import SolveOptions, solve
    from optimizer.core.trigeiro import read, to_problem

    if time_limit <= 0:
        raise ProblemInvalid("--time-limit", "must be > 0")
    try:
        inst = read(file)
        plan = solve(
            to_problem(inst),
            SolveOptions(time_limit_s=time_limit, mip_rel_gap=gap, threads=threads),
        )
    except ProblemInvalid as exc:  # name the file; Infeasible passes as it is
        raise ProblemInvalid(f"{file.name}:{exc.field}", exc.reason) from exc
    payload = {
        "instance": inst.name,
        "items": inst.items,
        "periods": inst.periods,
        "status": plan.status,
        "objective": None if plan.objective is None else round(plan.objective, 6),
        "best_bound": plan.best_bound,
        "gap": plan.gap,
        "setups": plan.kpis.setups,
        "costs": {"setup": plan.costs.setup, "holding": plan.costs.holding},
        "build_time_s": round(plan.build_time_s, 3),
        "translate_time_s": round(plan.translate_time_s, 3),
        "solve_time_s": round(plan.solve_time_s, 3),
        "total_time_s": round(plan.total_time_s, 3),
        "plan": [
            {"item": pl.variant, "period": pl.period + 1, "quantity": pl.quantity}
            for pl in plan.lines
            if pl.quantity > 0
        ],
    }
    if json_wanted(ctx) or json_out:
        echo_json(payload)
        return
    obj = "-" if plan.objective is None else f"{plan.objective:.2f}"
    gap_txt = "-" if plan.gap is None else f"{100 * plan.gap:.3f}%"
    typer.echo(
        f"{inst.name}: {plan.status}  cost {obj}  bound {plan.best_bound}  gap {gap_txt}  "
        f"setups {plan.kpis.setups}  time {plan.total_time_s:.1f}s"
    )
