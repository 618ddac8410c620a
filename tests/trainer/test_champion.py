"""Champion/challenger on the same hold-out: only a better challenger is served."""

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
    # the served model's hold-out WAPE is its own training report's (same rows, same numbers)
    assert d.champion == pytest.approx(good_fit.trained.metrics["all_rows"]["wape"], abs=1e-4)
    assert d.challenger > 2 * d.champion
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
    assert d.promoted and d.metric == "pinball"
    assert d.challenger < d.champion
    assert repo.current("demand") == v1 + 1 == d.served_version
    assert registry(engine) == [(v1, "retired"), (v1 + 1, "served")]


def test_the_margin_keeps_a_challenger_that_is_not_better_enough(
    fresh, panel, good_fit, bad_fit, serve, registry, base
) -> None:
    engine, repo = fresh
    v1 = serve(engine, repo, bad_fit)
    # the sound model is better, but not by 99%: it stays a candidate
    d = decide(engine, repo, panel, good_fit.trained, base, job_id="j2", margin=0.99)
    assert d.challenger < d.champion and not d.promoted
    assert repo.current("demand") == v1


def test_an_unknown_metric_is_rejected_before_anything_is_written(
    fresh, panel, good_fit, registry, base
) -> None:
    engine, repo = fresh
    with pytest.raises(InvalidArgument):
        decide(engine, repo, panel, good_fit.trained, base, job_id="j3", metric="mape")
    assert repo.versions("demand") == [] and registry(engine) == []
