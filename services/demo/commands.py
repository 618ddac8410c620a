"""``tailorline demo``: the README's main command."""

from __future__ import annotations

from pathlib import Path

import typer

from services.common.errors import InvalidArgument
from services.planning.request import (
    DEFAULT_DEMAND_MODE,
    DEFAULT_SERVICE_LEVEL,
    DEMAND_MODES,
    check_service_level,
)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        preset: str = typer.Option("small", "--preset", help="Synthetic data set size."),
        seed: int = typer.Option(1, "--seed", help="Seed of the data and the training."),
        horizon: int = typer.Option(8, "--horizon", help="Weeks to plan."),
        mode: str = typer.Option(
            DEFAULT_DEMAND_MODE,
            "--mode",
            help="expected_profit (over demand scenarios) or quantile (--service-level).",
        ),
        service_level: float = typer.Option(
            DEFAULT_SERVICE_LEVEL, "--service-level", help="Demand quantile, quantile mode (0-1)."
        ),
        time_limit: float = typer.Option(60.0, "--time-limit", help="Solver time limit, s."),
        report: Path | None = typer.Option(
            None, "--report", help="HTML report path (default: <home>/reports/demo.html)."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Whole loop: data, ingest, train, up, a plan via the gateway, feedback, report."""
        from services.cli import state
        from services.demo.run import run_demo

        st = state(ctx)
        check_service_level(service_level, "--service-level")
        if mode not in DEMAND_MODES:
            raise InvalidArgument(f"--mode: must be one of {', '.join(DEMAND_MODES)}, got {mode}")
        quiet = st.json or json_out
        result = run_demo(
            st.settings,
            preset=preset,
            seed=seed,
            horizon=horizon,
            demand_mode=mode,
            service_level=service_level,
            time_limit_s=time_limit,
            report=report,
            say=(lambda _msg: None) if quiet else typer.echo,
        )
        if quiet:
            st.emit(
                {
                    "steps": [{"step": k, "result": v} for k, v in result.steps],
                    "summary": result.summary,
                    "report": str(result.report),
                },
                json_out=True,
            )
            return
        if result.plan_table is not None and len(result.plan_table):
            typer.echo("\nplan (units per week and line):")
            typer.echo(result.plan_table.to_string(index=False))
        typer.echo("")
        for key, value in result.summary.items():
            typer.echo(f"  {key:<24} {value}")
        typer.echo(f"\nreport: {result.report}")
