"""The real model server (``tailorline predictor``) in its own process, driven by tritonclient.

One server per module, started through the CLI command on free ports and stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as tgrpc
import tritonclient.http as thttp
from tritonclient.utils import InferenceServerException

from optimizer.serving.ports import free_port
from services.registry.repository import ModelRepository
from tests.serving.conftest import InProcess
from tests.serving.fixture_models import sample_inputs, write_version

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
# `tailorline predictor` through the real entry point
BOOT = "from services.cli import main; main()"


@dataclass
class Server:
    root: Path
    http: str
    grpc: str
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{url}/v2/health/ready", timeout=2) as r:
            return bool(json.loads(r.read()).get("ready"))
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def server(fixture_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("serving")
    root = work / "models"
    shutil.copytree(fixture_repo, root)
    http_port, grpc_port = free_port(), free_port()
    log = work / "server.log"
    env = {**os.environ, "TAILORLINE_PREDICTOR_WATCH_INTERVAL_S": "1", "TAILORLINE_HOME": str(work)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, "predictor", "--models", str(root),
             "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    srv = Server(root, f"127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", proc, log)
    try:
        deadline = time.monotonic() + 180
        while not _ready(srv.http):
            if proc.poll() is not None:
                pytest.fail(f"predictor exited with {proc.returncode}:\n{srv.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"predictor not ready after 180 s:\n{srv.log_tail()}")
            time.sleep(0.5)
        yield srv
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def in_process(server: Server) -> InProcess:
    return InProcess(server.root)


def _inputs(module: Any, arrays: dict[str, np.ndarray], binary: bool = True) -> list[Any]:
    out = []
    for name, a in arrays.items():
        datatype = "BYTES" if a.dtype == object else {np.float32: "FP32"}.get(a.dtype.type, "FP64")
        inp = module.InferInput(name, list(a.shape), datatype)
        if module is thttp:
            inp.set_data_from_numpy(a, binary_data=binary)
        else:
            inp.set_data_from_numpy(a)
        out.append(inp)
    return out


def infer(server: Server, protocol: str, model: str, arrays: dict[str, np.ndarray],
          binary: bool = True) -> tuple[int, dict[str, np.ndarray]]:  # fmt: skip
    """(answering version, outputs) from tritonclient over ``protocol``."""
    if protocol == "grpc":
        gclient = tgrpc.InferenceServerClient(server.grpc)
        result: Any = gclient.infer(model, _inputs(tgrpc, arrays))
        version = result.get_response().model_version
        names = [o.name for o in result.get_response().outputs]
    else:
        hclient = thttp.InferenceServerClient(server.http)
        outputs = None
        if not binary:
            names = ["quantiles"] if model == "demand" else ["unit_cost", "hours_per_unit"]
            outputs = [thttp.InferRequestedOutput(n, binary_data=False) for n in names]
        result = hclient.infer(model, _inputs(thttp, arrays, binary), outputs=outputs)
        version = result.get_response()["model_version"]
        names = [o["name"] for o in result.get_response()["outputs"]]
    return int(version), {n: result.as_numpy(n) for n in names}


# -- health, metadata, correct answers ----------------------------------------------------------


def test_ready_and_both_models_described(server: Server) -> None:
    client = thttp.InferenceServerClient(server.http)
    assert client.is_server_ready()
    demand = client.get_model_metadata("demand")
    assert {i["name"]: i["datatype"] for i in demand["inputs"]} == {
        "family_id": "BYTES", "attr_fabric": "BYTES", "week_of_year": "FP32", "list_price": "FP32"
    }  # fmt: skip
    assert demand["outputs"] == [{"name": "quantiles", "datatype": "FP32", "shape": [-1, 3]}]
    cost = tgrpc.InferenceServerClient(server.grpc).get_model_metadata("cost")
    assert sorted(o.name for o in cost.outputs) == ["hours_per_unit", "unit_cost"]


@pytest.mark.parametrize(("protocol", "binary"), [("grpc", True), ("http", True), ("http", False)])
@pytest.mark.parametrize("model", ["demand", "cost"])
def test_tritonclient_gets_the_in_process_answers(
    server: Server, in_process: InProcess, protocol: str, binary: bool, model: str
) -> None:
    x = sample_inputs(model, 37, seed=11)  # includes an unseen family (out of vocabulary)
    version, got = infer(server, protocol, model, x, binary)
    want = in_process(model, version, x)
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == want[name].shape
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6)


def test_raw_grpc_request_with_awkward_strings_and_one_output(
    server: Server, in_process: InProcess
) -> None:
    """What the gateway sends (a bare stub, raw contents), with strings that a fast decoder could
    get wrong, [N, 1] shapes and a subset of the outputs: the in-process answers."""
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    x = sample_inputs("cost", 6, seed=2)
    x["family_id"][:5] = [b"", b"F01\x00", "Fé".encode(), b"x" * 70000, b"\x00"]
    request = service_pb2.ModelInferRequest(model_name="cost", id="r-1")
    for name, a in x.items():
        binary = a.dtype == np.object_
        request.inputs.add(name=name, shape=[len(a), 1], datatype="BYTES" if binary else "FP32")
        raw = b"".join(len(v).to_bytes(4, "little") + v for v in a) if binary else a.tobytes()
        request.raw_input_contents.append(raw)
    request.outputs.add(name="unit_cost")
    with grpc.insecure_channel(server.grpc) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(request, timeout=30)
        x["family_id"][3] = b"x"  # now every string is short: the other decoding path
        request.raw_input_contents[0] = b"".join(
            len(v).to_bytes(4, "little") + v for v in x["family_id"]
        )
        short = stub.ModelInfer(request, timeout=30)
    for answer in (response, short):
        assert (answer.id, answer.model_version) == ("r-1", "1")
        assert [(o.name, o.datatype, list(o.shape)) for o in answer.outputs] == [
            ("unit_cost", "FP32", [6])
        ]
    x_long = {**x, "family_id": x["family_id"].copy()}
    x_long["family_id"][3] = b"x" * 70000
    for answer, inputs in ((response, x_long), (short, x)):
        got = np.frombuffer(answer.raw_output_contents[0], np.float32)
        np.testing.assert_allclose(got, in_process("cost", 1, inputs)["unit_cost"], rtol=1e-6)


# -- bad tensors --------------------------------------------------------------------------------


def _bad_cases() -> dict[str, tuple[dict[str, np.ndarray], str, str]]:
    x = sample_inputs("demand", 4)
    nan = x["list_price"].copy()
    nan[2] = np.nan
    return {
        "unknown": ({**x, "colour": x["list_price"]}, "colour", "unknown input tensor"),
        "missing": ({k: v for k, v in x.items() if k != "week_of_year"}, "week_of_year",
                    "missing input tensor"),
        "shape": ({**x, "list_price": x["list_price"].reshape(2, 2)}, "list_price",
                  "shape [2, 2] does not match"),
        "dtype": ({**x, "list_price": x["list_price"].astype(np.float64)}, "list_price",
                  "datatype FP64 does not match"),
        "nan": ({**x, "list_price": nan}, "list_price", "NaN or infinity"),
        "ragged": ({**x, "week_of_year": x["week_of_year"][:3]}, "week_of_year",
                   "has 3 rows but"),
    }  # fmt: skip


@pytest.mark.parametrize("case", sorted(_bad_cases()))
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_bad_tensors_get_400_or_invalid_argument(server: Server, protocol: str, case: str) -> None:
    arrays, tensor, words = _bad_cases()[case]
    with pytest.raises(InferenceServerException) as exc:
        infer(server, protocol, "demand", arrays)
    status = exc.value.status()
    assert status == ("400" if protocol == "http" else "StatusCode.INVALID_ARGUMENT")
    assert tensor in exc.value.message() and words in exc.value.message()


def test_malformed_json_body_is_400_not_500(server: Server) -> None:
    req = urllib.request.Request(
        f"http://{server.http}/v2/models/cost/infer",
        data=json.dumps({"inputs": [{"name": "family_id"}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 400
    assert "shape" in exc.value.read().decode()


# -- repository extension and promotion ---------------------------------------------------------


def test_grpc_repository_load_with_the_kserve_proto(server: Server) -> None:
    # KServe's RepositoryModelLoadRequest: field 1 = model_name. Encoded by hand so the test
    # process does not import kserve (which parses sys.argv on import).
    name = b"cost"
    request = b"\x0a" + bytes([len(name)]) + name
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/RepositoryModelLoad")
        reply = call(request, timeout=60)
    assert reply == b"\x0a\x04cost\x10\x01"  # model_name="cost", isLoaded=true
    # tritonclient's proto numbers model_name 2: a clear INVALID_ARGUMENT, not UNKNOWN/INTERNAL.
    with pytest.raises(InferenceServerException) as exc:
        tgrpc.InferenceServerClient(server.grpc).load_model("cost")
    assert exc.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "model_name is empty" in exc.value.message()


@dataclass
class Answer:
    started: float
    version: int | None
    error: str | None
    outputs: dict[str, np.ndarray] | None


def _client_loop(server: Server, protocol: str, x: dict[str, np.ndarray],
                 stop: threading.Event, answers: list[Answer]) -> None:  # fmt: skip
    while not stop.is_set():
        started = time.monotonic()
        try:
            version, outputs = infer(server, protocol, "demand", x)
            answers.append(Answer(started, version, None, outputs))
        except Exception as exc:
            answers.append(Answer(started, None, repr(exc), None))


def test_promotion_under_load_drops_no_request(server: Server, in_process: InProcess) -> None:
    x = sample_inputs("demand", 16, seed=5)
    stop = threading.Event()
    answers: dict[str, list[Answer]] = {"grpc": [], "http": []}
    threads = [
        threading.Thread(target=_client_loop, args=(server, p, x, stop, answers[p]))
        for p in answers
    ]
    for t in threads:
        t.start()
    try:
        _wait(lambda: all(len(a) >= 10 for a in answers.values()), "requests before promotion")
        v2 = write_version(server.root, "demand", seed=2)  # also moves `current` to 2
        thttp.InferenceServerClient(server.http, network_timeout=120).load_model("demand")
        loaded_at = time.monotonic()
        _wait(
            lambda: all(sum(a.started > loaded_at for a in ans) >= 10 for ans in answers.values()),
            "requests after promotion",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    expected = {1: in_process("demand", 1, x), v2: in_process("demand", v2, x)}
    for protocol, ans in answers.items():
        errors = [a.error for a in ans if a.error]
        assert errors == [], f"{protocol}: {len(errors)} failed requests, first: {errors[:1]}"
        versions = [a.version for a in ans]
        assert versions == sorted(versions), f"{protocol} went back to an old version"  # type: ignore[type-var]
        assert versions[0] == 1
        assert all(a.version == v2 for a in ans if a.started > loaded_at)
        for a in ans:
            assert a.outputs is not None and a.version is not None
            np.testing.assert_allclose(
                a.outputs["quantiles"], expected[a.version]["quantiles"], rtol=1e-6
            )


def test_watcher_picks_up_a_new_current_without_a_load_call(server: Server) -> None:
    x = sample_inputs("cost", 3)
    before, _ = infer(server, "grpc", "cost", x)
    v_new = write_version(server.root, "cost", seed=3)
    assert ModelRepository(server.root).current("cost") == v_new != before
    _wait(lambda: infer(server, "grpc", "cost", x)[0] == v_new, "the watcher to load the version")


def _wait(cond: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)
