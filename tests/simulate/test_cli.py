"""``tailorline simulate``: the --json shape, and bad options (--seeds included) as one-line
errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.simulate.accounting import WeekBook
from services.simulate.commands import parse_seeds
from services.simulate.hindsight import Hindsight
from services.simulate.loop import POLICIES, PolicyTrace, SeedResult, SimOptions, SimResult
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
        (["--scenarios", "0"], "--scenarios"),
        (["--hindsight-time-limit", "0"], "--hindsight-time-limit"),
        (["--seeds", "3,x"], "--seeds"),
        (["--seeds", "3,,5"], "--seeds"),
        (["--seeds", ""], "--seeds"),
        (["--seeds", "3,3"], "--seeds"),
        (["--seeds", "-1"], "--seeds"),
        (["--seeds", "3", "--seed", "4"], "--seeds"),
        (["--seed", "-2"], "--seed"),
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


def test_seeds_parse_in_order_and_bad_lists_name_the_option() -> None:
    assert parse_seeds("3,5,8") == (3, 5, 8)
    assert parse_seeds(" 8 , 3 ") == (8, 3)
    with pytest.raises(Exception, match="given twice") as err:
        parse_seeds("3,5,3")
    assert err.value.field == "--seeds"  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="at most 20"):
        parse_seeds(",".join(str(i) for i in range(21)))


def _book(revenue: float, demand: float, sold: float) -> WeekBook:
    return WeekBook(revenue, 0.0, 0.0, 0.0, 0.0, 0.0, demand, sold, sold)


def _run(seed: int, revenue: dict[str, float], tmp_path: Path) -> SeedResult:
    traces = {}
    for name in (*POLICIES, "hindsight"):
        trace = PolicyTrace(name)
        for _ in range(2):
            trace.books.append(_book(revenue[name], 10.0, 8.0))
            trace.abs_error.append(3.0)
        traces[name] = trace
    return SeedResult(
        seed=seed,
        home=tmp_path / f"seed-{seed}",
        first_week="2026-11-23",
        shift_week=1,
        traces=traces,
        hindsight=Hindsight(
            bound=2 * revenue["hindsight"] + 10.0,
            books=traces["hindsight"].books,
            status="feasible",
            gap=0.01,
            seconds=1.0,
        ),
        retrains=(
            [RetrainRecord(1, "drift", True, 0.7, 0.6, "job1", "gateway")] if seed == 3 else []
        ),
        models=[{"version": 2, "status": "served", "served": True}],
        timings={"loop_s": 1.0},
        week_correlation=[0.3, 0.21234],
    )


def test_the_json_has_the_documented_shape_and_the_report_charts_each_policy(
    tmp_path: Path,
) -> None:
    base = {
        "tailorline": 95.0,
        "quantile_0.5": 90.0,
        "quantile_0.7": 80.0,
        "quantile_0.9": 60.0,
        "oracle": 100.0,
        "naive": 60.0,
        "hindsight": 120.0,
    }
    runs = [
        _run(3, base, tmp_path),
        _run(5, {**base, "quantile_0.7": 110.0, "tailorline": 99.0}, tmp_path),
    ]
    result = SimResult(options=SimOptions(weeks=2, preset="tiny", seeds=(3, 5)), home=tmp_path,
                       runs=runs)  # fmt: skip
    out = json.loads(json.dumps(result.to_json()))
    assert set(out) == {"seeds", "policies", "checks", "retrains", "week_correlation"}
    assert out["week_correlation"] == {"3": [0.3, 0.2123], "5": [0.3, 0.2123]}
    assert out["seeds"] == [3, 5]
    assert list(out["policies"]) == [
        "tailorline",
        "quantile_0.5",
        "quantile_0.7",
        "quantile_0.9",
        "oracle",
        "naive",
        "hindsight",
    ]
    keys = {"profit", "profit_by_seed", "service_level", "wape", "pct_of_hindsight"}
    for name, entry in out["policies"].items():
        assert keys <= set(entry), name
    # 2 weeks x revenue; hindsight's profit is its bound (2 x 120 + 10 = 250)
    assert out["policies"]["tailorline"] == {
        "profit": 194.0,
        "profit_by_seed": {"3": 190.0, "5": 198.0},
        "service_level": 0.8,
        "wape": 0.3,
        "pct_of_hindsight": 77.6,
    }
    assert out["policies"]["hindsight"]["profit_by_seed"] == {"3": 250.0, "5": 250.0}
    assert out["policies"]["hindsight"]["plan_profit_by_seed"] == {"3": 240.0, "5": 240.0}
    checks = out["checks"]
    assert checks["by_seed"]["3"] == {
        "best_quantile": "quantile_0.5",
        "tailorline_over_best_quantile_pct": 5.56,
    }
    assert checks["by_seed"]["5"]["best_quantile"] == "quantile_0.7"
    assert checks["by_seed"]["5"]["tailorline_over_best_quantile_pct"] == -10.0
    assert checks["best_quantile_on_mean"] == "quantile_0.7"  # 190 on the mean vs 0.5's 180
    assert checks["tailorline_over_best_quantile_on_mean_pct"] == pytest.approx(2.11)
    assert checks["policies_above_hindsight"] == []
    assert out["retrains"] == [
        {
            "seed": 3,
            "week": 1,
            "trigger": "drift",
            "promoted": True,
            "metric_before": 0.7,
            "metric_after": 0.6,
        }
    ]
    page = render(result)
    assert "Cumulative realised profit per policy" in page
    # per seed: profit and service level chart every policy (7), WAPE the planning ones (6)
    assert page.count("<polyline") == 2 * (7 + 6 + 7)
    assert "77.6%" in page  # tailorline's share of the hindsight bound


def test_a_run_logged_to_a_file_reports_each_week_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Under nohup or CI (stderr not a terminal) a 70-minute run is not silent: a plain line per
    simulated week on stderr, and nothing on stdout, which --json keeps for its document."""
    from services.simulate.commands import _progress

    opts = SimOptions(weeks=26, preset="small", seeds=(3, 5))
    bar, _say, on_week = _progress(opts, quiet=True)
    assert bar is None and on_week is not None
    on_week(5, 0, 26)
    out = capsys.readouterr()
    assert out.err.strip() == "seed 5: week 1/26 done" and out.out == ""
