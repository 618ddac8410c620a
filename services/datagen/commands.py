"""``tailorline datagen``: write a synthetic data set with its ground truth."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("datagen")
    def datagen(
        ctx: typer.Context,
        preset: str = typer.Option(
            "small", "--preset", help="Size: tiny, small, standard or large."
        ),
        seed: int = typer.Option(1, "--seed", help="Seed: the same seed gives the same data."),
        out: Path = typer.Option(..., "--out", help="Folder to write the tables into."),
        fmt: str = typer.Option("csv", "--format", help="File format: csv or parquet."),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace a data set already in --out."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Generate a synthetic made-to-order apparel maker (tables + truth/)."""
        from services.cli import state
        from services.datagen.generate import generate

        st = state(ctx)
        summary = generate(preset, seed, out, fmt, overwrite=overwrite)
        if st.json or json_out:
            st.emit(summary.to_dict(), json_out=True)
            return
        typer.echo(
            f"datagen: preset={summary.preset} seed={summary.seed} weeks "
            f"{summary.start_week}..{summary.end_week} -> {summary.out} ({summary.format}) "
            f"in {summary.seconds:.2f} s"
        )
        width = max(len(k) for k in [*summary.counts, *summary.truth_counts]) + 6
        for name, count in summary.counts.items():
            typer.echo(f"  {name:<{width}} {count:>10,}")
        for name, count in summary.truth_counts.items():
            typer.echo(f"  {'truth/' + name:<{width}} {count:>10,}")
        for key, value in summary.facts.items():
            typer.echo(f"  {key.replace('_', ' ')}: {value}")
