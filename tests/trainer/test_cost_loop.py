"""The cost model in the loop: champion/challenger under the same rule, refit, predictions kept."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from sqlalchemy import func, select

from services.registry.promote import promote
from services.store import schema
from services.training.cost_loop import _publish, _range, decide_cost
from services.training.evidence import PromotionRule
from services.training.train import train_cost

HOLDOUT = 6


@pytest.fixture(scope="module")
def cost_setup(tiny_store):
    from services.store.db import make_engine
    from services.store.frames import load_frames
    from tests.trainer.conftest import BASE as base

    engine = make_engine(tiny_store.db_url)
    frames = load_frames(engine)
    engine.dispose()
    dates = pd.to_datetime(frames["production"]["date"])
    last = dates.max() - pd.to_timedelta(dates.max().weekday(), unit="D")
    cutoff = last - pd.Timedelta(weeks=HOLDOUT)
    cfg = replace(base, holdout_weeks=HOLDOUT)
    wrong = {**frames, "production": frames["production"].assign(
        cost=frames["production"]["cost"] * 5.0)}  # fmt: skip
    sound = train_cost(frames, cutoff, cfg)
    bad = train_cost(wrong, cutoff, cfg)
    return frames, cutoff, cfg, sound, bad


def _serve(engine, repo, frames, cutoff, cfg, trained) -> int:
    meta = {"data_range": _range(frames, cutoff), "config": {}, "metrics": trained.metrics}
    v = _publish(engine, repo, trained, meta)
    promote(engine, repo, "cost", v)
    return v


def test_a_better_cost_model_is_promoted_and_its_refit_served(fresh, cost_setup) -> None:
    engine, repo = fresh
    frames, cutoff, cfg, sound, bad = cost_setup
    v1 = _serve(engine, repo, frames, cutoff, cfg, bad)
    d = decide_cost(
        engine, repo, frames, cutoff, cfg, job_id="c1", rule=PromotionRule(), challenger=sound
    )
    assert d["promoted"], repr(d["evidence"]["test"])
    assert d["champion_scored_as"].startswith("served model")
    assert d["challenger"] < 0.5 * d["champion"]
    assert d["evidence"]["wins"] == 3 and d["evidence"]["test"]["p_value"] < 0.05
    assert d["challenger_version"] == v1 + 1 and d["served_version"] == v1 + 2
    assert repo.current("cost") == v1 + 2 and d["refit"]["refit_of"] == v1 + 1
    # the served refit's metadata says it held no week out and whose refit it is
    held, full = repo.read_metadata("cost", v1 + 1), repo.read_metadata("cost", v1 + 2)
    assert held["data_range"]["holdout_weeks"] == HOLDOUT and "refit_of" not in held
    assert full["data_range"]["holdout_weeks"] == 0 and full["config"]["holdout_weeks"] == 0
    assert full["refit_of"] == v1 + 1 and full["metrics"] == held["metrics"]
    assert full["data_range"]["train_until"] == full["data_range"]["last_week"]
    with engine.connect() as conn:  # the served version's predictions, for the monitoring
        n = conn.execute(
            select(func.count())
            .select_from(schema.cost_predictions)
            .where(schema.cost_predictions.c.model_version == v1 + 2)
        ).scalar()
    assert n > 0


def test_a_worse_cost_model_stays_a_candidate(fresh, cost_setup) -> None:
    engine, repo = fresh
    frames, cutoff, cfg, sound, bad = cost_setup
    v1 = _serve(engine, repo, frames, cutoff, cfg, sound)
    d = decide_cost(
        engine, repo, frames, cutoff, cfg, job_id="c2", rule=PromotionRule(), challenger=bad
    )
    assert not d["promoted"] and d["refit"] is None
    assert d["evidence"]["wins"] == 0 and "candidate" in d["reason"]
    assert repo.current("cost") == v1 and d["challenger_version"] == v1 + 1
