"""The command line's error contract: one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from services import cli
from services.common.errors import InvalidArgument


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from services.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unknown_command_is_a_usage_error() -> None:
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
    assert "Traceback" not in result.stderr


def test_user_error_prints_one_line_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = typer.Typer()

    @app.command()
    def boom() -> None:
        raise InvalidArgument("must be positive", field="horizon")

    @app.command()
    def other() -> None:  # a second command keeps typer in multi-command mode
        pass

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_register_all", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["boom"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: horizon: must be positive\n"


def test_help_lists_the_global_options() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--db", "--models", "--json"):
        assert option in result.stdout


def test_a_commands_exit_code_reaches_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()

    @app.command()
    def fail() -> None:
        raise typer.Exit(3)

    @app.command()
    def other() -> None:
        pass

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_register_all", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fail"])
    assert exit_info.value.code == 3


@pytest.mark.parametrize("debug", [False, True])
def test_tensorflow_log_noise_only_with_debug(debug: bool) -> None:
    """TensorFlow's import-time C++ log (oneDNN, the CUDA probe, absl's banner) and the warnings
    of its Python logger ("WARNING:tensorflow:... triggered tf.function retracing") stay out of
    the terminal unless --debug; its errors still show."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = (
        "from services.cli import quiet_libraries; "
        f"quiet_libraries({debug}); "
        "import tensorflow as tf; tf.constant([1.0]) * 2; "
        "tf.get_logger().warning('tl-probe-warning'); tf.get_logger().error('tl-probe-error')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env
    )
    assert result.returncode == 0, result.stderr[-500:]
    noisy = "oneDNN" in result.stderr or "absl::InitializeLog" in result.stderr
    assert noisy == debug, result.stderr[:300]
    assert ("tl-probe-warning" in result.stderr) == debug, result.stderr[-300:]
    assert "tl-probe-error" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--mode", "optimistic"), "--mode: must be one of expected_profit, quantile"),
        (("--scenarios", "0"), "--scenarios: must be between 1 and 512"),
        (("--frozen-periods", "2"), "--frozen-periods: frozen periods keep the previous plan"),
        (("--method", "greedy"), "--method: must be one of auto, monolithic"),
        (("--week-correlation", "1"), "--week-correlation: must lie in [0, 1)"),
    ],
)
def test_plan_options_are_checked_before_any_gateway_call(args: tuple[str, ...], says: str) -> None:
    # no gateway runs on this port: the options must be refused before a connection is tried
    result = run_cli("plan", "--gateway", "127.0.0.1:9", *args)
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0], result.stderr
