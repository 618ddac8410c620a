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
    check_inputs,
    decode_v2_tensor,
    load_version,
)
from services.predictor.repository import ModelRepository
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
