"""``tailorline simulate``: the --json shape, and bad options as one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.simulate.accounting import WeekBook
from services.simulate.loop import PolicyTrace, SimOptions, SimResult
from services.simulate.report import render
from services.simulate.retrain import RetrainRecord


def _main(args: list[str]) -> None:
    from services import cli
    from services.simulate import commands

    names = {c.name for c in cli.app.registered_commands}
    if "simulate" not in names:
        commands.register(cli.app)
    cli.main(["simulate", *args])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--weeks", "0"], "--weeks"),
        (["--weeks", "27", "--preset", "small"], "--weeks"),
        (["--preset", "huge"], "preset"),
        (["--horizon", "0"], "--horizon"),
        (["--time-limit", "-1"], "--time-limit"),
        (["--service-level", "1.5"], "--service-level"),
    ],
)
def test_a_bad_option_is_one_line_on_stderr_and_exit_2(
    args: list[str], field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as code:
        _main([*args, "--home", str(tmp_path / "run")])
    assert code.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err
    assert not (tmp_path / "run").exists()  # nothing started


def test_a_home_that_is_not_empty_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.db").write_text("x")
    with pytest.raises(SystemExit) as code:
        _main(["--preset", "tiny", "--weeks", "2", "--home", str(tmp_path)])
    assert code.value.code == 2
    assert "not an empty folder" in capsys.readouterr().err


def _book(profit_revenue: float, demand: float, sold: float) -> WeekBook:
    return WeekBook(profit_revenue, 0.0, 0.0, 0.0, 0.0, 0.0, demand, sold, sold)


def test_the_json_has_the_documented_shape_and_the_report_charts_each_policy(
    tmp_path: Path,
) -> None:
    traces = {}
    for name, revenue in (("tailorline", 90.0), ("oracle", 100.0), ("naive", 60.0)):
        trace = PolicyTrace(name)
        for _ in range(2):
            trace.books.append(_book(revenue, 10.0, 8.0))
            trace.abs_error.append(3.0)
        traces[name] = trace
    record = RetrainRecord(1, "drift", True, 0.7, 0.6, "job1", "gateway")
    result = SimResult(
        options=SimOptions(weeks=2, preset="tiny"),
        home=tmp_path,
        first_week="2026-11-23",
        shift_week=1,
        traces=traces,
        retrains=[record],
        models=[{"version": 2, "status": "served", "served": True}],
        timings={"loop_s": 1.0},
    )
    out = json.loads(json.dumps(result.to_json()))
    assert set(out) == {"policies", "retrains"}
    assert set(out["policies"]) == {"tailorline", "oracle", "naive"}
    assert out["policies"]["tailorline"] == {"profit": 180.0, "service_level": 0.8, "wape": 0.3}
    assert out["retrains"] == [
        {"week": 1, "trigger": "drift", "promoted": True, "metric_before": 0.7, "metric_after": 0.6}
    ]
    page = render(result)
    assert "Cumulative realised profit per policy" in page
    assert page.count("<polyline") == 9  # three charts, three policies each
    assert "90.0%" in page  # tailorline's share of the oracle's profit
