"""``tailorline ingest``: the datagen round trip, the summary, --strict, --report and --json."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from services.common.settings import CoreSettings
from services.ingest import ingest_dir
from services.ingest.commands import register
from services.store import load_frames, make_engine


def _invoke(args: list[str], db: str) -> object:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # keep "ingest" a sub-command, as in the real CLI
        pass

    register(app)
    return CliRunner().invoke(app, args, env={"TAILORLINE_DB_URL": db})


def test_datagen_tiny_loads_completely_then_adds_nothing(tiny_dir, store_url: str) -> None:
    folder, counts = tiny_dir
    engine = make_engine(store_url)
    try:
        first = ingest_dir(folder, engine, CoreSettings())
        assert first.rejected_rows == 0, first.issues[:5]
        assert {t.table: t.loaded for t in first.tables} == counts
        frames = load_frames(engine)
        assert {name: len(frames[name]) for name in counts} == counts
        # the optional tables datagen does not write (unobserved_weeks) stay empty
        assert all(f.empty for name, f in frames.items() if name not in counts)
        second = ingest_dir(folder, engine, CoreSettings())
        assert second.loaded_rows == 0 and sum(t.updated for t in second.tables) == 0
        assert {t.table: t.already_present for t in second.tables} == counts
    finally:
        engine.dispose()


def _inject_bad_rows(folder: Path) -> int:
    """Append 4 bad orders (negative quantity, unknown variant, bad date, duplicate id)."""
    path = folder / "orders.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    good = rows[0]
    bad = [
        {**good, "order_id": "BAD-NEG", "quantity": "-2"},
        {**good, "order_id": "BAD-VAR", "variant_id": "NO-SUCH-VARIANT"},
        {**good, "order_id": "BAD-DATE", "order_date": "27/11/2026"},
        {**good, "quantity": "1"},  # the first row's order_id again
    ]
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(good))
        writer.writerows(bad)
    return len(rows)


def test_bad_rows_listed_exit_zero_unless_strict(tiny_dir, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(tiny_dir[0], folder)
    n_good = _inject_bad_rows(folder)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    report_csv = tmp_path / "bad-rows.csv"

    result = _invoke(["ingest", str(folder), "--report", str(report_csv), "--quiet"], db)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "orders" in out and f"{n_good + 4}" in out  # read count in the summary table
    for reason in ("must be > 0", "unknown variant_id", "malformed date", "duplicate order_id"):
        assert reason in out
    with report_csv.open() as fh:
        listed = list(csv.DictReader(fh))
    assert [(r["file"], r["row"]) for r in listed] == [
        ("orders.csv", str(n_good + i)) for i in range(1, 5)
    ]
    orders = load_frames(make_engine(db), ["orders"])["orders"]
    assert len(orders) == n_good

    strict = _invoke(["ingest", str(folder), "--strict", "--quiet"], db)
    assert strict.exit_code == 1
    assert strict.stderr.strip().splitlines() == [
        "error: 4 rows rejected (--strict); good rows were loaded"
    ]


def test_json_output(tiny_dir, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    result = _invoke(["ingest", str(tiny_dir[0]), "--json"], db)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["totals"]["loaded"] == sum(tiny_dir[1].values())
    assert payload["totals"]["rejected"] == 0 and payload["issues"] == []


@pytest.mark.parametrize("arg", ["does-not-exist"])
def test_missing_folder_is_a_user_error(arg: str, tmp_path: Path) -> None:
    from services.common.errors import InvalidArgument

    result = _invoke(["ingest", str(tmp_path / arg)], f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(result.exception, InvalidArgument)
    assert "not a folder" in str(result.exception)


def test_real_command_exit_codes(mini_dir: Path, tmp_path: Path) -> None:
    """The real ``tailorline`` entry point: 0 with bad rows, 1 with --strict, 2 on a bad DIR."""
    import subprocess
    import sys

    with (mini_dir / "orders.csv").open("a") as fh:
        fh.write("O9,c9,,V1,,-1,40,2024-03-01,2024-03-15,stock,0\n")
    db = f"sqlite:///{tmp_path / 's.db'}"
    repo = Path(__file__).resolve().parents[2]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "services.cli", "--db", db, "ingest", "--quiet", *args]
        return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120)

    assert run(str(mini_dir)).returncode == 0
    strict = run(str(mini_dir), "--strict")
    assert strict.returncode == 1
    assert strict.stderr.strip() == "error: 1 rows rejected (--strict); good rows were loaded"
    missing = run(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_datagen_parquet_loads_like_csv(tiny_dir, tmp_path: Path) -> None:
    from services.datagen import generate

    folder = tmp_path / "tiny-parquet"
    summary = generate("tiny", 1, folder, "parquet")
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    csv_engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        report = ingest_dir(folder, engine, CoreSettings())
        assert report.rejected_rows == 0, report.issues[:5]
        assert {t.table: t.loaded for t in report.tables} == dict(summary.counts)
        ingest_dir(tiny_dir[0], csv_engine, CoreSettings())
        from_parquet, from_csv = load_frames(engine), load_frames(csv_engine)
        for name, frame in from_csv.items():
            pd.testing.assert_frame_equal(from_parquet[name], frame, check_exact=False)
    finally:
        engine.dispose()
        csv_engine.dispose()


def test_unreachable_store_is_one_clear_error(mini_dir: Path) -> None:
    from services.common.errors import Unavailable
    from services.store.testing import free_port

    url = f"postgresql://nobody:s3cret@127.0.0.1:{free_port()}/nothing"  # nothing listens
    result = _invoke(["ingest", str(mini_dir), "--quiet"], url)
    assert isinstance(result.exception, Unavailable)
    message = str(result.exception)
    assert "not usable" in message and "127.0.0.1" in message and "s3cret" not in message


def test_ingest_into_the_homes_store_makes_the_homes_own_key_once(
    tiny_dir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key configured and no dev flag: ingest into the home's SQLite store makes
    ``<home>/pseudonym_key`` (0600) and keeps it; the stored pseudonyms are keyed by it."""
    from services.cli import main

    folder, _ = tiny_dir
    home = tmp_path / "home"
    monkeypatch.delenv("TAILORLINE_DEV_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("TAILORLINE_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("TAILORLINE_DB_URL", raising=False)
    main(["--home", str(home), "ingest", str(folder), "--quiet"])
    key_file = home / "pseudonym_key"
    key = key_file.read_text()
    assert len(key.strip()) >= 32 and (key_file.stat().st_mode & 0o777) == 0o600
    main(["--home", str(home), "ingest", str(folder), "--quiet"])
    assert key_file.read_text() == key
