"""``tailorline simulate``: the closed loop in one or several synthetic worlds, against the
reference policies and hindsight."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from services.simulate.loop import SimOptions, SimResult

#: Most worlds one run may simulate.
MAX_SEEDS = 20
MAX_SEED = 2**32 - 1


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        ctx: typer.Context,
        weeks: int = typer.Option(26, "--weeks", help="Weeks to simulate after the history."),
        preset: str = typer.Option("small", "--preset", help="Synthetic world size."),
        seeds: str | None = typer.Option(
            None,
            "--seeds",
            help="Comma-separated seeds, one world each (its data, draws and training), "
            "e.g. 3,5,8; default 3.",
        ),
        seed: int | None = typer.Option(None, "--seed", help="One seed (= --seeds N)."),
        horizon: int = typer.Option(4, "--horizon", help="Weeks each weekly replan looks ahead."),
        time_limit: float = typer.Option(
            10.0, "--time-limit", help="Solver limit per weekly plan and policy, s."
        ),
        mip_gap: float = typer.Option(0.02, "--mip-gap", help="Relative MIP gap per plan."),
        scenarios: int = typer.Option(
            32, "--scenarios", help="Demand scenarios per expected-profit plan (1-512)."
        ),
        hindsight_limit: float = typer.Option(
            120.0, "--hindsight-time-limit", help="Solver limit of each world's hindsight plan, s."
        ),
        report: Path | None = typer.Option(
            None, "--report", help="HTML report path (default: <run home>/simulate.html)."
        ),
        home: Path | None = typer.Option(
            None,
            "--home",
            help="Fresh folder for this run's stores, models and data, one seed-<n> folder per "
            "world (default: <home>/simulations/<preset>-s<seeds>-<UTC time>).",
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    ) -> None:
        """Week by week: forecast, plan via the gateway, realise, feed back, retrain; against
        quantile, oracle and naive policies and the hindsight bound."""
        from datetime import UTC, datetime

        from services.cli import state
        from services.simulate.loop import run_simulation
        from services.simulate.report import render

        st = state(ctx)
        opts = check_options(
            weeks=weeks,
            preset=preset,
            seeds=seeds,
            seed=seed,
            horizon=horizon,
            time_limit=time_limit,
            mip_gap=mip_gap,
            scenarios=scenarios,
            hindsight_limit=hindsight_limit,
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        named = "-".join(str(s) for s in opts.seeds)
        run_home = home or st.settings.home / "simulations" / f"{opts.preset}-s{named}-{stamp}"
        check_fresh(run_home)
        settings = st.settings.model_copy(
            update={"home": run_home, "db_url": None, "models_dir": None}
        )
        quiet = st.json or json_out
        _stop_on_sigterm()
        bar, say, on_week = _progress(opts, quiet)
        try:
            result = run_simulation(settings, opts, say=say, on_week=on_week)
        finally:
            if bar is not None:
                bar.stop()
        result.report = report or run_home / "simulate.html"
        result.report.parent.mkdir(parents=True, exist_ok=True)
        result.report.write_text(render(result), encoding="utf-8")
        if quiet:
            st.emit(result.to_json(), json_out=True)
            return
        _print_summary(result)


def _progress(
    opts: SimOptions, quiet: bool
) -> tuple[Any, Callable[[str], None], Callable[[int, int, int], None] | None]:
    """A rich progress bar on stderr (one row per seed, advanced each simulated week) when
    stderr is a terminal, else a line on stderr per simulated week; the ``say`` for the run's
    lines (none with --json)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)

    def echo(message: str) -> None:
        if not quiet:
            typer.echo(message)

    if not console.is_terminal:  # a log file or a pipe: one plain line per simulated week

        def line(seed: int, week: int, weeks: int) -> None:
            typer.echo(f"seed {seed}: week {week + 1}/{weeks} done", err=True)

        return None, echo, line
    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("weeks"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks = {s: bar.add_task(f"seed {s}", total=opts.weeks) for s in opts.seeds}
    bar.start()

    def log(message: str) -> None:
        if not quiet:
            bar.console.print(message, markup=False, highlight=False)

    def advance(seed: int, week: int, weeks: int) -> None:
        bar.update(tasks[seed], completed=week + 1, total=weeks)

    return bar, log, advance


def _print_summary(result: SimResult) -> None:
    from services.simulate.loop import HINDSIGHT

    seeds = [r.seed for r in result.runs]
    typer.echo("")
    head = "".join(f"{'seed ' + str(s):>14}" for s in seeds)
    typer.echo(f"  {'policy':<14}{head}{'mean':>14}  of hindsight  service  WAPE")
    for name in result.names:
        s = result.summary(name)
        cells = "".join(f"{s['profit_by_seed'][str(x)]:>14,.0f}" for x in seeds)
        note = " (upper bound)" if name == HINDSIGHT else ""
        typer.echo(
            f"  {name:<14}{cells}{s['profit']:>14,.0f}  {s['pct_of_hindsight']:>10.1f}%"
            f"  {s['service_level']:>7.3f}  {s['wape']:.3f}{note}"
        )
    checks = result.checks()
    typer.echo(
        f"\n  tailorline vs the best quantile policy on the mean ({checks['best_quantile_on_mean']}"
        f"): {checks['tailorline_over_best_quantile_on_mean_pct']:+.2f}%"
    )
    for r in result.runs:
        for rec in r.retrains:
            typer.echo(
                f"  seed {r.seed}: retrain after week {rec.week + 1}: {rec.trigger}; promoted "
                f"{rec.promoted} ({rec.metric_before} -> {rec.metric_after})"
            )
    typer.echo(f"\nreport: {result.report}")


def parse_seeds(text: str, field: str = "--seeds") -> tuple[int, ...]:
    """``3,5,8`` -> (3, 5, 8): whole numbers 0..2^32-1, each once, at most MAX_SEEDS."""
    from services.common.errors import InvalidArgument

    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise InvalidArgument("give at least one seed, e.g. 3,5,8", field=field)
    out: list[int] = []
    for part in parts:
        if not part.isdigit() or int(part) > MAX_SEED:
            shown = part if len(part) <= 20 else part[:20] + "..."
            raise InvalidArgument(
                f"seeds are comma-separated whole numbers 0..{MAX_SEED}, got {shown!r}",
                field=field,
            )
        if int(part) in out:
            raise InvalidArgument(f"seed {int(part)} given twice", field=field)
        out.append(int(part))
    if len(out) > MAX_SEEDS:
        raise InvalidArgument(f"{len(out)} seeds; at most {MAX_SEEDS}", field=field)
    return tuple(out)


def check_options(
    *,
    weeks: int,
    preset: str,
    seeds: str | None = None,
    seed: int | None = None,
    horizon: int = 4,
    time_limit: float = 10.0,
    mip_gap: float = 0.02,
    scenarios: int = 32,
    hindsight_limit: float = 120.0,
) -> SimOptions:
    """The options as :class:`SimOptions`; a bad one is an InvalidArgument naming it."""
    import math

    from services.common.errors import InvalidArgument
    from services.datagen.presets import get_preset
    from services.simulate.loop import SimOptions

    p = get_preset(preset)
    if seeds is not None and seed is not None:
        raise InvalidArgument("give --seeds or --seed, not both", field="--seeds")
    if seed is not None:
        chosen = parse_seeds(str(seed), "--seed")
    else:
        chosen = parse_seeds(seeds) if seeds is not None else (3,)
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
    if not 1 <= scenarios <= 512:
        raise InvalidArgument("must be between 1 and 512", field="--scenarios")
    if not (math.isfinite(hindsight_limit) and hindsight_limit > 0):
        raise InvalidArgument("must be a number of seconds > 0", field="--hindsight-time-limit")
    return SimOptions(
        weeks=weeks,
        preset=p.name,
        seeds=chosen,
        horizon=horizon,
        time_limit_s=time_limit,
        mip_rel_gap=mip_gap,
        scenario_count=scenarios,
        hindsight_time_limit_s=hindsight_limit,
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
