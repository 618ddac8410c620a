"""The optimizer as a Ray Serve application, reached through Serve's gRPC proxy.

Two deployments, both plain classes (Serve wraps them in :func:`build_app`, the one place the
application graph is written):

- :class:`OptimizerIngress` implements ``tailorline.optimizer.v1.OptimizerService``: it converts
  and validates the request (malformed input never reaches a solver), fans a batch out across the
  solver replicas with concurrent ``DeploymentHandle`` calls, and maps outcomes to gRPC statuses
  (:mod:`optimizer.serving.status`);
- :class:`Solver` solves one problem at a time with :func:`optimizer.solve`; it autoscales on
  ongoing requests, and its run-time knobs (default/maximum time limit, MIP gap, threads) come
  from ``user_config`` through :meth:`Solver.reconfigure`, so changing them restarts nothing.

The deployed configuration (replicas, autoscaling, actor resources, knobs, gRPC servicer) lives in
``optimizer/serving/serve_config.yaml``; :mod:`optimizer.serving.local` runs it on a local Ray,
the Helm chart embeds it in a KubeRay RayService.

No ``from __future__ import annotations`` here: Serve reads the builder's parameter annotation at
run time to validate ``args`` with :class:`OptimizerAppArgs`, and a string annotation would skip it.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application
from ray.serve.exceptions import RayServeException
from ray.serve.grpc_util import RayServegRPCContext
from ray.serve.handle import DeploymentHandle
from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb

from optimizer.core.errors import ProblemInvalid
from optimizer.core.problem import Plan, PlanningProblem, SolveOptions
from optimizer.serving.convert import (
    diagnosis_to_proto,
    options_from_overrides,
    options_overrides_from_proto,
    plan_to_proto,
    problem_from_proto,
    scenario_problem,
    validated_problem,
)
from optimizer.serving.status import Failure, invalid, run_solve, trailing_metadata

logger = logging.getLogger(__name__)

APP_NAME = "optimizer"
R = TypeVar("R")


# --------------------------------------------------------------------------- run-time knobs


@dataclass(frozen=True)
class SolverKnobs:
    """The Solver's ``user_config``: defaults for what a request leaves out, and a ceiling."""

    default_time_limit_s: float = 60.0
    max_time_limit_s: float = 600.0
    mip_rel_gap: float = 1e-4
    threads: int = 1
    config_version: str = ""

    @classmethod
    def from_user_config(cls, config: Mapping[str, Any] | None) -> "SolverKnobs":
        """Validate a ``user_config`` mapping; an unknown key or bad value is a ValueError (Serve
        then reports the deployment as failed instead of running with a typo ignored)."""
        config = dict(config or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(
                f"Solver user_config: unknown key(s) {unknown}; known: {sorted(names)}"
            )
        knobs = cls(
            default_time_limit_s=float(
                config.get("default_time_limit_s", cls.default_time_limit_s)
            ),
            max_time_limit_s=float(config.get("max_time_limit_s", cls.max_time_limit_s)),
            mip_rel_gap=float(config.get("mip_rel_gap", cls.mip_rel_gap)),
            threads=int(config.get("threads", cls.threads)),
            config_version=str(config.get("config_version", "")),
        )
        if not 0 < knobs.default_time_limit_s <= knobs.max_time_limit_s:
            raise ValueError(
                "Solver user_config: need 0 < default_time_limit_s <= max_time_limit_s"
            )
        if not 0 <= knobs.mip_rel_gap < 1 or knobs.threads < 1:
            raise ValueError("Solver user_config: need 0 <= mip_rel_gap < 1 and threads >= 1")
        return knobs

    def options(self, overrides: Mapping[str, Any]) -> SolveOptions:
        """The request's options on top of these defaults; a time limit above this server's
        ceiling or a thread count other than its own is ProblemInvalid."""
        defaults = SolveOptions(
            time_limit_s=self.default_time_limit_s,
            mip_rel_gap=self.mip_rel_gap,
            threads=self.threads,
        )
        options = options_from_overrides(defaults, overrides)
        if options.time_limit_s > self.max_time_limit_s:
            raise ProblemInvalid(
                "options.time_limit_s",
                f"must be <= {self.max_time_limit_s:g} s (this server's max_time_limit_s)",
            )
        # HiGHS fixes its thread pool once per process: a replica must solve every request with
        # the same count (a different one ends in status "unknown"), and that count is what the
        # replica reserved CPUs for.
        if options.threads != self.threads:
            raise ProblemInvalid(
                "options.threads",
                f"this server solves with {self.threads} thread(s) (user_config); leave it unset",
            )
        return options


# --------------------------------------------------------------------------- deployments


class Solver:
    """Solves one planning problem per call. Returns a :class:`Plan` or a :class:`Failure`
    (never raises for a user error, so nothing depends on exceptions surviving pickling)."""

    def __init__(self) -> None:
        self._knobs = SolverKnobs()
        # Pyomo model building is not thread-safe: one solve at a time per replica, whatever
        # max_ongoing_requests says (the config sets it to 1 so the router spreads the load).
        self._lock = asyncio.Lock()

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        self._knobs = SolverKnobs.from_user_config(user_config)
        logger.info("solver knobs: %s", self._knobs)

    @property
    def knobs(self) -> SolverKnobs:
        return self._knobs

    def solve_now(self, problem: PlanningProblem, overrides: Mapping[str, Any]) -> Plan | Failure:
        """The synchronous solve (what :meth:`solve` runs off the event loop)."""
        try:
            options = self._knobs.options(overrides)
        except ProblemInvalid as exc:
            return invalid(exc)
        # Imported here so the ingress never loads Pyomo.
        from optimizer.core.pipeline import solve

        return run_solve(lambda: solve(problem, options))

    async def solve(
        self, problem: PlanningProblem, overrides: dict[str, Any]
    ) -> tuple[str, Plan | Failure]:
        """``(replica id, outcome)``: the id lets clients see how a batch spread."""
        async with self._lock:
            # In a thread, so health checks and reconfigure calls are answered during long solves.
            outcome = await asyncio.to_thread(self.solve_now, problem, overrides)
        return _replica_id(), outcome

    def check_health(self) -> None:
        """Raise when HiGHS cannot be loaded: Serve then replaces this replica."""
        import highspy

        highspy.Highs()


class OptimizerIngress:
    """The gRPC face: ``Solve`` and ``SolveBatch`` of ``tailorline.optimizer.v1.OptimizerService``.

    Serve's gRPC proxy calls the method named like the RPC with the decoded request and a
    :class:`RayServegRPCContext`; a status set on that context (with an empty response) is what the
    client receives.
    """

    def __init__(self, solver: DeploymentHandle, max_scenarios: int = 256) -> None:
        self._solver = solver
        self._max_scenarios = max_scenarios

    async def Solve(
        self, request: svc_pb.SolveRequest, grpc_context: RayServegRPCContext
    ) -> svc_pb.SolveResponse:
        try:
            problem = validated_problem(problem_from_proto(request.problem))
            overrides = _checked_overrides(request)
        except ProblemInvalid as exc:
            return _fail(grpc_context, invalid(exc), svc_pb.SolveResponse())
        replica, outcome = await self._solver.solve.remote(problem, overrides)
        if isinstance(outcome, Failure):
            return _fail(grpc_context, outcome, svc_pb.SolveResponse())
        return svc_pb.SolveResponse(plan=plan_to_proto(outcome), solved_by=replica)

    async def SolveBatch(
        self, request: svc_pb.SolveBatchRequest, grpc_context: RayServegRPCContext
    ) -> svc_pb.SolveBatchResponse:
        """Every scenario is validated first (one malformed scenario fails the call with
        INVALID_ARGUMENT); then all are solved concurrently, the router spreading them over the
        Solver replicas. An infeasible scenario gets an error result, the others their plans."""
        try:
            problems = self._batch_problems(request)
            overrides = _checked_overrides(request)
        except ProblemInvalid as exc:
            return _fail(grpc_context, invalid(exc), svc_pb.SolveBatchResponse())
        outcomes = await asyncio.gather(
            *(self._solver.solve.remote(p, overrides) for p in problems)
        )
        response = svc_pb.SolveBatchResponse()
        for k, (scenario, (replica, outcome)) in enumerate(
            zip(request.scenarios, outcomes, strict=True)
        ):
            result = response.results.add(scenario_id=scenario.id or str(k), solved_by=replica)
            if isinstance(outcome, Failure):
                result.error.code = outcome.code.value[0]
                result.error.message = outcome.details
                if outcome.diagnosis is not None:
                    result.error.diagnosis.CopyFrom(diagnosis_to_proto(outcome.diagnosis))
            else:
                result.plan.CopyFrom(plan_to_proto(outcome))
        return response

    def _batch_problems(self, request: svc_pb.SolveBatchRequest) -> list[PlanningProblem]:
        n = len(request.scenarios)
        if n == 0:
            raise ProblemInvalid("scenarios", "no scenarios to solve")
        if n > self._max_scenarios:
            raise ProblemInvalid("scenarios", f"at most {self._max_scenarios} per call, got {n}")
        base = None
        if request.HasField("problem"):
            base = validated_problem(problem_from_proto(request.problem))
        return [
            scenario_problem(base, s, f"scenarios[{k}]") for k, s in enumerate(request.scenarios)
        ]

    def check_health(self) -> None:
        """The ingress holds no connection or library of its own beyond the Solver handle, whose
        replicas Serve health-checks themselves; a live actor is a healthy ingress."""


def _replica_id() -> str:
    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except RayServeException:  # the class used outside Serve (tests, scripts)
        return ""


def _checked_overrides(request: svc_pb.SolveRequest | svc_pb.SolveBatchRequest) -> dict[str, Any]:
    """The request's explicit options, checked against the dataclass defaults (``options.*``)."""
    overrides = options_overrides_from_proto(request.options)
    options_from_overrides(SolveOptions(), overrides)
    return overrides


def _fail(context: RayServegRPCContext, failure: Failure, empty: R) -> R:
    context.set_code(failure.code)
    context.set_details(failure.details)
    context.set_trailing_metadata(trailing_metadata(failure))  # type: ignore[arg-type]
    if failure.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        logger.error("solve failed: %s", failure.details)
    return empty


# --------------------------------------------------------------------------- the application


class OptimizerAppArgs(BaseModel):
    """``args`` of the application in serve_config.yaml (validated by Serve on deploy)."""

    model_config = ConfigDict(extra="forbid")

    max_scenarios: int = Field(
        default=256, ge=1, description="Most scenarios one SolveBatch call may carry."
    )


def build_app(args: OptimizerAppArgs) -> Application:
    """The application graph: the gRPC ingress holding a handle to the autoscaled Solver.

    Options here are the code's defaults; serve_config.yaml's ``deployments`` override them.
    """
    solver = serve.deployment(
        name="Solver",
        max_ongoing_requests=1,
        ray_actor_options={"num_cpus": 1},
        autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1},
    )(Solver).bind()
    ingress = serve.deployment(
        name="OptimizerIngress",
        num_replicas=1,
        max_ongoing_requests=1000,
        ray_actor_options={"num_cpus": 0},
    )(OptimizerIngress)
    return ingress.bind(solver, args.max_scenarios)
