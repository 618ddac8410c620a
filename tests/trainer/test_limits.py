"""Retraining knobs are bounded: hostile Retrain configs (generated) are INVALID_ARGUMENT naming
the field, with a short echo, and leave no job row and no Ray job; a search space of 100,000
units is refused by its bounds and never reaches a command line; a valid config travels as data
(the job row), the job takes its knobs from there, and a stored config out of bounds fails the
job before it trains anything."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from tailorline.v1 import model_service_pb2 as model_pb

from services.common.errors import InvalidArgument
from services.gateway.servicers.models import ModelServicer
from services.registry.repository import ModelRepository
from services.store import schema
from services.store.jobs import create_job, job_status
from services.training import job as job_module
from services.training.launch import LocalRayLauncher
from services.training.limits import CONFIG_LIMITS, MAX_CHOICES, SPACE_LIMITS, Bound
from services.training.space import parse_space
from services.training.train import TrainConfig

from .test_launch import FakeJobClient

HOSTILE = settings(
    deadline=None,
    derandomize=True,  # the same cases on every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: a valid value for every knob (the bad one is mixed among them)
GOOD: dict[str, Any] = {
    "trials": 2,
    "max_epochs": 3,
    "metric": "wape",
    "margin": 0.01,
    "holdout_weeks": 4,
    "origin_stride": 2,
    "seed": 11,
    "space": {"units": [8, 16], "quantile_head": ["ratio"]},
    "trigger": "wape",
    "trigger_id": 3,
}
NOT_A_NUMBER = st.sampled_from([math.nan, math.inf, -math.inf])
WRONG_TYPE = st.one_of(
    st.booleans(), st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2)
)


def _bad_value(bound: Bound) -> st.SearchStrategy[Any]:
    """Values ``bound`` must refuse."""
    if bound.choices:
        return st.one_of(
            st.text(max_size=20).filter(lambda s: s not in bound.choices), st.integers(), st.none()
        )
    if bound.kind is str:
        return st.one_of(
            st.text(min_size=bound.max_chars + 1, max_size=bound.max_chars + 50),
            st.just("a\x00b"),
            st.integers(),
            st.none(),
        )
    assert bound.low is not None and bound.high is not None
    out = [
        NOT_A_NUMBER,
        WRONG_TYPE,
        st.floats(min_value=bound.high, exclude_min=True, allow_infinity=False),
        st.floats(max_value=bound.low, exclude_max=True, allow_infinity=False),
        st.sampled_from([1e308, 1e20, 1e9, -1.0, -(2.0**63)]).filter(
            lambda x: not bound.low <= x <= bound.high
        ),
    ]
    if bound.kind is int:
        out.append(st.sampled_from([1.5, 2.25, 0.5, 3.000001]))
    return st.one_of(*out)


@st.composite
def bad_config(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A config with exactly one thing wrong, and the field the error must name."""
    config = {k: v for k, v in GOOD.items() if draw(st.booleans())}
    kind = draw(st.sampled_from(["knob", "unknown", "space", "space_key", "choices", "choice"]))
    if kind == "knob":
        key = draw(st.sampled_from([k for k in CONFIG_LIMITS if k != "space"]))
        config[key] = draw(_bad_value(CONFIG_LIMITS[key]))
        return config, f"config.{key}"
    if kind == "unknown":
        key = draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in CONFIG_LIMITS))
        config[key] = draw(st.integers())
        return config, f"config.{key}"  # (a key over 64 characters is cut short in the field)
    if kind == "space":
        config["space"] = draw(st.one_of(st.just({}), st.just([]), NOT_A_NUMBER, WRONG_TYPE))
        return config, "config.space"
    space = {"layers": [1, 2]}
    if kind == "space_key":
        key = draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in SPACE_LIMITS))
        space[key] = [1]
        config["space"] = space
        return config, f"config.space.{key}"
    key = draw(st.sampled_from(sorted(SPACE_LIMITS)))
    bound = SPACE_LIMITS[key]
    if kind == "choices":  # not a list, an empty list, or too many choices
        space[key] = draw(
            st.one_of(
                st.just([]),
                st.integers(),
                st.just([bound.choices[0] if bound.choices else bound.low] * (MAX_CHOICES + 1)),
            )
        )
        config["space"] = space
        return config, f"config.space.{key}"
    good = bound.choices[0] if bound.choices else bound.low
    index = draw(st.integers(0, 3))
    choices: list[Any] = [good] * index + [draw(_bad_value(bound))]
    space[key] = choices
    config["space"] = space
    return config, f"config.space.{key}[{index}]"


def _rows(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.retrain_jobs)).scalar())


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def _struct_safe(config: dict[str, Any]) -> bool:
    """Whether a Struct can carry ``config`` at all (string keys, JSON-like values)."""
    try:
        _struct(config)
    except (TypeError, ValueError):
        return False
    return True


@settings(HOSTILE, max_examples=150)
@given(case=bad_config())
def test_hostile_configs_are_refused_naming_the_field_and_launch_nothing(engine, case):
    config, field = case
    client = FakeJobClient()
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client)
    before = _rows(engine)
    with pytest.raises(InvalidArgument) as err:
        launcher.submit(["demand"], config)
    assert err.value.field == field
    assert len(str(err.value)) < 400  # a short echo, never the caller's megabytes
    assert client.jobs == {} and _rows(engine) == before


@settings(HOSTILE, max_examples=60)
@given(case=bad_config())
def test_the_gateway_refuses_them_before_its_launcher_with_no_row(engine, tmp_path, case):
    """ModelService.Retrain: a Struct (numbers are doubles, NaN and inf included) -> the same
    check; INVALID_ARGUMENT (the interceptor maps InvalidArgument), never INTERNAL."""
    config, field = case
    if not _struct_safe(config):
        return  # a Struct cannot carry it (the client library refuses before sending)
    submitted: list[Any] = []

    class Recording:
        def submit(self, models: Any, config: Any) -> str:
            submitted.append(config)
            raise AssertionError("a refused request reached the launcher")

    servicer = ModelServicer(engine, tmp_path / "models", retraining=Recording())
    request = model_pb.RetrainRequest(models=["demand"], config=_struct(config))
    before = _rows(engine)
    with pytest.raises(InvalidArgument) as err:
        asyncio.run(servicer.Retrain(request, None))
    assert err.value.field is not None and err.value.field.split("[")[0].startswith(
        field.split("[")[0][:40]
    )
    assert len(str(err.value)) < 400
    assert submitted == [] and _rows(engine) == before


@st.composite
def good_config(draw: st.DrawFn) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, bound in CONFIG_LIMITS.items():
        if key == "space" or not draw(st.booleans()):
            continue
        if bound.choices:
            config[key] = draw(st.sampled_from(bound.choices))
        elif bound.kind is str:
            config[key] = draw(st.text(alphabet="abc xyz", max_size=bound.max_chars))
        elif bound.kind is int:
            config[key] = draw(st.integers(int(bound.low or 0), int(bound.high or 0)))
        else:
            config[key] = draw(st.floats(bound.low, bound.high))
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(sorted(SPACE_LIMITS)), min_size=1, unique=True))
        space = {}
        for key in keys:
            b = SPACE_LIMITS[key]
            value = (
                st.sampled_from(b.choices)
                if b.choices
                else st.integers(int(b.low or 0), int(b.high or 0))
                if b.kind is int
                else st.floats(b.low, b.high)
            )
            space[key] = draw(st.lists(value, min_size=1, max_size=MAX_CHOICES))
        config["space"] = space
    return config


@settings(HOSTILE, max_examples=40)
@given(config=good_config())
def test_configs_within_the_bounds_are_stored_as_data_and_only_the_id_is_on_argv(engine, config):
    client = FakeJobClient()
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client)
    job_id = launcher.submit(["demand"], config)
    [job] = client.jobs.values()
    assert job["entrypoint"].split()[-2:] == ["--job-id", job_id]
    with engine.connect() as conn:
        stored = conn.execute(
            select(schema.retrain_jobs.c.config).where(schema.retrain_jobs.c.job_id == job_id)
        ).scalar()
    assert stored == config


def test_a_100000_unit_search_space_is_refused_by_its_bounds_and_reaches_no_argv(
    engine, tmp_path: Path
):
    huge = {"units": list(range(4, 100_004))}
    client = FakeJobClient()
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client)
    with pytest.raises(InvalidArgument, match="at most 32 choices, got 100000") as err:
        launcher.submit(["demand"], {"space": huge})
    assert err.value.field == "config.space.units" and len(str(err.value)) < 200
    assert client.jobs == {} and _rows(engine) == 0
    # through the gateway (a Struct of 100,000 doubles) and the CLI's --space alike
    servicer = ModelServicer(engine, tmp_path / "models", retraining=None)
    request = model_pb.RetrainRequest(models=["demand"], config=_struct({"space": huge}))
    with pytest.raises(InvalidArgument) as err:
        asyncio.run(servicer.Retrain(request, None))
    assert err.value.field == "config.space.units"
    with pytest.raises(InvalidArgument) as err:
        parse_space('{"units": [' + ", ".join("8" for _ in range(100_000)) + "]}")
    assert err.value.field == "space" and "at most" in str(err.value)
    assert _rows(engine) == 0


def test_the_largest_space_the_bounds_allow_travels_as_data(engine):
    widest = {
        key: ([b.choices[i % len(b.choices)] for i in range(MAX_CHOICES)] if b.choices else
              [b.kind(b.high) for _ in range(MAX_CHOICES)])
        for key, b in SPACE_LIMITS.items()
    }  # fmt: skip
    client = FakeJobClient()
    launcher = LocalRayLauncher(engine, "http://127.0.0.1:1", _client=client)
    job_id = launcher.submit(["demand"], {"space": widest, "trigger": "x" * 200})
    [job] = client.jobs.values()
    assert len(job["entrypoint"]) < 200 and "x" * 20 not in job["entrypoint"]
    assert job_status(engine, job_id) == "pending"


def test_the_job_takes_its_knobs_from_its_row(engine, tmp_path, monkeypatch):
    seen: dict[str, Any] = {}

    def fake_search(panel: Any, base: TrainConfig, **kwargs: Any) -> Any:
        seen.update(kwargs, base=base)
        raise RuntimeError("stop here: the search is not what this test is about")

    monkeypatch.setattr(job_module, "build_panel", lambda frames: "panel")
    monkeypatch.setattr(job_module.observed, "attach", lambda panel, frames: panel)
    monkeypatch.setattr(job_module, "run_search", fake_search)
    config = {**GOOD, "space": {"units": [8.0, 16.0]}}
    job_id = create_job(engine, config, "local-ray")
    with pytest.raises(RuntimeError, match="stop here"):
        job_module.retrain(
            engine, ModelRepository(tmp_path / "m"), {}, TrainConfig(), job_id=job_id
        )
    assert (seen["trials"], seen["max_epochs"], seen["seed"]) == (2, 3, 11)
    assert seen["space"] == {"units": [8, 16]}
    assert (seen["base"].holdout_weeks, seen["base"].origin_stride) == (4, 2)
    assert job_status(engine, job_id) == "failed"


@pytest.mark.parametrize(
    "stored",
    [{"trials": 1e308}, {"max_epochs": 1e9}, {"seed": 1e20}, {"space": {"units": [4] * 100}}],
)
def test_a_stored_config_out_of_bounds_fails_the_job_before_training(engine, tmp_path, stored):
    job_id = create_job(engine, stored, "local-ray")
    with pytest.raises(InvalidArgument):
        job_module.retrain(
            engine, ModelRepository(tmp_path / "m"), {}, TrainConfig(), job_id=job_id
        )
    assert job_status(engine, job_id) == "failed"


def test_the_bounds_hold_the_defaults_and_the_default_space():
    from services.training.limits import check_config, check_space
    from services.training.search import DEFAULT_SPACE

    defaults = {"trials": 4, "max_epochs": 10, "metric": "wape", "margin": 0.0, "seed": 7}
    assert check_config({**defaults, "holdout_weeks": 13, "origin_stride": 2})["trials"] == 4
    assert check_space(DEFAULT_SPACE) == DEFAULT_SPACE
