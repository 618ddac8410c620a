"""A throw-away PostgreSQL server for tests, started from Debian's binaries.

``PostgresServer().start()`` runs ``initdb`` and ``pg_ctl start`` in a temporary folder (trust
authentication, unix socket inside that folder, TCP on a free port of 127.0.0.1, fsync off: the
data is disposable), ``create_database()`` hands out fresh empty databases, ``stop()`` runs
``pg_ctl stop`` and removes the folder. PostgreSQL refuses to run as root, so when we are root
the binaries run as the ``postgres`` system user (``runuser -u postgres``).

Test fixtures call :func:`unavailable_reason` first and skip with its message when it is not None.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from optimizer.serving.ports import free_port

PG_USER = "postgres"


def find_bindir() -> Path | None:
    """$PG_BINDIR, else the newest ``/usr/lib/postgresql/<version>/bin`` with initdb, pg_ctl."""
    env = os.environ.get("PG_BINDIR")
    candidates = [env] if env else []

    def version_key(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version_key, reverse=True)
    for cand in candidates:
        path = Path(cand)
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return None


def unavailable_reason() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    if find_bindir() is None:
        return (
            "no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or $PG_BINDIR"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return "running as root and there is no 'postgres' system user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and 'runuser' is missing"
    return None


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder; ``url(db)`` gives SQLAlchemy URLs."""

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise RuntimeError(unavailable_reason() or "no PostgreSQL binaries")
        self.root: Path | None = None
        self.port: int | None = None
        self._counter = itertools.count(1)

    # ----------------------------------------------------------------- lifecycle
    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    @property
    def datadir(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "data"

    def start(self) -> PostgresServer:
        self.root = Path(tempfile.mkdtemp(prefix="tailorline-pg-"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        try:
            self._run(
                "initdb", "-D", str(self.datadir), "-A", "trust", "-U", PG_USER,
                "-E", "UTF8", "--no-sync", "--locale=C",
            )  # fmt: skip
            self.port = free_port()
            opts = f"-k {self.root} -p {self.port} -h 127.0.0.1 -F -c max_connections=50"
            self._run(
                "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.datadir),
                "-l", str(self.root / "server.log"), "-o", opts,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            log = self.root / "server.log"
            detail = log.read_text() if log.exists() else ""
            self._cleanup()
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{detail}") from exc
        atexit.register(self.stop)  # a test run that ends abruptly leaves no server behind
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "fast", "-w")
        self._cleanup()

    def _cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- databases
    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create an empty database (or a copy of ``template``) and return its URL."""
        name = name or f"test_{os.getpid()}_{next(self._counter)}"
        tmpl = f" TEMPLATE {template}" if template else ""
        self._admin(f'CREATE DATABASE "{name}"{tmpl}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
