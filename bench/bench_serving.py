"""Serving benchmark: rows/s and latency of the predictor over V2 gRPC and REST vs in-process.

    .venv/bin/python bench/bench_serving.py [--models DIR] [--model demand] [--seconds 5]

Starts the real model server (``python -m services.predictor.server``) on free ports, then, one
after the other so they do not compete for CPU, times for batch 1 and 256:

- in-process ``tf.function``: the SavedModel's ``serving_default`` concrete function called with
  ready ``tf.Tensor`` inputs (the pure model rate),
- in-process ``LoadedModel.predict``: the server's own code path, numpy in and out,
- V2 gRPC with three clients, all sending binary ``raw_input_contents``:
  tritonclient.grpc (a V2 client this project did not write; builds the request every call),
  the gateway's own ``PredictorClient`` (encodes the numpy columns every call, as in production),
  and a bare gRPC stub sending one prebuilt ``ModelInferRequest`` (the least client work: what is
  left is the server and the transport),
- V2 REST (tritonclient.http, binary tensor extension, one caller only: it runs on gevent),

each with ``--concurrency`` callers sending back-to-back requests (threads, one client each).
Prints a markdown table and, per gRPC client and concurrency, the ratio to the in-process
``tf.function`` rate (what issue 3 names) and to ``LoadedModel.predict``, both with the same number
of callers. Without ``--models`` it builds the tiny fixture models of tests/serving (say so when
you record numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from optimizer.serving.ports import free_port  # noqa: E402

TF_PATH = "in-process tf.function"
NP_PATH = "in-process LoadedModel.predict (numpy, packed)"
GRPC_PATH = "V2 gRPC (tritonclient)"
GW_PATH = "V2 gRPC (PredictorClient, the gateway's)"
RAW_PATH = "V2 gRPC (bare stub, prebuilt request)"
GRPC_PATHS = (GRPC_PATH, GW_PATH, RAW_PATH)
REST_PATH = "V2 REST (tritonclient, binary)"
STRING_POOL = [b"F01", b"F02", b"F03", b"cotton", b"denim", b"wool", b"L1", b"L2", b"m", b"new"]


@dataclass(frozen=True)
class Row:
    path: str
    batch: int
    concurrency: int
    calls: int
    rows_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_call: float  # bench process + server process CPU time, per call

    @property
    def rows_per_cpu_s(self) -> float:
        return self.batch * 1000.0 / self.cpu_ms_per_call if self.cpu_ms_per_call else 0.0


def inputs_for(signature: Any, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        if spec.dtype == "string":
            out[spec.name] = np.array(
                [STRING_POOL[i] for i in rng.integers(0, len(STRING_POOL), rows)], dtype=object
            )
        else:
            out[spec.name] = rng.uniform(0.0, 100.0, rows).astype(np.float32)
    return out


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system, all threads) of this process plus process ``pid``."""
    t = os.times()
    total = t.user + t.system
    if pid is not None:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measure(
    path: str,
    batch: int,
    make_call: Callable[[], Callable[[], Any]],
    seconds: float,
    concurrency: int = 1,
    server_pid: int | None = None,
) -> Row:
    """``concurrency`` threads, each with its own ``make_call()``, call back to back."""
    lats: list[list[float]] = [[] for _ in range(concurrency)]
    ready, go = threading.Barrier(concurrency + 1), threading.Barrier(concurrency + 1)
    stop_at = [0.0]
    errors: list[BaseException] = []

    def loop(i: int) -> None:
        lat = lats[i]
        call: Callable[[], Any] | None = None
        try:  # the client is made and warmed up in its own thread (tritonclient.http: gevent)
            call = make_call()
            for _ in range(5):
                call()
        except BaseException as exc:
            errors.append(exc)
        ready.wait()
        go.wait()
        if call is None:
            return
        try:
            while time.perf_counter() < stop_at[0] or len(lat) < 10:
                t0 = time.perf_counter()
                call()
                lat.append(time.perf_counter() - t0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    ready.wait()
    cpu0 = cpu_seconds(server_pid)
    start = time.perf_counter()
    stop_at[0] = start + seconds
    go.wait()
    for t in threads:
        t.join()
    total = time.perf_counter() - start
    cpu = cpu_seconds(server_pid) - cpu0
    if errors:
        raise RuntimeError(f"{path}, batch {batch}: a call failed") from errors[0]
    ms = np.concatenate([np.array(lat) for lat in lats]) * 1000.0
    return Row(
        path,
        batch,
        concurrency,
        len(ms),
        batch * len(ms) / total,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        cpu * 1000.0 / len(ms),
    )


def start_server(root: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    http, grpc = free_port(), free_port()
    env = {**os.environ, "TAILORLINE_PREDICTOR_WATCH_INTERVAL_S": "0"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.predictor.server", "--models", str(root),
             "--http-port", str(http), "--grpc-port", str(grpc)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"127.0.0.1:{http}"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"http://{url}/v2/health/ready", timeout=2) as r:
                if json.loads(r.read()).get("ready"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc, url, f"127.0.0.1:{grpc}"


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def v2_inputs(module: Any, arrays: dict[str, np.ndarray]) -> list[Any]:
    out = []
    for name, a in arrays.items():
        inp = module.InferInput(name, list(a.shape), "BYTES" if a.dtype == object else "FP32")
        inp.set_data_from_numpy(a)
        out.append(inp)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, help="model repository (default: fixture models)")
    parser.add_argument("--model", default="demand", choices=["demand", "cost"])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1], help="callers in flight per cell"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is shown")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import grpc
    import tensorflow as tf
    import tritonclient.grpc as tgrpc
    import tritonclient.http as thttp
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    from services.gateway.downstream import PredictorClient, encode_bytes
    from services.predictor.inference import load_version

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    if args.models is None:
        from tests.serving.fixture_models import build_repository

        root = build_repository(tmp / "models")
        source = "fixture models of tests/serving (tiny Keras MLP with StringLookup)"
    else:
        root = args.models
        source = f"trained models in {root}"
    load_before = os.getloadavg()

    model = load_version(root, args.model)
    proc, http_url, grpc_url = start_server(root, tmp / "server.log")
    cells: list[tuple[str, int, int, Callable[[], Callable[[], Any]]]] = []
    for batch in args.batches:
        x = inputs_for(model.signature, batch)
        tensors = {k: tf.constant(v) for k, v in x.items()}

        def tf_call(t: dict[str, Any] = tensors) -> Callable[[], Any]:
            return lambda: model(**t)

        def np_call(x: dict[str, np.ndarray] = x) -> Callable[[], Any]:
            return lambda: model.predict(x)

        def grpc_call(x: dict[str, np.ndarray] = x) -> Callable[[], Any]:
            client, inputs = tgrpc.InferenceServerClient(grpc_url), v2_inputs(tgrpc, x)
            return lambda: client.infer(args.model, inputs)

        def gw_call(x: dict[str, np.ndarray] = x) -> Callable[[], Any]:
            client = PredictorClient(grpc_url)
            return lambda: client.infer(args.model, x)

        def raw_call(x: dict[str, np.ndarray] = x) -> Callable[[], Any]:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(grpc_url))
            request = service_pb2.ModelInferRequest(model_name=args.model)
            for name, a in x.items():
                binary = a.dtype == object
                request.inputs.add(name=name, shape=a.shape, datatype="BYTES" if binary else "FP32")
                request.raw_input_contents.append(encode_bytes(a) if binary else a.tobytes())

            def call() -> list[np.ndarray]:
                response = stub.ModelInfer(request)
                return [np.frombuffer(r, "<f4") for r in response.raw_output_contents]

            return call

        def rest_call(x: dict[str, np.ndarray] = x) -> Callable[[], Any]:
            client, inputs = thttp.InferenceServerClient(http_url), v2_inputs(thttp, x)
            return lambda: client.infer(args.model, inputs)

        for conc in args.concurrency:
            cells += [(TF_PATH, batch, conc, tf_call), (NP_PATH, batch, conc, np_call)]
            cells.append((GRPC_PATH, batch, conc, grpc_call))
            cells.append((GW_PATH, batch, conc, gw_call))
            cells.append((RAW_PATH, batch, conc, raw_call))
            if conc == 1:  # tritonclient.http runs on gevent: one client thread only
                cells.append((REST_PATH, batch, conc, rest_call))
    results: dict[tuple[str, int, int], list[Row]] = {}
    try:
        for _ in range(args.repeat):  # rounds interleave the paths, so load drift hits all
            for path, batch, conc, factory in cells:
                pid = proc.pid if path in (*GRPC_PATHS, REST_PATH) else None
                row = measure(path, batch, factory, args.seconds, conc, pid)
                results.setdefault((path, batch, conc), []).append(row)
    finally:
        stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    # the median round (by rows/s) of each cell
    rows = [sorted(rs, key=lambda r: r.rows_per_s)[len(rs) // 2] for rs in results.values()]

    rows.sort(key=lambda r: (r.batch, r.concurrency, r.path))
    cpu = platform.processor() or platform.machine()
    print(f"model: {args.model} ({source}); {os.cpu_count()} CPUs, {cpu}")
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")  # fmt: skip
    print(f"GPU visible to TensorFlow: {bool(tf.config.list_physical_devices('GPU'))}\n")
    print(f"median of {args.repeat} rounds of {args.seconds:g} s per cell\n")
    print(
        "| path | batch | in flight | calls | rows/s | p50 ms | p99 ms | CPU ms/call | rows/CPU-s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.path} | {r.batch} | {r.concurrency} | {r.calls} | {r.rows_per_s:,.0f} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_ms_per_call:.2f} "
            f"| {r.rows_per_cpu_s:,.0f} |"
        )
    big = max(args.batches)
    by = {(r.path, r.batch, r.concurrency): r for r in rows}
    print(f"\nbatch {big}: gRPC rows/s over in-process rows/s with the same callers in flight")
    print("(issue 3's bar: >= 0.50 of in-process tf.function; the CPU column compares rows per")
    print("CPU-second, client + server, which a loaded machine distorts less than wall time)\n")
    print(
        "| client | in flight | rows/s | / tf.function | / LoadedModel.predict "
        "| rows/CPU-s / tf.function's | bar |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for path in GRPC_PATHS:
        for conc in args.concurrency:
            r, tf_row, np_row = (by[(p, big, conc)] for p in (path, TF_PATH, NP_PATH))
            ratio = r.rows_per_s / tf_row.rows_per_s
            bar = "met" if ratio >= 0.5 else "NOT met"
            print(
                f"| {path} | {conc} | {r.rows_per_s:,.0f} | {ratio:.2f}x "
                f"| {r.rows_per_s / np_row.rows_per_s:.2f}x "
                f"| {r.rows_per_cpu_s / tf_row.rows_per_cpu_s:.2f}x | {bar} |"
            )


if __name__ == "__main__":
    main()
