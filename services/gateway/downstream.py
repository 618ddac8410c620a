"""Blocking gRPC clients of the predictor (KServe V2) and the optimizer (Ray Serve gRPC).

Both retry a call that failed with UNAVAILABLE (only that code: anything else is an answer) with
exponential backoff, never past the caller's deadline (an absolute ``time.monotonic()`` value),
and map transport failures onto :mod:`services.common.errors` so the gateway's error interceptor
sees one hierarchy. The gateway runs them in worker threads (``asyncio.to_thread``); gRPC's
blocking channels are thread-safe.
"""

from __future__ import annotations

import re
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import numpy as np

from services.common.errors import DeadlineExceeded, TailorlineError, Unavailable

T = TypeVar("T")

#: V2 datatype -> numpy dtype name used by services.planning.predictions.frame_to_arrays.
V2_TO_DTYPE = {
    "BYTES": "string",
    "FP32": "float32",
    "FP64": "float64",
    "INT32": "int32",
    "INT64": "int64",
}
_NUMPY = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8", "BOOL": "?"}
#: What the health check calls on Serve's proxy (no Ray import needed in the gateway).
SERVE_HEALTHZ = "/ray.serve.RayServeAPIService/Healthz"


class DownstreamError(TailorlineError):
    """A downstream answered with an error the user cannot fix (reported as INTERNAL)."""


def _remaining(deadline: float | None, cap: float) -> float:
    if deadline is None:
        return cap
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the request's deadline passed before the downstream call")
    return min(left, cap)


def call_with_retries(
    fn: Callable[[float], T],
    *,
    what: str,
    deadline: float | None,
    timeout_s: float,
    retries: int,
    backoff_s: float,
) -> T:
    """``fn(timeout)``; retried on UNAVAILABLE only, with doubling backoff inside the deadline."""
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
                raise Unavailable(f"{what} is unreachable: {exc.details()}") from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DeadlineExceeded(f"{what} did not answer within the deadline") from None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise Unavailable(f"{what} is overloaded: {exc.details()}") from None
            raise
    raise AssertionError("unreachable")  # pragma: no cover


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


def _last_line(exc: grpc.RpcError) -> str:
    """The last line of a downstream's details (Ray puts a whole traceback there)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc.details() or ""))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else "no details")[:300]


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

    def close(self) -> None:
        self._channel.close()

    def _call(self, fn: Callable[[float], T], deadline: float | None) -> T:
        return call_with_retries(
            fn,
            what=f"predictor ({self.target})",
            deadline=deadline,
            timeout_s=self._timeout,
            retries=self._retries,
            backoff_s=self._backoff,
        )

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
        meta = self._call(lambda t: self._stub.ModelMetadata(request, timeout=t), deadline)
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
        try:
            response = self._call(lambda t: self._stub.ModelInfer(request, timeout=t), deadline)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise Unavailable(f"predictor serves no model {name!r}") from None
            raise DownstreamError(
                f"predictor rejected the {name!r} request: {exc.details()}"
            ) from None
        outputs = {
            out.name: decode_output(out.datatype, list(out.shape), raw)
            for out, raw in zip(response.outputs, response.raw_output_contents, strict=True)
        }
        try:
            version = int(response.model_version)
        except ValueError:
            version = 0
        return outputs, version

    def predict_fn(
        self, deadline: float | None
    ) -> Callable[[str, dict[str, np.ndarray]], tuple[dict[str, np.ndarray], int]]:
        """The ``predict`` callable of services.planning.predictions, bound to a deadline."""
        return lambda name, arrays: self.infer(name, arrays, deadline)


class OptimizerGrpc:
    """The optimizer's ``Solve`` over Serve's gRPC proxy, returning :class:`optimizer.Plan`."""

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        max_message_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        from tailorline.optimizer.v1 import optimizer_service_pb2_grpc as svc_grpc

        self.target = target
        self._channel = _channel(target, max_message_bytes)
        self._stub = svc_grpc.OptimizerServiceStub(self._channel)
        self._healthz = self._channel.unary_unary(SERVE_HEALTHZ)
        self._timeout = timeout_s
        self._retries = retries
        self._backoff = backoff_s

    def close(self) -> None:
        self._channel.close()

    def ready(self, timeout_s: float = 1.0) -> bool:
        try:
            self._healthz(b"", timeout=timeout_s)
            return True
        except grpc.RpcError:
            return False

    def solve(self, problem: Any, options: Any = None, deadline: float | None = None) -> Any:
        """``optimizer.solve`` over the wire; raises ProblemInvalid/Infeasible like it."""
        from tailorline.optimizer.v1 import optimizer_service_pb2 as svc_pb

        from optimizer.serving.client import APP_METADATA, _as_optimizer_error
        from optimizer.serving.convert import options_to_proto, plan_from_proto, problem_to_proto

        request = svc_pb.SolveRequest(problem=problem_to_proto(problem))
        if options is not None:
            request.options.CopyFrom(options_to_proto(options))
        try:
            response = call_with_retries(
                lambda t: self._stub.Solve(request, metadata=APP_METADATA, timeout=t),
                what=f"optimizer ({self.target})",
                deadline=deadline,
                timeout_s=self._timeout,
                retries=self._retries,
                backoff_s=self._backoff,
            )
        except grpc.RpcError as exc:
            mapped = _as_optimizer_error(exc)
            if mapped is exc:
                raise DownstreamError(f"optimizer failed: {_last_line(exc)}") from None
            raise mapped from None
        return plan_from_proto(response.plan)
