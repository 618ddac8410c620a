"""`tailorline predictor` argument errors and the predictor settings, without a server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.predictor.server import kserve_argv, parse_args
from services.predictor.settings import PredictorSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOT = "from services.cli import main; main()"


def run_predictor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BOOT, "predictor", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_repository_is_one_line_naming_models(tmp_path: Path) -> None:
    result = run_predictor("--models", str(tmp_path / "nope"), "--http-port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: models: model repository {tmp_path / 'nope'} does not exist"
    ]


def test_repository_without_served_versions_says_train_first(tmp_path: Path) -> None:
    (tmp_path / "demand").mkdir()
    result = run_predictor("--models", str(tmp_path))
    assert result.returncode == 2
    assert "no complete version of model 'demand'" in result.stderr
    assert "tailorline train" in result.stderr
    assert "Traceback" not in result.stderr


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAILORLINE_PREDICTOR_HTTP_PORT", "9999")
    monkeypatch.setenv("TAILORLINE_PREDICTOR_GRPC_PORT", "9998")
    settings = parse_args(["--models", str(tmp_path), "--grpc-port", "7001"])
    assert (settings.http_port, settings.grpc_port, settings.models_dir) == (9999, 7001, tmp_path)
    argv = kserve_argv(settings)
    assert "--http_port=9999" in argv and "--grpc_port=7001" in argv and "--workers=1" in argv


def test_settings_reject_unknown_fields_and_document_every_field() -> None:
    with pytest.raises(ValidationError):
        PredictorSettings(http_prot=1)  # type: ignore[call-arg]
    undocumented = [n for n, f in PredictorSettings.model_fields.items() if not f.description]
    assert undocumented == []
