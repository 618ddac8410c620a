"""``tailorline train`` and ``tailorline retrain``: the training commands (CLI adapters only).

``train`` reads the store (or a data-set folder with ``--data``), trains the demand and cost models
with a time-based hold-out, writes new versions into the model repository, records them in the
store's registry, serves them (unless ``--no-promote``) and prints the hold-out metrics (issue 3's
JSON shape with ``--json``). ``retrain`` runs a Ray Tune search and the champion/challenger
decision on the latest hold-out (:func:`services.training.job.retrain`).

The work is in plain modules (``run``, ``job``); the store, pandas and the training code are
imported inside the commands, so that ``tailorline --help`` (which imports every command module)
stays fast. (``tailorline predictor`` is in services/predictor/commands.py.)
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

import typer

from services.cli import state
from services.common.errors import FailedPrecondition, InvalidArgument
from services.registry.repository import ModelRepository
from services.training.limits import CONFIG_LIMITS
from services.training.space import parse_space


def _progress_bar(enabled: bool) -> tuple[Any, Any]:
    """A rich progress bar on stderr and the (stage, done, total) callback that drives it."""
    if not enabled:
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(f"{stage} model (epochs)", total=total)
        bar.update(tasks[stage], completed=done)

    return bar, update


def _finish(bar: Any) -> None:
    if bar is None:
        return
    for task in bar.tasks:  # early stopping: show the bar as done
        bar.update(task.id, total=task.completed)
    bar.stop()


#: How ``tailorline train`` names the baselines of ``demand.baselines`` (others: their JSON name).
BASELINE_LABELS = {
    "seasonal_naive": "seasonal naive",
    "last_value": "last value",
    "moving_median_13": "13-week median",
    "moving_mean_13": "13-week mean",
    "autoets": "AutoETS",
    "croston_optimized": "Croston (optimized)",
    "imapa": "IMAPA",
    "lightgbm": "LightGBM",
}
#: The score columns, in this order; any other number in the scores follows under its JSON name.
SCORE_COLUMNS = {
    "wape": "WAPE",
    "mase": "MASE",
    "pinball": "pinball",
    "bias": "bias",
    "coverage_p10_p90": "P10-P90",
    "coverage_p05_p95": "P05-P95",
}
NOT_SCORES = ("rows", "series_with_ets")


def _score_table(title: str, entries: dict[str, dict[str, Any]], best: str | None = None) -> Any:
    """One row per forecast (label -> its scores), one column per metric any of them has."""
    from rich.table import Table

    keys = list(SCORE_COLUMNS)
    for scores in entries.values():
        keys += [k for k in scores if k not in keys and k not in NOT_SCORES]
    keys = [k for k in keys if any(k in s for s in entries.values())]
    table = Table(title=title, title_justify="left")
    table.add_column("forecast")
    for k in keys:
        table.add_column(SCORE_COLUMNS.get(k, k), justify="right")
    for label, scores in entries.items():
        name = f"{label} *" if label == best else label
        table.add_row(name, *(_f(scores.get(k)) for k in keys))
    return table


def render_report(report: dict[str, Any], console: Any) -> None:
    """``tailorline train``'s report as rich tables: the demand model beside every baseline of
    ``demand.baselines`` (the best one marked), the cold start, the cost model, the versions."""
    from rich.table import Table

    def say(text: str) -> None:  # a line as it is: no markup, not wrapped
        console.print(text, markup=False, soft_wrap=True)

    d = report["demand"]
    h = d["holdout"]
    baselines = d.get("baselines") or {k: d[k] for k in ("seasonal_naive", "autoets") if k in d}
    best = d.get("best_baseline")
    label = {k: BASELINE_LABELS.get(k, k) for k in baselines}
    entries = {"model": d["model"], **{label[k]: v for k, v in baselines.items()}}
    rows = d["model"].get("rows")
    say(
        f"hold-out {h['first_week']} .. {h['last_week']} (origin {h['origin_week']}): "
        f"{h.get('warm_series', '?')} warm series" + (f", {rows} rows" if rows else "")
    )
    title = "demand (warm series): the model and every baseline on the same rows"
    console.print(_score_table(title, entries, best=label.get(best) if best else None))
    if best in baselines:
        b, m = baselines[best].get("wape"), d["model"].get("wape")
        ratio = f"; model / best = {m / b:.3f}" if m is not None and b else ""
        say(f"* best baseline (lowest WAPE): {label[best]} ({best}){ratio}")
    t = d.get("training") or {}
    if "epochs" in t:
        line = (
            f"trained on {t['rows']} rows until {t['train_until']}: {t['epochs']} epochs, "
            f"the best {t['best_epoch']} on {t['validation_rows']} validation rows"
        )
        if refit := t.get("refit_validation"):
            line += f", then {refit['epochs']} epochs on all {refit['rows']} rows (the model above)"
        say(f"{line}; {t['seconds']:.0f} s")
    c = d["cold_start"]
    console.print(
        _score_table(
            f"cold start: {c['variants']} variants first sold in the hold-out",
            {"model": c["model"], "family mean": c["family_mean"]},
        )
    )
    cost = report["cost"]
    if "skipped" in cost:
        say(cost["skipped"])
    else:
        table = Table(title="cost model", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in cost.items():
            shown = ", ".join(_f(x) for x in v) if isinstance(v, list) else _f(v)
            table.add_row(k, shown)
        console.print(table)
    v = report["versions"]
    cost_v = "none (not trained)" if v.get("cost") is None else v["cost"]
    say(f"versions served: demand {v['demand']}, cost {cost_v}")
    for name in ("demand", "cost"):
        refit = (report.get("refit") or {}).get(name) or {}
        if refit.get("refit"):
            say(f"{name} v{v[name]} is v{refit['holdout_fit']} (scored above) refit on every week")


def _f(x: Any) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def _range(knob: str) -> dict[str, Any]:
    """typer's ``min``/``max`` for a ``retrain`` option: the knob's bounds
    (:mod:`services.training.limits`), the same ones a gateway Retrain is held to."""
    bound = CONFIG_LIMITS[knob]
    cast = bound.kind
    return {"min": cast(bound.low), "max": cast(bound.high)}


def register(app: typer.Typer) -> None:
    _register_train(app)
    _register_retrain(app)


def _register_train(app: typer.Typer) -> None:
    @app.command("train")
    def train(
        ctx: typer.Context,
        json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
        seed: int = typer.Option(7, "--seed", help="Random seed (training is deterministic)."),
        holdout_weeks: int = typer.Option(
            13, "--holdout-weeks", min=1, max=52, help="Last weeks held out for evaluation."
        ),
        epochs: int = typer.Option(30, "--epochs", min=1, help="Most demand-model epochs."),
        origin_stride: int = typer.Option(
            2, "--origin-stride", min=1, help="Use every k-th forecast origin for training rows."
        ),
        data: Path | None = typer.Option(
            None, "--data", help="Train on a data-set folder instead of the store."
        ),
        truth: Path | None = typer.Option(
            None, "--truth", help="Data-set folder whose truth/ to score against."
        ),
        no_promote: bool = typer.Option(
            False, "--no-promote", help="Register the new versions as candidates, not served."
        ),
        no_refit: bool = typer.Option(
            False,
            "--no-refit",
            help="Serve the hold-out fits instead of refitting them on every week.",
        ),
        workers: int = typer.Option(
            0,
            "--workers",
            min=0,
            max=256,
            help="Train the demand model on Ray Data + Ray Train with N workers, from a Parquet "
            "export of the store (0: one process; docs/distributed-training.md).",
        ),
        parquet: Path | None = typer.Option(
            None,
            "--parquet",
            help="Folder of the Parquet export (--workers; default: HOME/export).",
        ),
    ) -> None:
        """Train the demand and cost models into the model repository and print hold-out metrics."""
        from services.features.tables import read_dataset_folder, read_truth
        from services.store.db import make_engine
        from services.store.frames import load_frames
        from services.training.run import run_training, truth_from_store
        from services.training.train import TrainConfig

        st = state(ctx)
        as_json = st.json or json_out
        engine = None
        if workers and data is not None:
            raise InvalidArgument("--workers trains from the store, not --data", field="workers")
        if data is not None:
            if not data.is_dir():
                raise InvalidArgument(f"{data} is not a folder", field="data")
            frames = read_dataset_folder(data)
            gt = read_truth(data)
        else:
            engine = make_engine(st.settings.resolved_db_url)
            try:  # --workers: the orders are read on Ray from the export, not here
                frames = load_frames(engine, ("variants",) if workers else None)
            except Exception as exc:  # no tables yet
                raise FailedPrecondition(
                    f"the store at {st.settings.resolved_db_url} has no data "
                    f"({type(exc).__name__}); run `tailorline ingest DIR` first",
                    field="db",
                ) from None
            gt = truth_from_store(engine)
        if truth is not None:
            gt = read_truth(truth)
        if not workers and (frames.get("orders") is None or frames["orders"].empty):
            raise FailedPrecondition("no orders to train on; run `tailorline ingest DIR` first")
        cfg = TrainConfig(
            seed=seed, holdout_weeks=holdout_weeks, epochs=epochs, origin_stride=origin_stride
        )
        repo = ModelRepository(st.settings.resolved_models_dir)
        bar, update = _progress_bar(not as_json)
        if bar is not None:
            bar.start()
        try:
            if workers:  # Ray Data + Ray Train (services/training/distributed_run.py)
                from services.training.distributed import DistributedConfig
                from services.training.distributed_run import run_distributed_training

                report = run_distributed_training(
                    engine, repo, cfg, DistributedConfig(workers=workers),
                    parquet or st.settings.home / "export", truth=gt, progress=update,
                    promote=not no_promote,
                )  # fmt: skip
            else:
                report = run_training(
                    frames,
                    repo,
                    cfg,
                    truth=gt,
                    progress=update,
                    engine=engine,
                    promote=not no_promote,
                    refit=not no_refit,
                )
        finally:
            _finish(bar)
            if engine is not None:
                engine.dispose()
        if as_json:
            st.emit(report, json_out=True)
        else:
            from rich.console import Console

            console = Console(highlight=False)
            render_report(report, console)
            console.print(f"model repository: {repo.root}", markup=False, soft_wrap=True)


def _register_retrain(app: typer.Typer) -> None:
    @app.command("retrain")
    def retrain_cmd(
        ctx: typer.Context,
        trials: int = typer.Option(4, "--trials", **_range("trials"), help="Ray Tune trials."),
        max_epochs: int = typer.Option(
            10, "--max-epochs", **_range("max_epochs"), help="Most epochs per trial."
        ),
        metric: str = typer.Option("wape", "--metric", help="wape (of P50) or pinball."),
        margin: float = typer.Option(
            0.0, "--margin", **_range("margin"), help="Relative improvement needed to promote."
        ),
        holdout_weeks: int = typer.Option(
            13, "--holdout-weeks", **_range("holdout_weeks"), help="Most recent weeks held out."
        ),
        origin_stride: int = typer.Option(
            2,
            "--origin-stride",
            **_range("origin_stride"),
            help="Use every k-th forecast origin for training rows.",
        ),
        seed: int = typer.Option(7, "--seed", **_range("seed"), help="Random seed."),
        cpus: int = typer.Option(2, "--cpus", min=1, help="CPUs for the local Ray."),
        json_out: bool = typer.Option(False, "--json", help="Print the job record as JSON."),
        job_id: str | None = typer.Option(
            None,
            "--job-id",
            help="Run the pending job a launcher created (gateway Retrain) instead of a new one.",
        ),
        models: list[str] = typer.Option(
            ["demand"],
            "--model",
            help="Model to retrain: demand (Ray Tune search) or cost; repeat for both.",
        ),
        space_json: str | None = typer.Option(
            None,
            "--space",
            help='Search space as JSON, e.g. \'{"layers": [1, 2], "units": [32]}\' '
            "(default: the trainer's DEFAULT_SPACE).",
        ),
    ) -> None:
        """Retrain the demand model with Ray Tune; promote it only if it beats the served one."""
        from services.store.db import make_engine
        from services.store.frames import load_frames
        from services.store.jobs import claim_job, finish_job
        from services.training.champion import METRICS
        from services.training.job import retrain
        from services.training.train import TrainConfig

        if metric not in METRICS:
            raise InvalidArgument(f"unknown metric {metric!r}; one of {METRICS}", field="metric")
        for name in models:
            if name not in ("demand", "cost"):
                raise InvalidArgument(f"unknown model {name!r}; demand or cost", field="model")
        space = parse_space(space_json)
        st = state(ctx)
        engine = make_engine(st.settings.resolved_db_url)
        try:
            try:
                frames = load_frames(engine)
            except Exception as exc:  # no tables yet
                raise FailedPrecondition(
                    f"the store has no data ({type(exc).__name__}); run `tailorline ingest DIR`",
                    field="db",
                ) from None
            if frames.get("orders") is None or frames["orders"].empty:
                if job_id:
                    claim_job(engine, job_id)
                    finish_job(engine, job_id, error="no orders to train on")
                raise FailedPrecondition("no orders to train on; run `tailorline ingest DIR`")
            cfg = TrainConfig(seed=seed, holdout_weeks=holdout_weeks, origin_stride=origin_stride)
            repo = ModelRepository(st.settings.resolved_models_dir)
            # Ray Tune writes its experiment tables to stdout: keep stdout for the result
            with contextlib.redirect_stdout(sys.stderr):
                result = retrain(
                    engine,
                    repo,
                    frames,
                    cfg,
                    trials=trials,
                    max_epochs=max_epochs,
                    metric=metric,
                    margin=margin,
                    num_cpus=cpus,
                    space=space,
                    job_id=job_id,
                    models=list(dict.fromkeys(models)),
                )
        finally:
            engine.dispose()
        if st.json or json_out:
            st.emit(result, json_out=True)
            return
        champ = result["champion"]
        typer.echo(
            f"job {result['job_id']}: challenger {metric}={result['challenger']:.4f} "
            f"(v{result['challenger_version']}), champion "
            + (
                f"{metric}={champ:.4f} (v{result['champion_version']})"
                if champ is not None
                else "none"
            )
        )
        verdict = "PROMOTED" if result["promoted"] else "kept as candidate"
        typer.echo(f"decision: {verdict}; served demand version {result['served_version']}")
        typer.echo(f"reason: {result['reason']}")
        for o in (result.get("evidence") or {}).get("origins", []):
            typer.echo(
                f"  origin {o['origin']}: challenger {_f(o['challenger'])}, champion "
                f"{_f(o['champion'])} ({o['rows']} rows)"
            )
        if result.get("refit"):
            r = result["refit"]
            typer.echo(f"served: v{r['version']}, the refit of v{r['refit_of']} on every week")
        if result.get("cost"):
            c = result["cost"]
            typer.echo(f"cost: {'PROMOTED' if c['promoted'] else 'kept'}; {c['reason']}")
