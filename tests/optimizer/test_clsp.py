"""CLSP mode against published lot-sizing results (Trigeiro, Thomas & McClain 1989)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from optimizer import ProblemInvalid, SolveOptions, solve
from optimizer.core.trigeiro import parse, read, to_problem
from services.cli import main

# one item, demand 10 in each of 3 periods, capacity 100, setup cost 100, holding 1
TINY = "1 3\n1\n100\n1 1 0 100\n10\n10\n10\n"
FAST = ("F4", "F5")  # the quickest F instances: ~10 s each under a load average of 8


def reference(lotsizing_dir: Path) -> dict[str, float]:
    with open(lotsizing_dir / "reference.csv", newline="") as fh:
        return {r["instance"].removesuffix(".DAT"): float(r["value"]) for r in csv.DictReader(fh)}


@pytest.mark.parametrize("name", FAST)
def test_fast_instances_reach_the_reference_optimum(lotsizing_dir: Path, name: str) -> None:
    plan = solve(
        to_problem(read(lotsizing_dir / f"{name}.DAT")),
        SolveOptions(time_limit_s=120, mip_rel_gap=0),
    )
    assert plan.status == "optimal"
    assert plan.objective == pytest.approx(reference(lotsizing_dir)[name], abs=0.5)
    assert plan.costs.setup + plan.costs.holding == pytest.approx(plan.objective)
    assert plan.costs.revenue == 0


def test_reader_handles_two_demand_blocks_and_the_legend(lotsizing_dir: Path) -> None:
    inst = read(lotsizing_dir / "G73.DAT")
    assert (inst.items, inst.periods, inst.capacity) == (24, 30, 3016.0)
    assert inst.demand[0][:2] == (0.0, 89.0)  # item 1, periods 1-2 (first block)
    assert inst.demand[15][:2] == (86.0, 102.0)  # item 16 opens the second block
    assert inst.demand[23][0] == 96.0  # item 24: the row's stray 10th value is ignored


def test_reader_rejects_a_truncated_file() -> None:
    with pytest.raises(ProblemInvalid) as err:
        parse("2 3\n1\n100\n1 1 10 100\n1 1 10 100\n5 5\n")
    assert err.value.field == "file"


def test_tiny_instance_matches_hand_computed_optimum() -> None:
    # one item, demand 10 in each of 3 periods, setup cost 100, holding 1 per unit and period:
    # one setup in period 1 costs 100 + 10*1 + 10*2 = 130; the alternatives cost more.
    inst = parse(TINY)
    plan = solve(to_problem(inst), SolveOptions(time_limit_s=10, mip_rel_gap=0))
    assert plan.objective == pytest.approx(130.0)
    assert [(pl.period, pl.quantity) for pl in plan.lines] == [(0, 30.0)]


def test_cli_prints_json_with_the_objective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dat = tmp_path / "TINY.DAT"
    dat.write_text(TINY)
    main(["solve-clsp", str(dat), "--time-limit", "30", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "optimal"
    assert out["objective"] == pytest.approx(130.0)
    assert (out["items"], out["periods"]) == (1, 3)
    assert out["plan"] == [{"item": "item1", "period": 1, "quantity": 30.0}]


def test_cli_bad_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.DAT"
    bad.write_text("3 2\n1\n")
    with pytest.raises(SystemExit) as ex:
        main(["solve-clsp", str(bad)])
    assert ex.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "bad.DAT" in err and "\n" not in err
