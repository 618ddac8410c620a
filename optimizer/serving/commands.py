"""CLI adapter of the optimizer: ``tailorline solve-clsp FILE.DAT [--time-limit S] [--json]``.

The only optimizer module that may use ``services`` (the CLI state and its errors); Pyomo is
imported inside the command, so ``tailorline --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer


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
    from optimizer import Infeasible, ProblemInvalid, SolveOptions, solve
    from optimizer.core.trigeiro import read, to_problem
    from services.cli import state
    from services.common.errors import FailedPrecondition, InvalidArgument

    st = state(ctx)
    if time_limit <= 0:
        raise InvalidArgument("must be > 0", field="--time-limit")
    try:
        inst = read(file)
        plan = solve(
            to_problem(inst),
            SolveOptions(time_limit_s=time_limit, mip_rel_gap=gap, threads=threads),
        )
    except ProblemInvalid as exc:
        raise InvalidArgument(exc.reason, field=f"{file.name}:{exc.field}") from exc
    except Infeasible as exc:
        raise FailedPrecondition(str(exc)) from exc
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
    if st.json or json_out:
        st.emit(payload, json_out=True)
        return
    obj = "-" if plan.objective is None else f"{plan.objective:.2f}"
    gap_txt = "-" if plan.gap is None else f"{100 * plan.gap:.3f}%"
    typer.echo(
        f"{inst.name}: {plan.status}  cost {obj}  bound {plan.best_bound}  gap {gap_txt}  "
        f"setups {plan.kpis.setups}  time {plan.total_time_s:.1f}s"
    )
