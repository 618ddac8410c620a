"""A Python client of the optimizer service that speaks the library's types.

``OptimizerClient(target).solve(problem, options)`` returns a :class:`Plan` and raises the same
errors as :func:`optimizer.solve`: :class:`ProblemInvalid` (field and reason from the status) and
:class:`Infeasible` (with the :class:`Diagnosis` from the trailing metadata). Other failures
(UNAVAILABLE, DEADLINE_EXCEEDED, ...) propagate as ``grpc.RpcError`` for the caller to map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc
from tailorline.optimizer.v1 import plan_pb2

from optimizer.core.errors import Infeasible, ProblemInvalid
from optimizer.core.problem import Diagnosis, Plan, PlanningProblem, SolveOptions
from optimizer.serving.convert import (
    diagnosis_from_proto,
    options_to_proto,
    plan_from_proto,
    problem_to_proto,
)
from optimizer.serving.status import DIAGNOSIS_KEY, FIELD_KEY, Failure

APP_METADATA = (("application", "optimizer"),)


class OptimizerClient:
    """Blocking client; ``max_message_mb`` raises gRPC's 4 MB default (large plans exceed it)."""

    def __init__(
        self, target: str, *, timeout_s: float | None = None, max_message_mb: int = 256
    ) -> None:
        size = max_message_mb * 1024 * 1024
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
            ],
        )
        self._stub = svc_grpc.OptimizerServiceStub(self._channel)
        self._timeout = timeout_s

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> OptimizerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def solve(self, problem: PlanningProblem, options: SolveOptions | None = None) -> Plan:
        """``options`` None leaves every option to the server's defaults."""
        request = svc_pb.SolveRequest(problem=problem_to_proto(problem))
        if options is not None:
            request.options.CopyFrom(options_to_proto(options))
        try:
            response = self._stub.Solve(request, metadata=APP_METADATA, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise _as_optimizer_error(exc) from None
        return plan_from_proto(response.plan)

    def solve_batch(
        self,
        problem: PlanningProblem | None,
        scenarios: Sequence[svc_pb.Scenario],
        options: SolveOptions | None = None,
    ) -> list[tuple[str, Plan | Failure]]:
        """One ``(scenario_id, Plan or Failure)`` per scenario, in order."""
        request = svc_pb.SolveBatchRequest(scenarios=scenarios)
        if problem is not None:
            request.problem.CopyFrom(problem_to_proto(problem))
        if options is not None:
            request.options.CopyFrom(options_to_proto(options))
        try:
            response = self._stub.SolveBatch(request, metadata=APP_METADATA, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise _as_optimizer_error(exc) from None
        out: list[tuple[str, Plan | Failure]] = []
        for r in response.results:
            if r.WhichOneof("outcome") == "plan":
                out.append((r.scenario_id, plan_from_proto(r.plan)))
            else:
                code = next(c for c in grpc.StatusCode if c.value[0] == r.error.code)
                diagnosis = (
                    diagnosis_from_proto(r.error.diagnosis)
                    if r.error.HasField("diagnosis")
                    else None
                )
                out.append((r.scenario_id, Failure(code, r.error.message, diagnosis=diagnosis)))
        return out


def _as_optimizer_error(exc: Any) -> BaseException:
    code = exc.code()
    details = exc.details() or ""
    metadata = {m.key: m.value for m in (exc.trailing_metadata() or ())}
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field = metadata.get(FIELD_KEY, "")
        reason = (
            details[len(field) + 2 :] if field and details.startswith(f"{field}: ") else details
        )
        return ProblemInvalid(field or "request", reason)
    if code == grpc.StatusCode.FAILED_PRECONDITION and DIAGNOSIS_KEY in metadata:
        d = diagnosis_from_proto(plan_pb2.Diagnosis.FromString(metadata[DIAGNOSIS_KEY]))
        return Infeasible(d)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return Infeasible(Diagnosis(summary=details))
    return exc
