"""The versioned Serve config, its local adaptation, and the deployments as plain classes (no Ray
cluster: Serve's schema and the classes are used directly)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from ray.serve.schema import ServeDeploySchema

from optimizer.core.problem import Plan
from optimizer.serving import local
from optimizer.serving.serve import OptimizerAppArgs, Solver, SolverKnobs, build_app
from optimizer.serving.status import Failure


def test_config_is_a_valid_serve_config_whose_names_match_the_code() -> None:
    raw = local.load_config()
    config = ServeDeploySchema.model_validate(raw)
    (app,) = config.applications
    assert app.import_path == "optimizer.serving.serve:build_app"
    OptimizerAppArgs.model_validate(app.args)  # the args the builder will get
    # A deployment name that does not match the code is silently not applied by Serve.
    assert {d.name for d in app.deployments} == _deployment_names(build_app(OptimizerAppArgs()))
    solver = next(d for d in app.deployments if d.name == "Solver")
    knobs = SolverKnobs.from_user_config(solver.user_config)
    assert knobs.config_version.startswith("optimizer-serve-config/")
    auto = solver.autoscaling_config
    assert isinstance(auto, dict)
    assert auto["min_replicas"] >= 1 and auto["max_replicas"] >= 2
    # The servicer function must be importable where the proxy runs.
    from ray.serve.config import gRPCOptions

    assert len(gRPCOptions(**config.grpc_options.model_dump()).grpc_servicer_func_callable) == 1


def _deployment_names(app: Any) -> set[str]:
    """Names of every deployment in a built application graph (Serve has no public walker)."""
    bound = app._bound_deployment
    names = {bound.name}
    for arg in (*bound.init_args, *bound.init_kwargs.values()):
        if type(arg).__name__ == "Application":
            names |= _deployment_names(arg)
    return names


def test_config_has_nothing_machine_specific() -> None:
    text = local.CONFIG_PATH.read_text()
    for needle in ("/home/", "/work/", "/tmp/", "127.0.0.1", "localhost", "working_dir"):
        assert needle not in text


def test_local_config_overrides_ports_and_caps_replicas() -> None:
    raw = local.load_config()
    out = local.local_config(raw, grpc_port=50123, http_port=50124, num_cpus=2)
    assert out["grpc_options"]["port"] == 50123
    assert out["http_options"] == {"host": "127.0.0.1", "port": 50124}
    solver = next(d for d in out["applications"][0]["deployments"] if d["name"] == "Solver")
    assert solver["autoscaling_config"]["max_replicas"] == 2
    assert raw["grpc_options"]["port"] == 9000  # the source is left alone
    pinned = local.local_config(raw, grpc_port=1, http_port=2, num_cpus=None, replicas=2)
    solver = next(d for d in pinned["applications"][0]["deployments"] if d["name"] == "Solver")
    # pinned means no autoscaling at all: the key is set to None, since an absent one would keep
    # build_app's own autoscaling_config and Serve would scale past the pinned count
    assert solver["num_replicas"] == 2 and solver["autoscaling_config"] is None
    schema = ServeDeploySchema.model_validate(pinned)
    deployment = next(d for d in schema.applications[0].deployments if d.name == "Solver")
    assert "autoscaling_config" in deployment.model_fields_set
    assert not deployment.is_autoscaling_configured()


def test_knobs_reject_typos_and_contradictions() -> None:
    with pytest.raises(ValueError, match="time_limit"):
        SolverKnobs.from_user_config({"time_limit": 5})
    with pytest.raises(ValueError, match="max_time_limit_s"):
        SolverKnobs.from_user_config({"default_time_limit_s": 900, "max_time_limit_s": 600})


def test_solver_class_uses_its_user_config(problems: dict[str, Any]) -> None:
    solver = Solver()
    solver.reconfigure({"default_time_limit_s": 20, "max_time_limit_s": 30, "threads": 1})
    assert solver.knobs.default_time_limit_s == 20
    plan = solver.solve_now(problems["tiny"](), {})
    assert isinstance(plan, Plan) and plan.status == "optimal"
    too_long = solver.solve_now(problems["tiny"](), {"time_limit_s": 31.0})
    assert isinstance(too_long, Failure)
    assert too_long.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_long.field == "options.time_limit_s"
    infeasible = solver.solve_now(problems["infeasible"](), {})
    assert isinstance(infeasible, Failure)
    assert infeasible.code == grpc.StatusCode.FAILED_PRECONDITION
    assert infeasible.diagnosis is not None and infeasible.diagnosis.violations
    solver.check_health()
