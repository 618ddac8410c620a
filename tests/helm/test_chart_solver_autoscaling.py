"""The Solver's Ray Serve autoscaling bounds are chart values (optimizer.solver), written into the
embedded Serve config; the production example scales to 32 replicas; bad bounds are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from tests.helm.conftest import CHART, HelmResult, parse, template_args


def _solver(rendered: Any) -> dict[str, Any]:
    serve = yaml.safe_load(rendered.one("RayService")["spec"]["serveConfigV2"])
    (app,) = serve["applications"]
    (solver,) = [d for d in app["deployments"] if d["name"] == "Solver"]
    return dict(solver["autoscaling_config"])


def test_solver_autoscaling_comes_from_the_values(helm: Callable[..., HelmResult]) -> None:
    sets = ["minReplicas=3", "maxReplicas=12", "targetOngoingRequests=2"]
    args = [a for s in sets for a in ("--set", f"optimizer.solver.{s}")]
    result = helm(*template_args(None, *args))
    assert result.returncode == 0, result.output
    auto = _solver(parse("solver", result.stdout))
    assert (auto["min_replicas"], auto["initial_replicas"]) == (3, 3)
    assert (auto["max_replicas"], auto["target_ongoing_requests"]) == (12, 2)


def test_the_production_example_scales_the_solver_to_32_replicas(
    render: Callable[[Any], Any],
) -> None:
    auto = _solver(render(CHART / "ci" / "gpu-prod-values.yaml"))
    assert auto["max_replicas"] == 32 and auto["min_replicas"] == 2


def test_bad_solver_bounds_are_refused_naming_the_value(
    helm: Callable[..., HelmResult],
) -> None:
    flipped = helm(
        *template_args(
            None,
            "--set",
            "optimizer.solver.minReplicas=5",
            "--set",
            "optimizer.solver.maxReplicas=3",
        )
    )
    assert flipped.returncode != 0
    assert "optimizer.solver: minReplicas (5) must be <= maxReplicas (3)" in flipped.output
    zero = helm(*template_args(None, "--set", "optimizer.solver.maxReplicas=0"))
    assert zero.returncode != 0 and "/optimizer/solver/maxReplicas" in zero.output
