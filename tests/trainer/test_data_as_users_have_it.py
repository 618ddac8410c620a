"""Data the way users have it: demand only, weeks not observed, a store and a model folder that
disagree."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.common.errors import FailedPrecondition
from services.features import observed
from services.features.demand import build_training_frame
from services.features.tables import read_dataset_folder
from services.registry.repository import ModelRepository
from services.store.models import insert_version
from services.training.run import run_training
from services.training.train import holdout_rows, observed_rows


def test_a_demand_only_data_set_trains_and_serves_the_demand_model(
    tiny_store, tmp_path: Path, base
) -> None:
    folder = tmp_path / "demand-only"
    folder.mkdir()
    for name in ("families", "family_attributes", "variants", "orders"):
        shutil.copy(tiny_store.data / f"{name}.csv", folder / f"{name}.csv")
    frames = read_dataset_folder(folder)
    repo = ModelRepository(tmp_path / "models")
    report = run_training(frames, repo, replace(base, epochs=2))
    assert report["cost"] == {
        "skipped": "cost model skipped: no lines and no production records (the demand-only "
        "data set trains the demand model alone; planning needs them)"
    }
    assert report["versions"]["cost"] is None and repo.versions("cost") == []
    # the hold-out fit (v1) is scored, its refit on every week (v2) is what is served
    assert report["refit"]["demand"]["holdout_fit"] == 1
    assert report["versions"]["demand"] == 2 == repo.current("demand")
    assert report["demand"]["model"]["wape"] > 0
    # `tailorline train` without --json says so in its own words, the demand tables above it
    from rich.console import Console

    from services.training.commands import render_report

    buf = io.StringIO()
    render_report(report, Console(file=buf, width=100))
    text = buf.getvalue()
    assert report["cost"]["skipped"] in text and "LightGBM" in text
    assert "versions served: demand 2, cost none (not trained)" in text


def test_unobserved_weeks_are_neither_trained_on_nor_scored(panel) -> None:
    variants = panel.variants
    vid = str(variants["variant_id"].iloc[0])
    last = panel.n_weeks - 1
    gap = [panel.week_at(w) for w in (last - 20, last - 19, last - 2)]  # training + hold-out
    closed = panel.week_at(last - 4)  # a week everything was closed
    table = pd.DataFrame(
        {
            "week": [*gap, closed],
            "family_id": ["", "", "", ""],
            "variant_id": [vid, vid, vid, ""],
        }
    )
    p = observed.attach(replace(panel), {"unobserved_weeks": table})
    assert int(p.unobserved.sum()) == 3 + len(variants)
    frame = build_training_frame(p, horizon=4, until_week=p.week_at(last))
    kept = observed_rows(p, frame)
    mine = kept[kept["variant_id"] == vid]
    assert not set(gap) & set(pd.to_datetime(mine["target_week"]))
    assert not (pd.to_datetime(kept["target_week"]) == closed).any()
    assert len(frame) - len(kept) == int(
        (frame["variant_id"].eq(vid) & pd.to_datetime(frame["target_week"]).isin(gap)).sum()
        + pd.to_datetime(frame["target_week"]).eq(closed).sum()
    )
    rows = holdout_rows(p, last - 6, 6)
    weeks = pd.to_datetime(rows.loc[rows["variant_id"] == vid, "target_week"])
    assert gap[2] not in set(weeks) and closed not in set(pd.to_datetime(rows["target_week"]))
    assert len(holdout_rows(panel, last - 6, 6)) > len(rows)  # the plain panel keeps them


def test_a_series_with_a_gap_trains(panel, base) -> None:
    from services.training.train import train_demand

    vid = str(panel.variants["variant_id"].iloc[0])
    table = pd.DataFrame(
        {"week": [panel.week_at(w) for w in range(10, 16)], "variant_id": vid, "family_id": ""}
    )
    p = observed.attach(replace(panel), {"unobserved_weeks": table})
    trained = train_demand(p, replace(base, epochs=1))
    assert np.isfinite(trained.metrics["model"]["wape"])


def test_a_fresh_model_folder_on_a_used_store_is_refused_before_training(
    fresh, tiny_store, base
) -> None:
    engine, repo = fresh
    for v in (1, 2):
        insert_version(engine, name="demand", version=v, path=f"/elsewhere/demand/{v}")
    frames = read_dataset_folder(tiny_store.data)
    with pytest.raises(FailedPrecondition) as err:
        run_training(frames, repo, base, engine=engine)
    assert err.value.field == "models"
    assert "the store records demand versions 1..2 but the model folder" in str(err.value)
    assert "the next version (1) is taken" in str(err.value)
    assert repo.versions("demand") == []  # nothing was trained


def test_a_used_model_folder_on_a_fresh_store_is_refused(fresh, tiny_store, base) -> None:
    engine, repo = fresh
    version, _ = repo.create_version("demand")
    repo.write_metadata("demand", version, {"name": "demand", "version": version})
    frames = read_dataset_folder(tiny_store.data)
    with pytest.raises(FailedPrecondition) as err:
        run_training(frames, repo, base, engine=engine)
    assert "holds demand versions 1 that the store does not record" in str(err.value)
