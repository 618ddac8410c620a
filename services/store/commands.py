"""``tailorline store migrate`` and ``store check``: the store's schema, from set-up code.

Serving processes never migrate: the Helm chart runs ``store migrate`` as a pre-install/pre-upgrade
Job and its gateway pods wait in ``store check --wait`` until the schema is there; locally the
stack's bootstrap migrates before it starts the gateway.
"""

from __future__ import annotations

import typer

store_app = typer.Typer(
    name="store",
    help="The store's schema: migrate it, or check that it is current.",
    no_args_is_help=True,
)


@store_app.command("migrate")
def migrate_command(
    ctx: typer.Context,
    wait_db: float = typer.Option(
        0.0,
        "--wait-db",
        min=0.0,
        help="Seconds to wait for the database to accept connections first (0 = do not wait).",
    ),
) -> None:
    """Upgrade the store (--db or TAILORLINE_DB_URL) to this release's newest revision.

    Idempotent: a store that is current is left as it is. Prints the revision before and after.
    """
    from services.cli import state
    from services.store.db import make_engine, migrate, schema_state, wait_for_database

    st = state(ctx)
    engine = make_engine(st.settings.resolved_db_url)
    try:
        if wait_db > 0:
            wait_for_database(engine, wait_db)
        before = schema_state(engine)
        if before.behind:
            migrate(engine)
        after = schema_state(engine)
    finally:
        engine.dispose()
    st.emit({"before": before.current, "after": after.current, "head": after.head})
    if not st.json:
        was = before.current or "none"
        if before.behind:
            typer.echo(f"store migrated: revision {was} -> {after.current}")
        else:
            typer.echo(after.describe())


@store_app.command("check")
def check_command(
    ctx: typer.Context,
    wait: float = typer.Option(
        0.0,
        "--wait",
        min=0.0,
        help="Seconds to keep checking until the schema is current (0 = check once).",
    ),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="Seconds between checks."),
) -> None:
    """Exit 0 when the store's schema is at this release's revision (or newer: a rolled-back
    release), 1 when it is behind after --wait seconds. Reads only; never migrates."""
    import time

    from sqlalchemy.exc import OperationalError

    from services.cli import state
    from services.store.db import make_engine, schema_state

    st = state(ctx)
    engine = make_engine(st.settings.resolved_db_url)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                current = schema_state(engine)
                problem = current.describe() if current.behind else ""
            except OperationalError as exc:  # the database is not up (yet)
                current = None
                problem = "database unreachable: " + str(exc.orig or exc).strip().splitlines()[0]
            if not problem or time.monotonic() >= deadline:
                break
            typer.echo(f"waiting: {problem}", err=True)
            time.sleep(poll)
    finally:
        engine.dispose()
    if current is not None:
        st.emit({"current": current.current, "head": current.head, "behind": current.behind})
    if problem:
        typer.echo(f"store check: {problem} (run `tailorline store migrate`)", err=True)
        raise typer.Exit(1)
    if not st.json and current is not None:
        typer.echo(current.describe())


def register(app: typer.Typer) -> None:
    app.add_typer(store_app)
