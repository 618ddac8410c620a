"""``tailorline ingest DIR``: validate, clean and load a data set folder into the store."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        ctx: typer.Context,
        folder: Path = typer.Argument(..., metavar="DIR", help="Data set folder (CSV/Parquet)."),
        strict: bool = typer.Option(False, "--strict", help="Exit 1 when any row was rejected."),
        report: Path | None = typer.Option(
            None, "--report", help="Write every rejected row (file,row,column,reason) to a CSV."
        ),
        json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress lines on stderr."),
    ) -> None:
        """Validate, clean and load DIR into the store; print counts per table and bad rows.

        Good rows are loaded in one transaction; re-running the same data adds nothing.
        """
        from services.cli import state
        from services.common.keys import ensure_pseudonym_key
        from services.ingest.api import ingest_dir
        from services.store.db import make_engine

        st = state(ctx)
        as_json = st.json or json_out

        def progress(table: str, done: int, total: int) -> None:
            of = f"/{total}" if total > 0 else ""
            print(f"loading {table}: {done}{of} rows", file=sys.stderr, flush=True)

        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        from services.common.errors import InvalidArgument, TailorlineError, Unavailable
        from services.ingest.report import shown_value

        settings = st.settings
        if settings.db_url is None:  # the home's own store: the home's own key, made once
            settings = ensure_pseudonym_key(settings)
        engine = make_engine(settings.resolved_db_url)
        try:
            result = ingest_dir(
                folder, engine, settings, progress=None if quiet or as_json else progress
            )
        except OperationalError as exc:  # server down, wrong credentials, file locked too long
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise Unavailable(f"store {engine.url!r} not usable: {reason}") from exc
        except (TailorlineError, KeyboardInterrupt):
            raise
        except SQLAlchemyError as exc:  # validation should make this impossible: say so briefly
            if st.debug:
                raise
            orig = getattr(exc, "orig", None) or exc
            reason = shown_value(str(orig).strip().splitlines()[0] if str(orig) else "", 200)
            raise TailorlineError(
                f"the store refused the import ({type(orig).__name__}: {reason}); nothing was "
                "loaded (--debug shows the traceback)"
            ) from exc
        except OSError as exc:  # a file vanished or became unreadable half-way
            raise InvalidArgument(
                f"cannot read the data set: {exc.strerror or type(exc).__name__}", field="DIR"
            ) from exc
        except Exception as exc:  # never a traceback for input, whatever it was
            if st.debug:
                raise
            raise TailorlineError(
                f"ingest failed ({type(exc).__name__}); nothing was loaded (--debug shows the "
                "traceback)"
            ) from exc
        finally:
            engine.dispose()
        if report is not None:
            try:
                result.write_issues_csv(report)
            except OSError as exc:
                raise InvalidArgument(
                    f"cannot write {shown_value(str(report), 200)}: "
                    f"{exc.strerror or type(exc).__name__}",
                    field="--report",
                ) from exc
        if as_json:
            st.emit(result.to_dict(), json_out=True)
        else:
            typer.echo(result.render())
            if report is not None:
                typer.echo(f"rejected rows written to {report}")
        if strict and result.rejected_rows:
            typer.echo(
                f"error: {result.rejected_rows} rows rejected (--strict); good rows were loaded",
                err=True,
            )
            # SystemExit, not typer.Exit: the root CLI runs click with standalone_mode=False,
            # where click turns Exit into a return value that would be lost.
            raise SystemExit(1)
