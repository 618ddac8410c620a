"""The gateway's downstream calls: the predictor's KServe V2 client and the optimizer's client.

The optimizer's client is :class:`optimizer.serving.client.OptimizerClient` (the one client of
that service); the predictor's is :class:`PredictorClient` here. Both retry a call that failed
with UNAVAILABLE (only that code: anything else is an answer) with exponential backoff, never past
the caller's deadline (an absolute ``time.monotonic()`` value), through
:func:`optimizer.serving.client.call_with_retries`. Their transport failures are mapped here onto
:mod:`services.common.errors` (:func:`downstream_error`), so the gateway's error interceptor sees
one hierarchy. The gateway runs them in worker threads (``asyncio.to_thread``); gRPC's blocking
channels are thread-safe.

Each call is a CLIENT span of the current trace whose W3C ``traceparent`` goes in the call's
metadata (a KServe predictor with tracing continues the trace; the optimizer does,
``optimizer.serving.tracing``), and is measured: the predictor's calls by model and served
version (``on_call``), the optimizer's plans by status, method and gap (:func:`optimizer_solvers`
with ``metrics``).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
import numpy as np
from opentelemetry import propagate, trace

from optimizer.core.errors import Infeasible, ProblemInvalid
from optimizer.core.problem import Plan, PlanningProblem, SolveOptions
from optimizer.serving.client import (
    CallFailed,
    OptimizerClient,
    ScenarioStream,
    TimedOut,
    Unreachable,
    call_with_retries,
)
from services.common.errors import DeadlineExceeded, TailorlineError, Unavailable
from services.common.telemetry import tracer
from services.planning.batch import SolveStreamFn
from services.planning.request import Scenario
from services.planning.service import SolveBatchFn, SolveFn

T = TypeVar("T")
#: ``on_call(model, version, code, seconds)``: one predictor inference call ended.
OnCall = Callable[[str, str, str, float], None]

#: V2 datatype -> numpy dtype name used by services.planning.predictions.frame_to_arrays.
V2_TO_DTYPE = {
    "BYTES": "string",
    "FP32": "float32",
    "FP64": "float64",
    "INT32": "int32",
    "INT64": "int64",
}
_NUMPY = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8", "BOOL": "?"}


class DownstreamError(TailorlineError):
    """A downstream answered with an error the user cannot fix (reported as INTERNAL)."""


def downstream_error(exc: CallFailed, what: str = "") -> TailorlineError:
    """A downstream client's transport failure as the gateway's error (``what`` prefixes the
    message of a failure the downstream reported itself)."""
    if isinstance(exc, Unreachable):
        return Unavailable(str(exc))
    if isinstance(exc, TimedOut):
        return DeadlineExceeded(str(exc))
    return DownstreamError(f"{what} failed: {exc}" if what else str(exc))


def _channel(target: str, max_message_bytes: int) -> grpc.Channel:
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )


def encode_bytes(values: np.ndarray) -> bytes:
    """V2 raw BYTES: each element as a 4-byte little-endian length and its bytes."""
    out = bytearray()
    for v in values.reshape(-1):
        b = v if isinstance(v, bytes) else str(v).encode()
        out += struct.pack("<I", len(b))
        out += b
    return bytes(out)


def decode_output(datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    if datatype == "BYTES":
        items, pos = [], 0
        while pos < len(raw):
            (n,) = struct.unpack_from("<I", raw, pos)
            items.append(raw[pos + 4 : pos + 4 + n])
            pos += 4 + n
        return np.array(items, dtype=np.object_).reshape(shape)
    return np.frombuffer(raw, dtype=_NUMPY[datatype]).reshape(shape)


class PredictorClient:
    """KServe V2 gRPC (``inference.GRPCInferenceService``) with raw tensor contents."""

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_message_bytes: int = 64 * 1024 * 1024,
        metadata_ttl_s: float = 10.0,
        on_call: OnCall | None = None,
    ) -> None:
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        self.target = target
        self._pb = service_pb2
        self._channel = _channel(target, max_message_bytes)
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s
        self._ttl = metadata_ttl_s
        self._meta: dict[str, tuple[float, list[tuple[str, str]]]] = {}
        self._lock = threading.Lock()
        self._on_call = on_call

    def close(self) -> None:
        self._channel.close()

    @contextmanager
    def _span(
        self, rpc: str, model: str
    ) -> Iterator[tuple[trace.Span, tuple[tuple[str, str], ...]]]:
        """A CLIENT span for one V2 call and the metadata that carries its context."""
        with tracer("tailorline.gateway").start_as_current_span(
            f"inference.GRPCInferenceService/{rpc}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": "inference.GRPCInferenceService",
                "rpc.method": rpc,
                "server.address": self.target,
                "tailorline.model": model,
            },
        ) as span:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            yield span, tuple(headers.items())

    def _call(self, fn: Callable[[float | None], T], deadline: float | None) -> T:
        try:
            return call_with_retries(
                fn,
                what=f"predictor ({self.target})",
                deadline=deadline,
                timeout_s=self._timeout,
                retries=self._retries,
                backoff_s=self._backoff,
            )
        except CallFailed as exc:
            raise downstream_error(exc, "predictor") from None

    def ready(self, timeout_s: float = 1.0) -> bool:
        """One probe, no retries: the server and every model are ready."""
        try:
            r = self._stub.ServerReady(self._pb.ServerReadyRequest(), timeout=timeout_s)
            return bool(r.ready)
        except grpc.RpcError:
            return False

    def inputs(self, name: str, deadline: float | None = None) -> list[tuple[str, str]]:
        """The served version's input tensors ``(name, dtype)`` from V2 model metadata."""
        with self._lock:
            cached = self._meta.get(name)
        if cached and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        request = self._pb.ModelMetadataRequest(name=name)
        with self._span("ModelMetadata", name) as (_span, md):
            meta = self._call(
                lambda t: self._stub.ModelMetadata(request, timeout=t, metadata=md), deadline
            )
        specs = []
        for tensor in meta.inputs:
            if tensor.datatype not in V2_TO_DTYPE:
                raise DownstreamError(f"model {name!r} input {tensor.name!r}: {tensor.datatype}")
            specs.append((tensor.name, V2_TO_DTYPE[tensor.datatype]))
        with self._lock:
            self._meta[name] = (time.monotonic(), specs)
        return specs

    def infer(
        self, name: str, arrays: dict[str, np.ndarray], deadline: float | None = None
    ) -> tuple[dict[str, np.ndarray], int]:
        """One V2 inference: named 1-D tensors in, named outputs and the model version out."""
        request = self._pb.ModelInferRequest(model_name=name)
        for key, values in arrays.items():
            tensor = request.inputs.add(name=key, shape=[len(values)])
            if values.dtype == np.object_:
                tensor.datatype = "BYTES"
                request.raw_input_contents.append(encode_bytes(values))
            else:
                datatype = next(k for k, v in _NUMPY.items() if np.dtype(v) == values.dtype)
                tensor.datatype = datatype
                request.raw_input_contents.append(np.ascontiguousarray(values).tobytes())
        with self._span("ModelInfer", name) as (span, md):
            span.set_attribute("tailorline.rows", len(next(iter(arrays.values()), ())))
            started = time.perf_counter()
            try:
                response = self._call(
                    lambda t: self._stub.ModelInfer(request, timeout=t, metadata=md), deadline
                )
            except grpc.RpcError as exc:
                self._called(span, name, "unknown", exc.code().name, started)
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise Unavailable(f"predictor serves no model {name!r}") from None
                raise DownstreamError(
                    f"predictor rejected the {name!r} request: {exc.details()}"
                ) from None
            except TailorlineError as exc:
                self._called(span, name, "unknown", str(exc.code), started)
                raise
            self._called(span, name, response.model_version or "unknown", "OK", started)
        outputs = {
            out.name: decode_output(out.datatype, list(out.shape), raw)
            for out, raw in zip(response.outputs, response.raw_output_contents, strict=True)
        }
        try:
            version = int(response.model_version)
        except ValueError:
            version = 0
        return outputs, version

    def _called(
        self, span: trace.Span, model: str, version: str, code: str, started: float
    ) -> None:
        span.set_attribute("rpc.grpc.status_code", code)
        span.set_attribute("tailorline.model_version", version)
        if code != "OK":
            span.set_status(trace.Status(trace.StatusCode.ERROR, code))
        if self._on_call is not None:
            self._on_call(model, version, code, time.perf_counter() - started)

    def predict_fn(
        self, deadline: float | None
    ) -> Callable[[str, dict[str, np.ndarray]], tuple[dict[str, np.ndarray], int]]:
        """The ``predict`` callable of services.planning.predictions, bound to a deadline."""
        return lambda name, arrays: self.infer(name, arrays, deadline)


def plan_status(outcome: Plan | BaseException) -> str:
    """The ``status`` label of a solve's outcome (docs/metrics.md, ``tailorline_plans_total``)."""
    if isinstance(outcome, Plan):
        return str(outcome.status)
    if isinstance(outcome, Infeasible):
        return "infeasible"
    if isinstance(outcome, ProblemInvalid) or getattr(outcome, "code", None) == "INVALID_ARGUMENT":
        return "invalid"
    if isinstance(outcome, (Unreachable, TimedOut, Unavailable, DeadlineExceeded)):
        return "unavailable"
    return "error"


def optimizer_solvers(client: OptimizerClient, metrics: Any = None) -> tuple[SolveFn, SolveBatchFn]:
    """The Planner's ``solve`` and ``solve_batch`` through ``client``, with its transport
    failures (also a scenario's) mapped onto the gateway's errors; the optimizer's own errors
    (ProblemInvalid, Infeasible) pass as they are (services.common.errors.translate maps them).
    With ``metrics`` (the gateway's :class:`~services.gateway.interceptors.metrics.Metrics`) every
    solve is counted by status and method, its gap observed, and the solves in flight tracked."""

    def count(outcome: Plan | BaseException, options: SolveOptions | None) -> None:
        if metrics is None:
            return
        if isinstance(outcome, Plan):
            metrics.plan_solved(outcome.status, outcome.method, outcome.gap)
        else:
            method = options.method if options is not None else "unknown"
            metrics.plan_solved(plan_status(outcome), method)

    @contextmanager
    def in_flight(n: int) -> Iterator[None]:
        if metrics is None:
            yield
            return
        metrics.scenarios_in_flight.inc(n)
        try:
            yield
        finally:
            metrics.scenarios_in_flight.dec(n)

    def solve(
        problem: PlanningProblem, options: SolveOptions | None, deadline: float | None
    ) -> Plan:
        with in_flight(1):
            try:
                plan = client.solve(problem, options, deadline)
            except CallFailed as exc:
                error = downstream_error(exc, "optimizer")
                count(error, options)
                raise error from None
            except Exception as exc:
                count(exc, options)
                raise
        count(plan, options)
        return plan

    def solve_batch(
        problem: PlanningProblem,
        scenarios: Sequence[Scenario],
        options: SolveOptions | None,
        deadline: float | None,
    ) -> list[tuple[str, Plan | Exception]]:
        with in_flight(len(scenarios)):
            try:
                results = client.solve_batch(problem, scenarios, options, deadline)
            except CallFailed as exc:
                error = downstream_error(exc, "optimizer")
                for _ in scenarios:
                    count(error, options)
                raise error from None
        out: list[tuple[str, Plan | Exception]] = [
            (sid, downstream_error(r, "optimizer") if isinstance(r, CallFailed) else r)
            for sid, r in results
        ]
        for _sid, outcome in out:
            count(outcome, options)
        return out

    return solve, solve_batch


class _MappedStream:
    """A :class:`ScenarioStream` whose transport failures are the gateway's errors, each result
    counted in ``metrics`` (as :func:`optimizer_solvers` does) and the scenarios not answered
    yet kept in ``scenarios_in_flight`` until the stream ends or is cancelled."""

    def __init__(
        self, stream: ScenarioStream, n: int, options: SolveOptions | None, metrics: Any
    ) -> None:
        self._stream = stream
        self._left = n
        self._options = options
        self._metrics = metrics
        self._lock = threading.Lock()
        if metrics is not None:
            metrics.scenarios_in_flight.inc(n)

    def _done(self, n: int) -> None:
        with self._lock:
            n = min(n, self._left)
            self._left -= n
        if self._metrics is not None and n:
            self._metrics.scenarios_in_flight.dec(n)

    def _count(self, outcome: Plan | BaseException) -> None:
        if self._metrics is None:
            return
        if isinstance(outcome, Plan):
            self._metrics.plan_solved(outcome.status, outcome.method, outcome.gap)
        else:
            method = self._options.method if self._options is not None else "unknown"
            self._metrics.plan_solved(plan_status(outcome), method)

    def __iter__(self) -> Iterator[tuple[str, Plan | Exception]]:
        return self

    def __next__(self) -> tuple[str, Plan | Exception]:
        try:
            sid, result = next(self._stream)
        except StopIteration:
            self._done(self._left)
            raise
        except CallFailed as exc:
            self._done(self._left)
            raise downstream_error(exc, "optimizer") from None
        except BaseException:
            self._done(self._left)
            raise
        self._done(1)
        if isinstance(result, CallFailed):
            result = downstream_error(result, "optimizer")
        self._count(result)
        return sid, result

    def cancel(self) -> None:
        self._stream.cancel()
        self._done(self._left)


def optimizer_stream(client: OptimizerClient, metrics: Any = None) -> SolveStreamFn:
    """The streaming ``ReplanBatch``'s ``solve_stream`` through ``client.solve_stream``, its
    transport failures mapped and its results counted like :func:`optimizer_solvers`'."""

    def solve_stream(
        problem: PlanningProblem,
        scenarios: Sequence[Scenario],
        options: SolveOptions | None,
        budget_s: float | None,
        deadline: float | None,
    ) -> _MappedStream:
        stream = client.solve_stream(
            problem, scenarios, options, budget_s=budget_s, deadline=deadline
        )
        return _MappedStream(stream, len(scenarios), options, metrics)

    return solve_stream
