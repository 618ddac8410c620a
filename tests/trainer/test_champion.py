"""Champion/challenger on the same rolling origins: only a challenger with evidence is served,
and what is served is its refit on every week."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.common.errors import InvalidArgument
from services.store import schema
from services.store.jobs import finish_job, start_job
from services.training.champion import decide


def _job(engine, job_id):
    t = schema.retrain_jobs
    with engine.connect() as conn:
        return conn.execute(select(t).where(t.c.job_id == job_id)).mappings().one()


def test_a_worse_challenger_stays_a_candidate(
    fresh, panel, good_fit, bad_fit, serve, registry, base
) -> None:
    engine, repo = fresh
    v1 = serve(engine, repo, good_fit)
    job = start_job(engine, {"test": True})
    d = decide(engine, repo, panel, bad_fit.trained, base, job_id=job)
    finish_job(engine, job, result=d.to_dict())
    assert not d.promoted
    assert d.champion_version == v1 and d.challenger_version == v1 + 1
    assert d.challenger > 2 * d.champion
    # the evidence: 3 origins of 2 weeks in the 6-week hold-out, each lost, and the paired test
    assert [o["challenger_better"] for o in d.evidence["origins"]] == [False, False, False]
    assert d.evidence["test"]["p_value"] > 0.5 and d.refit is None
    assert d.champion_scored_as.startswith("served model")
    assert repo.current("demand") == v1 and d.served_version == v1
    assert registry(engine) == [(v1, "served"), (v1 + 1, "candidate")]
    row = _job(engine, job)
    assert row["status"] == "succeeded"
    assert row["result"]["champion"] == d.champion and row["result"]["challenger"] == d.challenger
    assert row["result"]["promoted"] is False


def test_a_better_challenger_is_promoted(
    fresh, panel, good_fit, bad_fit, serve, registry, base
) -> None:
    engine, repo = fresh
    v1 = serve(engine, repo, bad_fit)
    d = decide(engine, repo, panel, good_fit.trained, base, job_id="j1", metric="pinball")
    assert d.promoted and d.metric == "pinball", d.reason
    assert d.challenger < d.champion
    assert d.evidence["wins"] == 3 and d.evidence["test"]["p_value"] < 0.05
    # served: the challenger's configuration refit on every week, the hold-out included
    assert d.challenger_version == v1 + 1 and d.refit["version"] == v1 + 2 == d.served_version
    assert repo.current("demand") == v1 + 2
    assert d.refit["train_until"] == str(panel.last_week.date()) and d.refit["refit_of"] == v1 + 1
    held = repo.read_metadata("demand", v1 + 1)["data_range"]["train_until"]
    assert held < d.refit["train_until"]
    assert repo.read_metadata("demand", v1 + 2)["refit_of"] == v1 + 1
    assert registry(engine) == [(v1, "retired"), (v1 + 1, "candidate"), (v1 + 2, "served")]


def test_the_margin_keeps_a_challenger_that_is_not_better_enough(
    fresh, panel, good_fit, bad_fit, serve, registry, base
) -> None:
    engine, repo = fresh
    v1 = serve(engine, repo, bad_fit)
    # the sound model is better, but not by 99%: it stays a candidate
    d = decide(engine, repo, panel, good_fit.trained, base, job_id="j2", margin=0.99)
    assert d.challenger < d.champion and not d.promoted
    assert "below the margin 99.0%" in d.reason
    assert repo.current("demand") == v1


def test_an_unknown_metric_is_rejected_before_anything_is_written(
    fresh, panel, good_fit, registry, base
) -> None:
    engine, repo = fresh
    with pytest.raises(InvalidArgument):
        decide(engine, repo, panel, good_fit.trained, base, job_id="j3", metric="mape")
    assert repo.versions("demand") == [] and registry(engine) == []
