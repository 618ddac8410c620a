"""Engines, migrations and sessions for the store.

``make_engine(url)`` gives an engine tuned for the backend (SQLite: WAL journal, foreign keys on,
a busy timeout so concurrent writers wait instead of failing; PostgreSQL through psycopg 3).
``migrate(url)`` upgrades a database to the newest Alembic revision; running it again is a no-op.
Only set-up code migrates (``tailorline store migrate``: the Helm chart's migration Job, the local
stack's bootstrap); the gateway checks the revision at start (``require_migrated``) and refuses a
store that is behind, naming the command that fixes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.common.errors import FailedPrecondition, Unavailable

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Plain ``postgresql://`` / ``postgres://`` URLs mean psycopg 3 (the driver we ship)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _on_sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy, not pysqlite, emits BEGIN (see _on_sqlite_begin), so transactions start where
    # SQLAlchemy says and writers can ask for BEGIN IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: big imports keep their index pages
    cur.close()


def _on_sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def writer(engine: Engine) -> Engine:
    """``engine`` for a transaction that will write: on SQLite it takes the write lock at BEGIN
    (``BEGIN IMMEDIATE``), so it waits for other writers (busy timeout) instead of failing when
    its read snapshot went stale; elsewhere the engine itself."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_begin="IMMEDIATE")
    return engine


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (SQLite file or PostgreSQL), with the store's connection settings."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: newest). Idempotent."""
    from alembic import command

    if isinstance(url_or_engine, str):
        engine = make_engine(url_or_engine)
        owned = True
    else:
        engine = url_or_engine
        owned = False
    try:
        cfg = _alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision of this code's migrations (what ``migrate`` upgrades to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()
    assert head is not None, f"no Alembic revision under {MIGRATIONS_DIR}"
    return head


@dataclass(frozen=True)
class SchemaState:
    """Where a store's schema stands against this code's migrations."""

    current: str | None  # None: never migrated (an empty database)
    head: str
    known: bool  # current is one of this code's revisions (False: a newer release migrated it)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def behind(self) -> bool:
        """Needs ``migrate``: empty, or at an older revision this code knows."""
        return not self.up_to_date and (self.current is None or self.known)

    def describe(self) -> str:
        at = self.current or "none (never migrated)"
        if self.up_to_date:
            return f"store schema at revision {at}, up to date"
        if self.behind:
            return f"store schema at revision {at}, this release needs {self.head}"
        return f"store schema at revision {at}, newer than this release's {self.head}"


def schema_state(engine: Engine) -> SchemaState:
    """The store's revision next to this code's head (reads ``alembic_version`` only)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    current = current_revision(engine)
    known = current is None or any(r.revision == current for r in script.walk_revisions())
    head = script.get_current_head()
    assert head is not None, f"no Alembic revision under {MIGRATIONS_DIR}"
    return SchemaState(current, head, known)


def require_migrated(engine: Engine) -> SchemaState:
    """Raise FailedPrecondition when the store is behind this code's migrations (the processes
    that serve never migrate). A newer schema (the release was rolled back, the database was not)
    is allowed with a warning: migrations only add, so older code still reads it."""
    state = schema_state(engine)
    if state.behind:
        raise FailedPrecondition(
            f"{state.describe()}: run `tailorline store migrate` "
            "(on Kubernetes the chart's migration Job does it before the gateway starts)"
        )
    if not state.up_to_date:
        log.warning("%s; continuing (migrations only add tables and columns)", state.describe())
    return state


def wait_for_database(engine: Engine, timeout_s: float, *, poll_s: float = 2.0) -> None:
    """Wait until the database accepts a connection (a PostgreSQL that is still starting), at
    most ``timeout_s``; then raise Unavailable with the driver's last error."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with engine.connect():
                return
        except OperationalError as exc:
            if time.monotonic() >= deadline:
                reason = str(exc.orig or exc).strip().splitlines()[0]
                raise Unavailable(
                    f"the store's database did not accept a connection within {timeout_s:.0f} s: "
                    f"{reason}"
                ) from exc
            log.info("waiting for the database: %s", str(exc.orig or exc).strip().splitlines()[0])
            time.sleep(poll_s)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    with session_factory(engine)() as session, session.begin():
        yield session
