"""The one Python client of the optimizer service; it speaks the library's types.

``OptimizerClient(target).solve(problem, options)`` returns a :class:`Plan` and raises the same
errors as :func:`optimizer.solve`: :class:`ProblemInvalid` (field and reason from the status) and
:class:`Infeasible` (with the :class:`Diagnosis` from the trailing metadata). ``solve_batch``
sends what-ifs of one problem in one ``SolveBatch`` call and returns each scenario's plan or the
error it ended with; ``solve_stream`` sends them in one ``SolveStream`` call and yields each
scenario's result as it is solved (a :class:`ScenarioStream`, whose ``cancel()`` cancels the
scenarios not solved yet). ``ready()`` probes Serve's gRPC proxy (``Healthz``).

Every call has a deadline (an absolute ``time.monotonic()`` value, or None) and a per-call
timeout; a call that failed with UNAVAILABLE is retried with doubling backoff, never past the
deadline (:func:`call_with_retries`). Transport failures are :class:`CallFailed` errors of this
module (:class:`Unreachable`, :class:`TimedOut`, :class:`RemoteError`), which carry their status
code's name as data like the optimizer's other errors; the optimizer depends on nothing in
``services/``, so a caller maps them onto its own errors (the gateway does, in
``services.gateway.downstream``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc
from opentelemetry import trace
from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb
from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc
from tailorline.optimizer.v1 import plan_pb2

from optimizer.core.errors import Infeasible, OptimizerError, ProblemInvalid
from optimizer.core.problem import Diagnosis, Plan, PlanningProblem, SolveOptions
from optimizer.serving.convert import (
    ScenarioSpec,
    diagnosis_from_proto,
    options_to_proto,
    plan_from_proto,
    problem_to_proto,
    scenario_to_proto,
)
from optimizer.serving.status import DIAGNOSIS_KEY, FIELD_KEY
from optimizer.serving.tracing import inject_metadata, tracer

T = TypeVar("T")
#: Serve's gRPC proxy routes a call to the application named in this metadata.
APP_METADATA = (("application", "optimizer"),)
#: What a readiness probe calls on Serve's proxy (no Ray import needed by the caller).
SERVE_HEALTHZ = "/ray.serve.RayServeAPIService/Healthz"


# --------------------------------------------------------------------------- transport errors


class CallFailed(OptimizerError):
    """A call got no answer to use: the service is unreachable, slow, or failed itself.
    ``code`` is the status to report it with, like the optimizer's other errors."""

    code = "INTERNAL"


class Unreachable(CallFailed):
    """UNAVAILABLE after the retries (or RESOURCE_EXHAUSTED): retrying later may help."""

    code = "UNAVAILABLE"


class TimedOut(CallFailed):
    """The deadline passed before or during the call."""

    code = "DEADLINE_EXCEEDED"


class RemoteError(CallFailed):
    """The service answered with an error the caller cannot fix (INTERNAL, UNKNOWN, ...)."""

    code = "INTERNAL"


def _remaining(deadline: float | None, cap: float | None) -> float | None:
    if deadline is None:
        return cap
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimedOut("the request's deadline passed before the downstream call")
    return left if cap is None else min(left, cap)


def call_with_retries(
    fn: Callable[[float | None], T],
    *,
    what: str,
    deadline: float | None,
    timeout_s: float | None,
    retries: int,
    backoff_s: float,
) -> T:
    """``fn(timeout)``; retried on UNAVAILABLE only, with doubling backoff inside the deadline.

    UNAVAILABLE after the last retry and RESOURCE_EXHAUSTED raise :class:`Unreachable`,
    DEADLINE_EXCEEDED (or a deadline already past) :class:`TimedOut`; any other status is an
    answer and propagates as ``grpc.RpcError``."""
    delay = backoff_s
    for attempt in range(retries + 1):
        timeout = _remaining(deadline, timeout_s)
        try:
            return fn(timeout)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAVAILABLE:
                left = None if deadline is None else deadline - time.monotonic()
                if attempt < retries and (left is None or left > delay):
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise Unreachable(f"{what} is unreachable: {exc.details()}") from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimedOut(f"{what} did not answer within the deadline") from None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise Unreachable(f"{what} is overloaded: {exc.details()}") from None
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def last_line(details: str | None) -> str:
    """The last line of a service's error details (Ray puts a whole traceback there)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(details or ""))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else "no details")[:300]


# --------------------------------------------------------------------------- the client


class OptimizerClient:
    """Blocking, thread-safe client. ``timeout_s`` caps every call (None: only the deadline);
    ``retries``/``backoff_s``: UNAVAILABLE retries; ``max_message_bytes`` raises gRPC's 4 MB
    default (large plans exceed it)."""

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float | None = None,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_message_bytes: int = 256 << 20,
    ) -> None:
        self.target = target
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self._stub = svc_grpc.OptimizerServiceStub(self._channel)
        self._healthz = self._channel.unary_unary(SERVE_HEALTHZ)
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> OptimizerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ready(self, timeout_s: float = 1.0) -> bool:
        """One probe of Serve's proxy, no retries."""
        try:
            self._healthz(b"", timeout=timeout_s)
            return True
        except grpc.RpcError:
            return False

    def _call(self, method: Callable[..., T], request: Any, deadline: float | None, rpc: str) -> T:
        """One RPC (with retries) as a CLIENT span whose W3C context travels in the metadata,
        so the optimizer's spans join the caller's trace."""
        with tracer().start_as_current_span(
            f"tailorline.optimizer.v1.OptimizerService/{rpc}",
            kind=trace.SpanKind.CLIENT,
            attributes={"rpc.system": "grpc", "server.address": self.target},
        ) as span:
            metadata = inject_metadata(APP_METADATA)
            try:
                response = call_with_retries(
                    lambda t: method(request, metadata=metadata, timeout=t),
                    what=f"optimizer ({self.target})",
                    deadline=deadline,
                    timeout_s=self._timeout,
                    retries=self._retries,
                    backoff_s=self._backoff,
                )
            except grpc.RpcError as exc:
                span.set_attribute("rpc.grpc.status_code", exc.code().name)
                raise _status_error(exc) from None
            except CallFailed as exc:
                span.set_attribute("rpc.grpc.status_code", exc.code)
                span.set_status(trace.Status(trace.StatusCode.ERROR, exc.code))
                raise
            span.set_attribute("rpc.grpc.status_code", "OK")
            return response

    def solve(
        self,
        problem: PlanningProblem,
        options: SolveOptions | None = None,
        deadline: float | None = None,
    ) -> Plan:
        """``optimizer.solve`` over the wire; ``options`` None leaves every option to the
        server's defaults."""
        request = svc_pb.SolveRequest(problem=problem_to_proto(problem))
        if options is not None:
            request.options.CopyFrom(options_to_proto(options))
        response = self._call(self._stub.Solve, request, deadline, "Solve")
        return plan_from_proto(response.plan)

    def solve_batch(
        self,
        problem: PlanningProblem | None,
        scenarios: Sequence[ScenarioSpec | svc_pb.Scenario],
        options: SolveOptions | None = None,
        deadline: float | None = None,
    ) -> list[tuple[str, Plan | Exception]]:
        """One ``SolveBatch``: ``(scenario_id, Plan or the error it ended with)`` per scenario,
        in order. A scenario's error is :class:`Infeasible`, :class:`ProblemInvalid` or
        :class:`RemoteError`; a malformed scenario raises :class:`ProblemInvalid` for the call
        (the service validates every scenario before it solves any)."""
        request = _batch_request(problem, scenarios, options)
        response = self._call(self._stub.SolveBatch, request, deadline, "SolveBatch")
        out: list[tuple[str, Plan | Exception]] = []
        for r in response.results:
            if r.WhichOneof("outcome") == "plan":
                out.append((r.scenario_id, plan_from_proto(r.plan)))
            else:
                out.append((r.scenario_id, _scenario_error(r.error)))
        return out

    def solve_stream(
        self,
        problem: PlanningProblem | None,
        scenarios: Sequence[ScenarioSpec | svc_pb.Scenario],
        options: SolveOptions | None = None,
        *,
        budget_s: float | None = None,
        deadline: float | None = None,
    ) -> ScenarioStream:
        """One ``SolveStream``, opened on the first ``next()``: ``(scenario_id, Plan or the
        error it ended with)`` per scenario, in the order they are solved. ``budget_s`` caps
        each scenario's whole solve; ``deadline`` is sent as the seconds left, so a scenario
        that waits for a replica is still solved in time. Errors as for :meth:`solve_batch`."""
        request = svc_pb.SolveStreamRequest(batch=_batch_request(problem, scenarios, options))
        if budget_s is not None:
            request.scenario_budget_s = budget_s
        return ScenarioStream(self, request, deadline)


class ScenarioStream:
    """The results of one ``SolveStream`` call, read as they arrive (blocking ``next()``).

    Opening the call (the first ``next()``) is retried on UNAVAILABLE like any call; a failure
    afterwards ends the stream with the mapped error (:class:`Unreachable`, :class:`TimedOut`,
    :class:`ProblemInvalid`, :class:`RemoteError`). :meth:`cancel` may be called from any
    thread: the call is cancelled (the service cancels the scenarios not solved yet) and the
    stream ends (``StopIteration``). The W3C trace context of the thread that made the stream
    travels in the call's metadata."""

    def __init__(
        self, client: OptimizerClient, request: svc_pb.SolveStreamRequest, deadline: float | None
    ) -> None:
        self._client = client
        self._request = request
        self._deadline = deadline
        self._metadata = inject_metadata(APP_METADATA)
        self._call: Any = None
        self._cancelled = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[tuple[str, Plan | Exception]]:
        return self

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            call = self._call
        if call is not None:
            call.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def _open(self, timeout: float | None) -> Any:
        with self._lock:
            if self._cancelled:
                raise StopIteration
            if timeout is not None:
                self._request.time_left_s = timeout
            stub = self._client._stub
            self._call = stub.SolveStream(self._request, metadata=self._metadata, timeout=timeout)
            call = self._call
        return call, next(call)

    def __next__(self) -> tuple[str, Plan | Exception]:
        client = self._client
        try:
            if self._call is None:
                _, message = call_with_retries(
                    self._open,
                    what=f"optimizer ({client.target})",
                    deadline=self._deadline,
                    timeout_s=client._timeout,
                    retries=client._retries,
                    backoff_s=client._backoff,
                )
            else:
                message = next(self._call)
        except grpc.RpcError as exc:
            if self._cancelled and exc.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimedOut(f"optimizer ({client.target}) did not answer in time") from None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                raise Unreachable(f"optimizer ({client.target}): {exc.details()}") from None
            raise _status_error(exc) from None
        r = message.result
        if r.WhichOneof("outcome") == "plan":
            return r.scenario_id, plan_from_proto(r.plan)
        return r.scenario_id, _scenario_error(r.error)


def _batch_request(
    problem: PlanningProblem | None,
    scenarios: Sequence[ScenarioSpec | svc_pb.Scenario],
    options: SolveOptions | None,
) -> svc_pb.SolveBatchRequest:
    request = svc_pb.SolveBatchRequest(
        scenarios=[s if isinstance(s, svc_pb.Scenario) else scenario_to_proto(s) for s in scenarios]
    )
    if problem is not None:
        request.problem.CopyFrom(problem_to_proto(problem))
    if options is not None:
        request.options.CopyFrom(options_to_proto(options))
    return request


def _status_error(exc: Any) -> Exception:
    """A failed call's status as the library's error (:class:`RemoteError` for the rest)."""
    code = exc.code()
    details = exc.details() or ""
    metadata = {m.key: m.value for m in (exc.trailing_metadata() or ())}
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field = metadata.get(FIELD_KEY, "")
        head, sep, tail = details.partition(": ")
        if not field and sep and head and " " not in head:
            field = head  # a streamed call's status carries no trailing metadata
        reason = tail if field and field == head else details
        return ProblemInvalid(field or "request", reason)
    if code == grpc.StatusCode.FAILED_PRECONDITION and DIAGNOSIS_KEY in metadata:
        d = diagnosis_from_proto(plan_pb2.Diagnosis.FromString(metadata[DIAGNOSIS_KEY]))
        return Infeasible(d)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return Infeasible(Diagnosis(summary=details))
    return RemoteError(last_line(details))


def _scenario_error(error: svc_pb.ScenarioError) -> Exception:
    """A scenario's error result as the library's error, like :func:`_status_error`."""
    if error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]:
        field, _, reason = error.message.partition(": ")
        return ProblemInvalid(field, reason) if reason else ProblemInvalid("request", field)
    if error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]:
        if error.HasField("diagnosis"):
            return Infeasible(diagnosis_from_proto(error.diagnosis))
        return Infeasible(Diagnosis(summary=error.message))
    if error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]:
        return TimedOut(last_line(error.message))  # left too little of the deadline, unstarted
    if error.code in (
        grpc.StatusCode.UNAVAILABLE.value[0],
        grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
    ):
        return Unreachable(last_line(error.message))
    return RemoteError(last_line(error.message))


__all__ = [
    "APP_METADATA",
    "SERVE_HEALTHZ",
    "CallFailed",
    "OptimizerClient",
    "RemoteError",
    "ScenarioStream",
    "TimedOut",
    "Unreachable",
    "call_with_retries",
    "last_line",
]
