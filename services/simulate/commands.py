"""``tailorline simulate``: the closed loop on a synthetic world, against two reference policies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from services.planning.request import check_service_level
from services.simulate import SIM_SERVICE_LEVEL

if TYPE_CHECKING:
    from services.simulate.loop import SimOptions


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        ctx: typer.Context,
        weeks: int = typer.Option(26, "--weeks", help="Weeks to simulate after the history."),
        preset: str = typer.Option("small", "--preset", help="Synthetic world size."),
        seed: int = typer.Option(3, "--seed", help="Seed of the world, its draws and training."),
        horizon: int = typer.Option(4, "--horizon", help="Weeks each weekly replan looks ahead."),
        time_limit: float = typer.Option(10.0, "--time-limit", help="Solver limit per plan, s."),
        mip_gap: float = typer.Option(0.02, "--mip-gap", help="Relative MIP gap per plan."),
        service_level: float = typer.Option(
            SIM_SERVICE_LEVEL,
            "--service-level",
            help="Demand quantile every policy plans for (0-1).",
        ),
        report: Path | None = typer.Option(
            None, "--report", help="HTML report path (default: <run home>/simulate.html)."
        ),
        home: Path | None = typer.Option(
            None,
            "--home",
            help="Fresh folder for this run's store, models and data "
            "(default: <home>/simulations/<preset>-s<seed>-<UTC time>).",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """Week by week: forecast, plan via the gateway, realise, feed back, retrain; vs oracle
        and naive policies."""
        from datetime import UTC, datetime

        from services.cli import state
        from services.simulate.loop import run_simulation
        from services.simulate.report import render

        st = state(ctx)
        opts = check_options(
            weeks=weeks,
            preset=preset,
            seed=seed,
            horizon=horizon,
            time_limit=time_limit,
            mip_gap=mip_gap,
            service_level=service_level,
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        run_home = home or st.settings.home / "simulations" / f"{opts.preset}-s{seed}-{stamp}"
        check_fresh(run_home)
        settings = st.settings.model_copy(
            update={"home": run_home, "db_url": None, "models_dir": None}
        )
        quiet = st.json or json_out
        _stop_on_sigterm()
        result = run_simulation(settings, opts, say=(lambda _m: None) if quiet else typer.echo)
        result.report = report or run_home / "simulate.html"
        result.report.parent.mkdir(parents=True, exist_ok=True)
        result.report.write_text(render(result), encoding="utf-8")
        if quiet:
            st.emit(result.to_json(), json_out=True)
            return
        oracle = result.traces["oracle"].profit
        typer.echo("")
        for name, t in result.traces.items():
            share = f"{t.profit / oracle:6.1%}" if oracle else "   n/a"
            typer.echo(
                f"  {name:<11} profit {t.profit:>12,.0f} ({share} of oracle)  "
                f"service level {t.service_level:.3f}  WAPE {t.wape:.3f}"
            )
        for r in result.retrains:
            typer.echo(
                f"  retrain after week {r.week + 1}: {r.trigger}; promoted {r.promoted} "
                f"({r.metric_before} -> {r.metric_after})"
            )
        typer.echo(f"\nreport: {result.report}")


def check_options(
    *,
    weeks: int,
    preset: str,
    seed: int,
    horizon: int,
    time_limit: float,
    mip_gap: float,
    service_level: float,
) -> SimOptions:
    """The options as :class:`SimOptions`; a bad one is an InvalidArgument naming it."""
    import math

    from services.common.errors import InvalidArgument
    from services.datagen.presets import get_preset
    from services.simulate.loop import SimOptions

    p = get_preset(preset)
    if not 1 <= weeks <= p.horizon_weeks:
        raise InvalidArgument(
            f"must be between 1 and {p.horizon_weeks} for preset {p.name}", field="--weeks"
        )
    if not 1 <= horizon <= 12:
        raise InvalidArgument("must be between 1 and 12 weeks", field="--horizon")
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise InvalidArgument("must be a number of seconds > 0", field="--time-limit")
    if not (math.isfinite(mip_gap) and 0 <= mip_gap < 1):
        raise InvalidArgument("must lie in [0, 1)", field="--mip-gap")
    check_service_level(service_level, "--service-level")
    return SimOptions(
        weeks=weeks,
        preset=p.name,
        seed=seed,
        horizon=horizon,
        service_level=service_level,
        time_limit_s=time_limit,
        mip_rel_gap=mip_gap,
    )


def check_fresh(folder: Path) -> None:
    """A run needs its own store: an existing folder with anything in it is refused."""
    from services.common.errors import InvalidArgument

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidArgument(f"{folder} is not an empty folder", field="--home")


def _stop_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so the run's ``finally`` stops the stack's child processes
    (the default action would kill this process alone and leave them running)."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
