"""The README's main command, end to end on the tiny preset, through the real local stack
(KServe predictor, Ray Serve optimizer, gateway): every step runs, the plan comes back through the
gateway, feedback events are stored once, the report holds what a planner reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    report = tmp_path / "report.html"
    args = ["--home", str(home), "--json", "demo", "--preset", "tiny", "--horizon", "4"]
    args += ["--time-limit", "20", "--report", str(report)]
    result = subprocess.run(
        [sys.executable, "-c", "from services.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert [s["step"] for s in out["steps"]] == [
        "datagen",
        "ingest",
        "train",
        "up",
        "plan",
        "feedback",
        "report",
    ]
    summary = out["summary"]
    assert summary["weeks"] == 4
    assert summary["status"] in ("optimal", "feasible")
    # the default mode: expected profit over demand scenarios, with its spread, in whole units
    assert summary["planned for"].startswith("expected profit over 32 demand scenarios")
    # the tiny world loses money on its dear family changeovers: no sign, but a consistent spread
    assert summary["profit P10"] <= summary["expected profit"] <= summary["profit P90"]
    assert summary["units planned"] == int(summary["units planned"])
    assert 0 < summary["mean line utilisation"] <= 1.0 + 1e-6
    page = report.read_text(encoding="utf-8")
    # profit spread, demand vs supply per family, capacity per line, cost breakdown
    assert page.count("<svg") >= 4
    assert "Production plan" in page and "Cost breakdown" in page
    assert "demand scenarios: P10-P90" in page and "planned production (dashed)" in page
    assert (home / "tailorline.db").exists()
    # version 1 is the hold-out fit, version 2 its refit on every week: the one served
    assert (home / "models" / "demand" / "current").read_text().strip() == "2"
    feedback = next(s["result"] for s in out["steps"] if s["step"] == "feedback")
    assert "0 rejected" in feedback and "a retry of 5 stored 0 (5 duplicates)" in feedback
