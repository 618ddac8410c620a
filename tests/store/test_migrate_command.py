"""``tailorline store migrate`` / ``store check`` (what the chart's migration Job and the gateway
pods' wait run) and the gateway's refusal of a store that is behind: it never migrates itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from services.common.errors import FailedPrecondition
from services.store import make_engine, migrate, require_migrated, schema_state
from services.store.db import head_revision


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from services.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_brings_an_empty_store_to_head_and_check_agrees(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    before = run_cli("--db", url, "store", "check")
    assert before.returncode == 1
    assert "never migrated" in before.stderr and "tailorline store migrate" in before.stderr
    done = run_cli("--db", url, "store", "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"store migrated: revision none -> {head_revision()}"
    again = run_cli("--db", url, "store", "migrate")  # the next upgrade's Job: nothing to do
    assert again.returncode == 0 and "up to date" in again.stdout
    after = run_cli("--db", url, "store", "check")
    assert after.returncode == 0, after.stderr
    assert f"at revision {head_revision()}, up to date" in after.stdout


def test_migrate_upgrades_a_store_left_by_the_previous_release(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url, "0001")
    engine = make_engine(url)
    try:
        state = schema_state(engine)
        assert state.current == "0001" and state.behind
        with pytest.raises(FailedPrecondition, match="tailorline store migrate"):
            require_migrated(engine)  # what the gateway does at start
        result = run_cli("--json", "--db", url, "store", "migrate")
        assert result.returncode == 0, result.stderr
        assert '"before": "0001"' in result.stdout
        assert schema_state(engine).up_to_date
        require_migrated(engine)
    finally:
        engine.dispose()


def test_a_newer_schema_is_accepted_after_a_rollback(tmp_path: Path, caplog) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:  # as a later release's migration would leave it
            conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
        state = require_migrated(engine)
        assert not state.behind and not state.known
        assert "newer than this release" in caplog.text
    finally:
        engine.dispose()
    result = run_cli("--db", url, "store", "check")
    assert result.returncode == 0, result.stderr


def test_migrate_waits_for_the_database_then_says_why_in_one_line() -> None:
    url = "postgresql+psycopg://tailorline:x@127.0.0.1:1/tailorline"  # nothing listens on port 1
    result = run_cli("--db", url, "store", "migrate", "--wait-db", "1")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "did not accept a connection within 1 s" in line
    check = run_cli("--db", url, "store", "check", "--wait", "0.5", "--poll", "0.2")
    assert check.returncode == 1
    assert "database unreachable" in check.stderr.splitlines()[-1]
