"""Weeks that were not observed, and a data set of only families, variants and orders."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.settings import CoreSettings
from services.ingest import ingest_dir
from services.store.frames import load_frames

from .conftest import MINI

UNOBSERVED = """week,family_id,variant_id,reason
2024-03-06,,,feed missing
2024-03-11,SHIRT,,store closed
2024-03-18,,V3,
2024-03-18,NOPE,,
"""


def test_unobserved_weeks_are_loaded_with_their_scope(mini_dir: Path, engine) -> None:
    (mini_dir / "unobserved_weeks.csv").write_text(UNOBSERVED)
    report = ingest_dir(mini_dir, engine, CoreSettings())
    table = {t.table: t for t in report.tables}["unobserved_weeks"]
    assert (table.read, table.loaded, table.rejected) == (4, 3, 1)
    assert any("unknown family_id" in i.reason for i in report.issues)
    frame = load_frames(engine, ["unobserved_weeks"])["unobserved_weeks"]
    rows = sorted(
        (str(w.date()), f, v, r or "")
        for w, f, v, r in frame[["week", "family_id", "variant_id", "reason"]].itertuples(
            index=False
        )
    )
    assert rows == [
        ("2024-03-04", "", "", "feed missing"),  # moved to its Monday
        ("2024-03-11", "SHIRT", "", "store closed"),
        ("2024-03-18", "", "V3", ""),
    ]
    again = ingest_dir(mini_dir, engine, CoreSettings())  # idempotent
    assert {t.table: t for t in again.tables}["unobserved_weeks"].loaded == 0


def test_a_demand_only_data_set_ingests(tmp_path: Path, engine) -> None:
    folder = tmp_path / "demand-only"
    folder.mkdir()
    for name in ("families.csv", "family_attributes.csv", "variants.csv", "orders.csv"):
        (folder / name).write_text(MINI[name])
    report = ingest_dir(folder, engine, CoreSettings())
    assert report.rejected_rows == 0
    frames = load_frames(engine)
    assert len(frames["orders"]) == 4 and frames["production"].empty and frames["lines"].empty


def test_planning_a_demand_only_store_names_the_missing_cost_inputs(tmp_path: Path, engine) -> None:
    from services.common.errors import Code, FailedPrecondition, code_of
    from services.planning.request import PlanRequest
    from services.planning.service import Planner

    folder = tmp_path / "demand-only"
    folder.mkdir()
    for name in ("families.csv", "family_attributes.csv", "variants.csv", "orders.csv"):
        (folder / name).write_text(MINI[name])
    ingest_dir(folder, engine, CoreSettings())

    def never(*_args):
        raise AssertionError("no downstream is asked before the inputs are checked")

    planner = Planner(engine, predict=never, inputs=never, solve=never)
    with pytest.raises(FailedPrecondition) as err:
        planner.prepare(PlanRequest(horizon=4, service_level=0.9))
    assert code_of(err.value) == Code.FAILED_PRECONDITION and err.value.field == "lines"
    assert str(err.value) == (
        "lines: planning needs cost inputs this store does not have: "
        "lines (weekly capacity hours); line_eligibility (which line makes which family); "
        "production records (the cost and "
        "processing-time model is trained on them). Ingest them (docs/data-format.md) and run "
        "`tailorline train`"
    )
