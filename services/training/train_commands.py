"""``tailorline train`` (``tailorline predictor`` is in services/predictor/commands.py).

``train`` reads the store (or a data-set folder with ``--data``), trains the demand and cost models
with a time-based hold-out, writes new versions into the model repository, records them in the
store's registry and prints the hold-out metrics (issue 3's JSON shape with ``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from services.common.errors import FailedPrecondition, InvalidArgument


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


def _render(report: dict[str, Any]) -> str:
    d = report["demand"]
    lines = [
        f"hold-out {d['holdout']['first_week']} .. {d['holdout']['last_week']} "
        f"(origin {d['holdout']['origin_week']})",
        f"{'demand (warm series)':<26}{'WAPE':>8}{'MASE':>8}{'pinball':>9}{'P10-P90':>9}",
    ]
    for label, key in (("model", "model"), ("seasonal naive", "seasonal_naive"),
                       ("AutoETS", "autoets")):  # fmt: skip
        s = d[key]
        lines.append(
            f"  {label:<24}{_f(s['wape']):>8}{_f(s['mase']):>8}{_f(s['pinball']):>9}"
            f"{_f(s['coverage_p10_p90']):>9}"
        )
    c = d["cold_start"]
    lines.append(f"cold start ({c['variants']} variants first sold in the hold-out)")
    lines.append(f"  {'model':<24}{_f(c['model']['wape']):>8}")
    lines.append(f"  {'family mean':<24}{_f(c['family_mean']['wape']):>8}")
    for k, v in report["cost"].items():
        lines.append(f"cost {k:<30}{_f(v):>8}")
    v = report["versions"]
    lines.append(f"versions: demand {v['demand']}, cost {v['cost']}")
    return "\n".join(lines)


def _f(x: Any) -> str:
    return "-" if x is None else (f"{x:.3f}" if isinstance(x, float) else str(x))


def register(app: typer.Typer) -> None:
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
    ) -> None:
        """Train the demand and cost models into the model repository and print hold-out metrics."""
        from services.cli import state
        from services.features.tables import read_dataset_folder, read_truth
        from services.registry.repository import ModelRepository
        from services.training.run import run_training, truth_from_store
        from services.training.train import TrainConfig

        st = state(ctx)
        as_json = st.json or json_out
        engine = None
        if data is not None:
            if not data.is_dir():
                raise InvalidArgument(f"{data} is not a folder", field="data")
            frames = read_dataset_folder(data)
            gt = read_truth(data)
        else:
            from services.store.db import make_engine
            from services.store.frames import load_frames

            engine = make_engine(st.settings.resolved_db_url)
            try:
                frames = load_frames(engine)
            except Exception as exc:  # no tables yet
                raise FailedPrecondition(
                    f"the store at {st.settings.resolved_db_url} has no data "
                    f"({type(exc).__name__}); run `tailorline ingest DIR` first",
                    field="db",
                ) from None
            gt = truth_from_store(engine)
        if truth is not None:
            gt = read_truth(truth)
        if frames.get("orders") is None or frames["orders"].empty:
            raise FailedPrecondition("no orders to train on; run `tailorline ingest DIR` first")
        cfg = TrainConfig(
            seed=seed, holdout_weeks=holdout_weeks, epochs=epochs, origin_stride=origin_stride
        )
        repo = ModelRepository(st.settings.resolved_models_dir)
        bar, update = _progress_bar(not as_json)
        if bar is not None:
            bar.start()
        try:
            report = run_training(
                frames,
                repo,
                cfg,
                truth=gt,
                progress=update,
                engine=engine,
                promote=not no_promote,
            )
        finally:
            _finish(bar)
            if engine is not None:
                engine.dispose()
        if as_json:
            st.emit(report, json_out=True)
        else:
            typer.echo(_render(report))
            typer.echo(f"model repository: {repo.root}")
