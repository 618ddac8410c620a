"""`tailorline retrain` as a process: Ray Tune end to end; a SIGKILL half-way changes nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from services.registry.repository import ModelRepository
from services.store import schema
from services.store.db import make_engine

ARGS = ["retrain", "--trials", "2", "--max-epochs", "2", "--holdout-weeks", "6", "--cpus", "2"]


def _cli(home: Path, db_url: str, *args: str) -> list[str]:
    code = "import sys; from services.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "--home", str(home), "--db", db_url, *args]


def _jobs(engine) -> list[dict]:
    t = schema.retrain_jobs
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t)).mappings()]


def test_killed_retrain_changes_nothing_and_the_next_one_decides(
    tiny_store, tmp_path, good_fit, serve, registry
) -> None:
    import shutil

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(tiny_store.home / "store.db", home / "store.db")
    db_url = f"sqlite:///{home / 'store.db'}"
    engine = make_engine(db_url)
    repo = ModelRepository(home / "models")
    v1 = serve(engine, repo, good_fit)
    before = registry(engine)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}

    proc = subprocess.Popen(
        _cli(home, db_url, *ARGS, "--json"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(j["status"] == "running" for j in _jobs(engine)):
            assert proc.poll() is None, "retrain exited before it started"
            assert time.monotonic() < deadline, "retrain never started"
            time.sleep(0.5)
        time.sleep(8)  # into the Ray Tune search
        assert proc.poll() is None, "retrain finished before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and whatever Ray started in its session
        proc.wait(timeout=30)
    assert repo.current("demand") == v1
    assert registry(engine) == before
    assert [j["status"] for j in _jobs(engine)] == ["running"]  # never marked a success

    done = subprocess.run(
        _cli(home, db_url, *ARGS, "--json"),
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
        start_new_session=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["champion_version"] == v1 and result["champion"] > 0
    assert result["challenger"] > 0 and len(result["trials"]) == 2
    assert all(t["status"] == "ok" for t in result["trials"])
    challenger = result["challenger_version"]
    statuses = dict(registry(engine))
    assert statuses[challenger] == "candidate" and challenger > v1
    if result["promoted"]:  # a win serves the challenger's full-data refit, the next version
        refit = result["refit"]
        assert refit["refit_of"] == challenger and refit["version"] == challenger + 1
        served = refit["version"]
        assert repo.read_metadata("demand", served)["refit_of"] == challenger
        assert statuses[v1] == "retired"
        assert sorted(statuses) == [v1, challenger, served]
    else:  # a loss publishes only the candidate; the champion stays served
        assert result["refit"] is None
        served = v1
        assert sorted(statuses) == [v1, challenger]
    assert repo.current("demand") == served == result["served_version"]
    assert statuses[served] == "served" and list(statuses.values()).count("served") == 1
    job = next(j for j in _jobs(engine) if j["job_id"] == result["job_id"])
    assert job["status"] == "succeeded"
    assert job["result"]["champion"] == result["champion"]
    assert job["result"]["challenger"] == result["challenger"]
    engine.dispose()


def test_retrain_rejects_an_unknown_metric_with_a_one_line_error(tmp_path, capsys) -> None:
    import pytest

    from services.cli import main

    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(SystemExit) as exit_info:
        main(["--home", str(tmp_path), "--db", db_url, "retrain", "--metric", "mape"])
    assert exit_info.value.code == 2
    assert "mape" in capsys.readouterr().err
