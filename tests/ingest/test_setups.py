"""Family changeover standards, the changeovers that happened, a run's setup hours (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from services.common.settings import CoreSettings
from services.ingest import ingest_dir
from services.store.frames import load_frames

FAMILY_SETUPS = """line_id,family_id,setup_hours,setup_cost
L1,SHIRT,4,300
L2,shirt,3.5,
L1,NOPE,4,300
L2,JEANS,-1,300
"""
CHANGEOVERS = """changeover_id,line_id,family_id,date,hours,cost
C1,L1,SHIRT,2024-03-04,4.2,310
C2,L2,SHIRT,2024-03-05,0,280
C3,L9,SHIRT,2024-03-05,3,280
C1,L1,SHIRT,2024-03-04,4.2,310
"""
PRODUCTION = """record_id,line_id,variant_id,date,quantity,hours,cost,scrap,setup_hours
P1,L1,V1,2024-03-05,10,5,100,1,0.5
P2,L2,V2,2024-03-06,5,3,60,0,
P3,L2,V2,2024-03-07,5,3,60,0,-0.5
"""


def test_setups_are_validated_and_stored(mini_dir: Path, engine) -> None:
    (mini_dir / "family_setups.csv").write_text(FAMILY_SETUPS)
    (mini_dir / "changeovers.csv").write_text(CHANGEOVERS)
    (mini_dir / "production.csv").write_text(PRODUCTION)
    report = ingest_dir(mini_dir, engine, CoreSettings())
    tables = {t.table: t for t in report.tables}
    assert (tables["family_setups"].loaded, tables["family_setups"].rejected) == (2, 2)
    assert (tables["changeovers"].loaded, tables["changeovers"].rejected) == (1, 3)
    assert (tables["production"].loaded, tables["production"].rejected) == (2, 1)
    reasons = {(i.file, i.column, i.reason) for i in report.issues}
    assert ("family_setups.csv", "family_id", "unknown family_id (not in families)") in reasons
    assert ("family_setups.csv", "setup_hours", "must be >= 0") in reasons
    assert ("changeovers.csv", "hours", "must be > 0") in reasons
    assert ("changeovers.csv", "line_id", "unknown line_id (not in lines)") in reasons
    assert ("production.csv", "setup_hours", "must be >= 0") in reasons
    assert any(i.reason.startswith("duplicate changeover_id") for i in report.issues)
    f = load_frames(engine, ["family_setups", "changeovers", "production"])
    fs = f["family_setups"].set_index(["line_id", "family_id"])
    assert fs.loc[("L2", "SHIRT"), "setup_cost"] == 0.0  # optional: its default
    assert f["changeovers"]["hours"].tolist() == [4.2]
    prod = f["production"].set_index("record_id")["setup_hours"]
    assert prod["P1"] == pytest.approx(0.5) and pd.isna(prod["P2"])  # not recorded stays empty
    again = ingest_dir(mini_dir, engine, CoreSettings())
    assert {t.table: t for t in again.tables}["changeovers"].loaded == 0  # idempotent
