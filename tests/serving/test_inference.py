"""The serving core without a server: V2 tensor decoding, input checks, loading a version."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.common.errors import InvalidArgument, NotFound
from services.predictor.inference import (
    Signature,
    TensorSpec,
    bytes_elements,
    check_inputs,
    decode_v2_tensor,
    load_version,
    pack_raw_inputs,
)
from services.registry.repository import ModelRepository
from tests.serving.conftest import InProcess
from tests.serving.fixture_models import sample_inputs, write_version

PRICE = TensorSpec("list_price", "float32", (-1,))
FAMILY = TensorSpec("family_id", "string", (-1,))
SIG = Signature(inputs=(FAMILY, PRICE), outputs=(TensorSpec("quantiles", "float32", (-1, 3)),))


def v2_bytes(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def reason(exc_info: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str | None, str]:
    return exc_info.value.field, str(exc_info.value)


# -- decoding -----------------------------------------------------------------------------------


def test_json_and_binary_floats_decode_to_the_same_array() -> None:
    values = np.array([1.5, 2.0, 80.25], dtype=np.float32)
    from_json = decode_v2_tensor(PRICE, "FP32", [3], data=[1.5, 2.0, 80.25])
    from_raw = decode_v2_tensor(PRICE, "FP32", [3], raw=values.tobytes())
    np.testing.assert_array_equal(from_json, values)
    np.testing.assert_array_equal(from_raw, values)
    assert from_raw.dtype == np.float32


def test_strings_decode_from_json_and_length_prefixed_binary() -> None:
    from_json = decode_v2_tensor(FAMILY, "BYTES", [2], data=["F01", "Fé"])
    from_raw = decode_v2_tensor(FAMILY, "BYTES", [2], raw=v2_bytes([b"F01", "Fé".encode()]))
    assert list(from_json) == [b"F01", "Fé".encode()]
    assert list(from_raw) == list(from_json)


def test_column_vector_n_by_1_is_accepted_for_a_1d_input() -> None:
    out = decode_v2_tensor(PRICE, "FP32", [2, 1], data=[[3.0], [4.0]])
    assert out.shape == (2,)
    np.testing.assert_array_equal(out, [3.0, 4.0])


@pytest.mark.parametrize(
    ("spec", "datatype", "shape", "kwargs", "words"),
    [
        (PRICE, "FP64", [2], {"data": [1.0, 2.0]}, "datatype FP64 does not match"),
        (FAMILY, "FP32", [1], {"data": [1.0]}, "datatype FP32 does not match"),
        (PRICE, "FP32", [2, 2], {"data": [1, 2, 3, 4]}, "shape [2, 2] does not match"),
        (PRICE, "FP32", [3], {"data": [1.0, 2.0]}, "needs 3 elements but data has 2"),
        (PRICE, "FP32", [2], {"raw": b"\x00" * 7}, "needs 8 bytes"),
        (PRICE, "FP32", [2], {"data": [1.0, float("nan")]}, "NaN or infinity"),
        (PRICE, "FP32", [2], {"data": [float("inf"), 1.0]}, "NaN or infinity"),
        (PRICE, "FP32", [1], {"data": [1e39]}, "NaN or infinity"),  # overflows float32
        (PRICE, "FP32", [2], {"data": [1.0, "x"]}, "must be numbers"),
        (FAMILY, "BYTES", [2], {"data": ["a", 3]}, "must be strings"),
        (FAMILY, "BYTES", [1], {"raw": b"\x09\x00\x00\x00abc"}, "runs past the end"),
        (FAMILY, "BYTES", [2], {"raw": v2_bytes([b"a"])}, "needs 2 elements"),
    ],
)
def test_bad_tensors_name_the_tensor_and_the_reason(
    spec: TensorSpec, datatype: str, shape: list[int], kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidArgument) as exc:
        decode_v2_tensor(spec, datatype, shape, **kwargs)
    field, message = reason(exc)
    assert field == spec.name
    assert words in message


def test_check_inputs_reports_unknown_missing_and_ragged_inputs() -> None:
    ok = {"family_id": np.array([b"a", b"b"], dtype=object), "list_price": np.ones(2, np.float32)}
    assert check_inputs(SIG, ok, max_rows=10) == 2
    cases = [
        ({**ok, "colour": ok["list_price"]}, "colour", "unknown input"),
        ({"family_id": ok["family_id"]}, "list_price", "missing input"),
        ({**ok, "list_price": np.ones(3, np.float32)}, "list_price", "has 3 rows but"),
        ({k: v[:0] for k, v in ok.items()}, "family_id", "empty batch"),
    ]
    for arrays, field, words in cases:
        with pytest.raises(InvalidArgument) as exc:
            check_inputs(SIG, arrays, max_rows=10)
        assert exc.value.field == field and words in str(exc.value)
    with pytest.raises(InvalidArgument, match="exceeds the server's limit of 1"):
        check_inputs(SIG, ok, max_rows=1)


# -- binary inputs packed without per-element Python (the gRPC fast path) ------------------------


def test_bytes_elements_agrees_with_the_one_by_one_decoder() -> None:
    rng = np.random.default_rng(5)
    pool = [b"", b"F01", b"cotton", "Fé".encode(), b"a\x00", b"\x00\x00\x00\x00", b"x" * 300]
    for _ in range(300):
        rows, tensors = int(rng.integers(1, 9)), int(rng.integers(1, 4))
        values = [[pool[i] for i in rng.integers(0, len(pool), rows)] for _ in range(tensors)]
        raws = [v2_bytes(v) for v in values]
        if rng.random() < 0.4:  # corrupt one tensor: cut, extend or flip a byte
            k = int(rng.integers(tensors))
            raw = bytearray(raws[k])
            cut = int(rng.integers(1, len(raw) + 1))
            raws[k] = bytes([raw[:-cut], raw + b"\x01", raw[:cut - 1] + b"\x7f" + raw[cut:]][
                int(rng.integers(3))
            ])  # fmt: skip
        want: list[bytes] | None = []
        for raw in raws:
            try:
                one = list(decode_v2_tensor(FAMILY, "BYTES", [rows], raw=raw))
            except InvalidArgument:
                want = None
                break
            assert want is not None
            want += one
        blob = b"".join(raws)
        bounds = np.cumsum([0] + [len(r) for r in raws]).tolist()
        got = bytes_elements(np.frombuffer(blob, np.uint8), bounds, rows)
        if want is None:
            assert got is None
        else:
            assert got is not None
            assert [blob[s + 4 : s + 4 + n] for s, n in zip(*got, strict=True)] == want


def _raw_tensors(x: dict[str, np.ndarray]) -> tuple[list[tuple[str, str, list[int]]], list[bytes]]:
    tensors, raws = [], []
    for name, a in x.items():
        binary = a.dtype == np.object_
        tensors.append((name, "BYTES" if binary else "FP32", [len(a)]))
        raws.append(v2_bytes(list(a)) if binary else a.tobytes())
    return tensors, raws


def test_packed_binary_inputs_give_the_answers_of_predict(fixture_repo: Path) -> None:
    for name in ("demand", "cost"):
        model = load_version(fixture_repo, name)
        x = sample_inputs(name, 21, seed=4)
        strings = [k for k, a in x.items() if a.dtype == np.object_]
        x[strings[0]][:4] = [b"", b"F01\x00", "Fé".encode(), b"z" * 500]  # all valid strings
        tensors, raws = _raw_tensors(dict(reversed(x.items())))  # any tensor order
        packed = pack_raw_inputs(model, tensors, raws, max_rows=100)
        assert packed is not None and packed.rows == 21
        got, want = model.predict_packed(packed), model.predict(x)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_packing_declines_what_the_general_path_must_judge(fixture_repo: Path) -> None:
    """None sends the request down the general path, which names the problem (tests above and
    in test_server) or, for a string of 64 KiB or more, answers it: the fast path never answers a
    request the general path would refuse."""
    model = load_version(fixture_repo, "demand")
    x = sample_inputs("demand", 4)
    tensors, raws = _raw_tensors(x)
    i_price = [t[0] for t in tensors].index("list_price")
    i_family = [t[0] for t in tensors].index("family_id")
    nan = x["list_price"].copy()
    nan[1] = np.nan

    def with_tensor(i: int, tensor: Any = None, raw: Any = None) -> Any:
        t, r = list(tensors), list(raws)
        t[i], r[i] = tensor or t[i], raw if raw is not None else r[i]
        return t, r

    cases = {
        "unknown": with_tensor(i_price, ("colour", "FP32", [4])),
        "missing": (tensors[:-1], raws[:-1]),
        "twice": ([*tensors[:-1], tensors[0]], [*raws[:-1], raws[0]]),
        "dtype": with_tensor(
            i_price, ("list_price", "FP64", [4]), nan.astype(np.float64).tobytes()
        ),
        "shape": with_tensor(i_price, ("list_price", "FP32", [2, 2])),
        "ragged": with_tensor(i_price, ("list_price", "FP32", [3]), x["list_price"][:3].tobytes()),
        "nan": with_tensor(i_price, raw=nan.tobytes()),
        "short": with_tensor(i_family, raw=raws[i_family][:-1]),
        "huge string": with_tensor(i_family, raw=v2_bytes([b"y" * 70000, *x["family_id"][1:]])),
    }
    assert pack_raw_inputs(model, tensors, raws, max_rows=4) is not None
    assert pack_raw_inputs(model, tensors, raws, max_rows=3) is None  # over the batch limit
    for case, (t, r) in cases.items():
        assert pack_raw_inputs(model, t, r, max_rows=100) is None, case


# -- loading ------------------------------------------------------------------------------------


def test_loaded_version_answers_like_the_saved_model_itself(fixture_repo: Path) -> None:
    direct = InProcess(fixture_repo)
    for name in ("demand", "cost"):
        model = load_version(fixture_repo, name)
        assert model.version == 1
        x = sample_inputs(name, 33, seed=3)
        got = model.predict(x)
        want = direct(name, 1, x)
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    demand = load_version(fixture_repo, "demand")
    assert [s.name for s in demand.signature.inputs] == sorted(
        ["family_id", "attr_fabric", "week_of_year", "list_price"]
    )
    assert demand.signature.outputs[0].to_v2() == {
        "name": "quantiles",
        "datatype": "FP32",
        "shape": [-1, 3],
    }


def test_the_current_pointer_decides_the_version(make_repo: Any) -> None:
    root = make_repo()
    v2 = write_version(root, "demand", seed=2, make_current=False)
    assert load_version(root, "demand").version == 1  # written but not promoted
    ModelRepository(root).set_current("demand", v2)
    model = load_version(root, "demand")
    assert model.version == 2
    x = sample_inputs("demand", 5)
    assert not np.allclose(
        model.predict(x)["quantiles"], load_version(root, "demand", 1).predict(x)["quantiles"]
    )


def test_metadata_that_disagrees_with_the_signature_is_refused(make_repo: Any) -> None:
    root = make_repo()
    meta_path = root / "cost" / "1" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["inputs"].append({"name": "capacity_hours", "dtype": "float32", "shape": [-1]})
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="capacity_hours"):
        load_version(root, "cost")


def test_a_model_without_versions_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_version(tmp_path, "demand")
