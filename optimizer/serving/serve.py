"""The optimizer as a Ray Serve application, reached through Serve's gRPC proxy.

Two deployments, both plain classes (Serve wraps them in :func:`build_app`, the one place the
application graph is written):

- :class:`OptimizerIngress` implements ``tailorline.optimizer.v1.OptimizerService``: it converts
  and validates the request (malformed input never reaches a solver), fans a batch out across the
  solver replicas with concurrent ``DeploymentHandle`` calls (one Solver request per scenario, so
  the autoscaler sees the queue), streams each scenario's result as it finishes
  (``SolveStream``, whose cancellation cancels the scenarios not solved yet), and maps outcomes to
  gRPC statuses (:mod:`optimizer.serving.status`);
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
import math
import time
from collections.abc import AsyncIterator, Mapping
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
from optimizer.serving.tracing import traced_rpc

logger = logging.getLogger(__name__)

APP_NAME = "optimizer"
R = TypeVar("R")
#: Share of a scenario's budget (after the reserve) given to the solver's time limit: after the
#: time limit the pipeline still explains the plan (a quarter of the limit, at least 1 s) and
#: rounds it to whole units (a tenth, at least 1 s); measured on 20 variants x 12 weeks x 2 lines,
#: a 3 s limit took 4.9 s in all on a loaded machine.
BUDGET_SOLVE_SHARE = 0.6
#: Share of the budget a replica's first budgeted solve reserves for what is not HiGHS time.
COLD_RESERVE_SHARE = 0.4
#: Shortest time limit worth starting a solve with; a scenario left less is not started.
MIN_TIME_LIMIT_S = 0.5


# --------------------------------------------------------------------------- run-time knobs


@dataclass(frozen=True)
class SolverKnobs:
    """The Solver's ``user_config``: defaults for what a request leaves out, and a ceiling."""

    default_time_limit_s: float = 60.0
    max_time_limit_s: float = 600.0
    mip_rel_gap: float = 1e-4
    threads: int = 1
    budget_reserve_s: float = 3.0
    deadline_margin_s: float = 2.0
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
            budget_reserve_s=float(config.get("budget_reserve_s", cls.budget_reserve_s)),
            deadline_margin_s=float(config.get("deadline_margin_s", cls.deadline_margin_s)),
            config_version=str(config.get("config_version", "")),
        )
        if not 0 < knobs.default_time_limit_s <= knobs.max_time_limit_s:
            raise ValueError(
                "Solver user_config: need 0 < default_time_limit_s <= max_time_limit_s"
            )
        if not 0 <= knobs.mip_rel_gap < 1 or knobs.threads < 1:
            raise ValueError("Solver user_config: need 0 <= mip_rel_gap < 1 and threads >= 1")
        if not (0 <= knobs.budget_reserve_s < 60 and 0 <= knobs.deadline_margin_s < 60):
            raise ValueError(
                "Solver user_config: need 0 <= budget_reserve_s < 60"
                " and 0 <= deadline_margin_s < 60"
            )
        return knobs

    def time_limit(
        self, limit_s: float, budget_s: float | None, expires_at: float | None, now: float
    ) -> float | None:
        """The time limit of a solve starting at ``now`` (``time.time()``): ``limit_s``, cut so
        that the whole solve (build, solve, explanation: :attr:`budget_reserve_s` plus the time
        limit over :data:`BUDGET_SOLVE_SHARE`) fits ``budget_s`` (never below
        :data:`MIN_TIME_LIMIT_S`) and ends :attr:`deadline_margin_s` before ``expires_at``.
        None: less than :data:`MIN_TIME_LIMIT_S` is left of the deadline (not worth starting)."""
        limit = limit_s
        if budget_s is not None:
            fit = (budget_s - self.budget_reserve_s) * BUDGET_SOLVE_SHARE
            limit = min(limit, max(MIN_TIME_LIMIT_S, fit))
        if expires_at is not None:
            left = expires_at - now - self.deadline_margin_s
            fit = (left - self.budget_reserve_s) * BUDGET_SOLVE_SHARE
            if fit < MIN_TIME_LIMIT_S:
                return None
            limit = min(limit, fit)
        return limit

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
        # seconds the last budgeted solve here took beyond its time limit (build, translate,
        # explanation, rounding, reading): the next one reserves that much if it is more than
        # budget_reserve_s (the overhead grows with the problem and the machine's load)
        self._overhead_s: float | None = None

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
        self,
        problem: PlanningProblem,
        overrides: dict[str, Any],
        budget_s: float | None = None,
        expires_at: float | None = None,
    ) -> tuple[str, Plan | Failure]:
        """``(replica id, outcome)``: the id lets clients see how a batch spread. ``budget_s``
        and ``expires_at`` (a ``time.time()``, the caller's deadline) cut the time limit when
        the solve starts (:meth:`SolverKnobs.time_limit`), so a scenario that waited in the
        queue still ends in time; one left too little is DEADLINE_EXCEEDED, never started."""
        async with self._lock:
            if budget_s is not None or expires_at is not None:
                try:
                    limit = self._knobs.options(overrides).time_limit_s
                except ProblemInvalid as exc:
                    return _replica_id(), invalid(exc)
                knobs = self._knobs
                # a replica's first budgeted solve has learned nothing yet: it reserves
                # COLD_RESERVE_SHARE of the budget (the overhead is seconds on a loaded machine)
                learned = self._overhead_s
                if learned is None and budget_s is not None:
                    learned = COLD_RESERVE_SHARE * budget_s
                if learned is not None and learned > knobs.budget_reserve_s:
                    knobs = dataclasses.replace(knobs, budget_reserve_s=learned)
                cut = knobs.time_limit(limit, budget_s, expires_at, time.time())
                if cut is None:
                    return _replica_id(), Failure(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        "too little of the call's deadline was left when a solver was free",
                    )
                overrides = {**overrides, "time_limit_s": cut}
            # In a thread, so health checks and reconfigure calls are answered during long solves.
            # A request cancelled while it waits for the lock never starts; one cancelled while
            # its solve runs keeps the lock until the solve ends at its limit (a thread cannot be
            # stopped, and a second solve beside it would share Pyomo and HiGHS's scheduler).
            running = asyncio.ensure_future(asyncio.to_thread(self.solve_now, problem, overrides))
            try:
                outcome = await asyncio.shield(running)
            except asyncio.CancelledError:
                await asyncio.wait({running})
                raise
            if (budget_s is not None or expires_at is not None) and isinstance(outcome, Plan):
                # the next budgeted solve here reserves what this one took beyond its limit
                self._overhead_s = max(0.0, outcome.total_time_s - overrides["time_limit_s"])
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

    @traced_rpc("Solve")
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

    @traced_rpc("SolveBatch")
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
        return svc_pb.SolveBatchResponse(
            results=[
                _scenario_result(scenario.id or str(k), replica, outcome)
                for k, (scenario, (replica, outcome)) in enumerate(
                    zip(request.scenarios, outcomes, strict=True)
                )
            ]
        )

    @traced_rpc("SolveStream")
    async def SolveStream(
        self, request: svc_pb.SolveStreamRequest, grpc_context: RayServegRPCContext
    ) -> AsyncIterator[svc_pb.SolveStreamResponse]:
        """Validate like ``SolveBatch``, then send every scenario to the Solver as a request of
        its own (the router spreads them, the autoscaler sees them queue) and stream each result
        as it finishes. When the call ends early (the client cancels, its deadline passes),
        every scenario not finished is cancelled: a queued one never starts."""
        try:
            problems = self._batch_problems(request.batch)
            overrides = _checked_overrides(request.batch)
            budget = _positive(request, "scenario_budget_s")
            left = _positive(request, "time_left_s")
        except ProblemInvalid as exc:
            # a streamed call's status comes from an exception raised after setting it
            _fail(grpc_context, invalid(exc), None)
            raise RuntimeError(f"{exc.field}: {exc.reason}") from None
        expires_at = None if left is None else time.time() + left
        responses = [self._solver.solve.remote(p, overrides, budget, expires_at) for p in problems]
        waits = {asyncio.ensure_future(_indexed(k, r)): k for k, r in enumerate(responses)}
        try:
            for next_done in asyncio.as_completed(waits):
                k, (replica, outcome) = await next_done
                scenario = request.batch.scenarios[k]
                result = _scenario_result(scenario.id or str(k), replica, outcome)
                yield svc_pb.SolveStreamResponse(result=result)
        finally:
            # Serve cancels a cancelled request's pending handle calls itself; this covers the
            # other ways out (the deadline, an error while converting a result)
            cancelled = 0
            for wait, k in waits.items():
                if not wait.done():
                    responses[k].cancel()
                    wait.cancel()
                    cancelled += 1
                wait.add_done_callback(_retrieved)
            if cancelled:
                logger.info("stream ended early: %d scenario(s) cancelled", cancelled)

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


async def _indexed(k: int, response: Any) -> tuple[int, Any]:
    return k, await response


def _retrieved(task: "asyncio.Future[Any]") -> None:
    """Mark a scenario's wait as seen: a cancelled one ends in CancelledError or Serve's
    RequestCancelledError, which asyncio would otherwise log as never retrieved."""
    if not task.cancelled():
        task.exception()


def _scenario_result(sid: str, replica: str, outcome: Plan | Failure) -> svc_pb.ScenarioResult:
    result = svc_pb.ScenarioResult(scenario_id=sid, solved_by=replica)
    if isinstance(outcome, Failure):
        result.error.code = outcome.code.value[0]
        result.error.message = outcome.details
        if outcome.diagnosis is not None:
            result.error.diagnosis.CopyFrom(diagnosis_to_proto(outcome.diagnosis))
    else:
        result.plan.CopyFrom(plan_to_proto(outcome))
    return result


def _positive(request: svc_pb.SolveStreamRequest, name: str) -> float | None:
    """An optional seconds field: unset is None, a set value must be finite and > 0."""
    if not request.HasField(name):
        return None
    value = float(getattr(request, name))
    if not math.isfinite(value) or value <= 0:
        raise ProblemInvalid(name, f"must be a finite number of seconds > 0, got {value!r}")
    return value


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
