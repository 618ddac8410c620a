"""``tailorline retrain``: Ray Tune search, champion/challenger on the latest hold-out, decision."""

from __future__ import annotations

import contextlib
import sys

import typer

from services.common.errors import FailedPrecondition, InvalidArgument


def register(app: typer.Typer) -> None:
    @app.command("retrain")
    def retrain_cmd(
        ctx: typer.Context,
        trials: int = typer.Option(4, "--trials", min=1, help="Ray Tune trials."),
        max_epochs: int = typer.Option(10, "--max-epochs", min=1, help="Most epochs per trial."),
        metric: str = typer.Option("wape", "--metric", help="wape (of P50) or pinball."),
        margin: float = typer.Option(
            0.0, "--margin", min=0.0, help="Relative improvement needed to promote."
        ),
        holdout_weeks: int = typer.Option(
            13, "--holdout-weeks", min=1, max=52, help="Most recent weeks held out."
        ),
        origin_stride: int = typer.Option(
            2, "--origin-stride", min=1, help="Use every k-th forecast origin for training rows."
        ),
        seed: int = typer.Option(7, "--seed", help="Random seed."),
        cpus: int = typer.Option(2, "--cpus", min=1, help="CPUs for the local Ray."),
        json_out: bool = typer.Option(False, "--json", help="Print the job record as JSON."),
        job_id: str | None = typer.Option(
            None,
            "--job-id",
            help="Run the pending job a launcher created (gateway Retrain) instead of a new one.",
        ),
        space_json: str | None = typer.Option(
            None,
            "--space",
            help='Search space as JSON, e.g. \'{"layers": [1, 2], "units": [32]}\' '
            "(default: the trainer's DEFAULT_SPACE).",
        ),
    ) -> None:
        """Retrain the demand model with Ray Tune; promote it only if it beats the served one."""
        from services.cli import state
        from services.registry.repository import ModelRepository
        from services.store.db import make_engine
        from services.store.frames import load_frames
        from services.training.champion import METRICS
        from services.training.job import retrain
        from services.training.train import TrainConfig

        if metric not in METRICS:
            raise InvalidArgument(f"unknown metric {metric!r}; one of {METRICS}", field="metric")
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
                    from services.store.jobs import claim_job, finish_job

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


def parse_space(text: str | None) -> dict[str, list[object]] | None:
    """``--space`` JSON -> {key: [choices]}; None when not given."""
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"not JSON: {exc}", field="space") from None
    if not isinstance(value, dict) or not value:
        raise InvalidArgument("give an object of key -> list of choices", field="space")
    out: dict[str, list[object]] = {}
    for key, choices in value.items():
        if not isinstance(choices, list) or not choices:
            raise InvalidArgument("give a non-empty list of choices", field=f"space.{key}")
        out[str(key)] = choices
    return out
