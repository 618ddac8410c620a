"""Serving core: load a SavedModel version, validate V2 tensors, run its signature.

Protocol-neutral and free of kserve/grpc: :mod:`services.predictor.kserve_model` only translates
V2 requests into calls of :func:`decode_v2_tensor` and :meth:`LoadedModel.predict`. Every problem
a client can fix raises :class:`~services.common.errors.InvalidArgument` naming the tensor (the
``field``) and the reason; the adapter turns it into HTTP 400 / gRPC INVALID_ARGUMENT.

Inference goes through the SavedModel's ``serving_default`` concrete function (a traced
``tf.function``), never ``model.predict``. TensorFlow is imported lazily so that importing this
module costs nothing.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.common.errors import InvalidArgument, NotFound
from services.registry.repository import ModelRepository

log = logging.getLogger(__name__)

SIGNATURE_KEY = "serving_default"

#: TensorFlow dtype name -> (V2 datatype, numpy dtype). Strings travel as V2 ``BYTES``.
_DTYPES: dict[str, tuple[str, Any]] = {
    "string": ("BYTES", np.object_),
    "float32": ("FP32", np.float32),
    "float64": ("FP64", np.float64),
    "int32": ("INT32", np.int32),
    "int64": ("INT64", np.int64),
    "bool": ("BOOL", np.bool_),
}
_V2_TO_TF = {v2: tf_name for tf_name, (v2, _) in _DTYPES.items()}
_UINT32 = struct.Struct("<I")


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a signature. ``shape`` uses ``-1`` for the batch (any size)."""

    name: str
    dtype: str  # TensorFlow dtype name: "string", "float32", ...
    shape: tuple[int, ...]

    @property
    def datatype(self) -> str:
        """The V2 protocol datatype (``BYTES``, ``FP32``, ...)."""
        return _DTYPES[self.dtype][0]

    def to_v2(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec | None:
        return next((s for s in self.inputs if s.name == name), None)


# -- V2 tensor decoding -------------------------------------------------------------------------


def _decode_bytes_blob(name: str, blob: bytes) -> list[bytes]:
    """V2 binary BYTES: each element is a little-endian uint32 length then that many bytes."""
    out: list[bytes] = []
    append = out.append
    unpack = _UINT32.unpack_from
    blob = bytes(blob)
    offset, end = 0, len(blob)
    while offset < end:
        if offset + 4 > end:
            raise InvalidArgument("truncated BYTES element length in binary data", field=name)
        (length,) = unpack(blob, offset)
        offset += 4
        if offset + length > end:
            raise InvalidArgument("BYTES element runs past the end of binary data", field=name)
        append(blob[offset : offset + length])
        offset += length
    return out


def _flatten(data: Sequence[Any]) -> list[Any]:
    """V2 JSON ``data`` may be flat (row-major) or nested; return it flat."""
    if data and isinstance(data[0], list | tuple):
        flat: list[Any] = []
        for item in data:
            flat.extend(_flatten(item) if isinstance(item, list | tuple) else [item])
        return flat
    return list(data)


def decode_v2_tensor(
    spec: TensorSpec,
    datatype: str,
    shape: Sequence[int],
    data: Sequence[Any] | None = None,
    raw: bytes | None = None,
) -> np.ndarray:
    """Turn one V2 input tensor (JSON ``data`` or binary ``raw``) into a numpy array for ``spec``.

    Checks datatype, rank, element count and (for floats) NaN/inf; raises InvalidArgument.
    """
    name = spec.name
    if datatype != spec.datatype:
        raise InvalidArgument(
            f"datatype {datatype} does not match the model's {spec.datatype} ({spec.dtype})",
            field=name,
        )
    shape = [int(d) for d in shape]
    target = shape
    if len(spec.shape) == 1 and len(shape) == 2 and shape[1] == 1:
        target = [shape[0]]  # [N, 1] is accepted for a 1-D input (docs/model-interface.md)
    if len(target) != len(spec.shape) or any(
        want != -1 and got != want for got, want in zip(target, spec.shape, strict=False)
    ):
        raise InvalidArgument(
            f"shape {shape} does not match the model's {list(spec.shape)} (-1 = any batch size; "
            "[N, 1] is also accepted for [-1])",
            field=name,
        )
    if any(d < 0 for d in shape):
        raise InvalidArgument(f"shape {shape} has a negative dimension", field=name)
    count = math.prod(shape)
    np_dtype = _DTYPES[spec.dtype][1]
    array: np.ndarray[Any, Any]
    if raw is not None:
        if spec.dtype == "string":
            values: Any = _decode_bytes_blob(name, raw)
            if len(values) != count:
                raise InvalidArgument(
                    f"shape {shape} needs {count} elements but binary data holds {len(values)}",
                    field=name,
                )
            array = np.empty(count, dtype=np.object_)
            array[:] = values
        else:
            itemsize = np.dtype(np_dtype).itemsize
            if len(raw) != count * itemsize:
                raise InvalidArgument(
                    f"shape {shape} needs {count * itemsize} bytes of {datatype} but binary "
                    f"data has {len(raw)}",
                    field=name,
                )
            array = np.frombuffer(raw, dtype=np_dtype)
    else:
        flat = _flatten(data or [])
        if len(flat) != count:
            raise InvalidArgument(
                f"shape {shape} needs {count} elements but data has {len(flat)}", field=name
            )
        if spec.dtype == "string":
            if not all(isinstance(v, str | bytes) for v in flat):
                raise InvalidArgument("BYTES data must be strings", field=name)
            array = np.empty(count, dtype=np.object_)
            array[:] = [v.encode("utf-8") if isinstance(v, str) else v for v in flat]
        else:
            if any(isinstance(v, str | bytes) or v is None for v in flat):
                raise InvalidArgument(f"{datatype} data must be numbers", field=name)
            try:
                with np.errstate(over="ignore"):  # an overflow becomes inf, reported below
                    array = np.asarray(flat, dtype=np_dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidArgument(
                    f"cannot read data as {datatype}: {exc}", field=name
                ) from None
    array = np.reshape(array, target)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array.reshape(-1)))[0])
        raise InvalidArgument(f"contains NaN or infinity (first at element {bad})", field=name)
    return array


def check_inputs(signature: Signature, arrays: Mapping[str, np.ndarray], max_rows: int) -> int:
    """All inputs present, none unknown, one batch size for all, within ``max_rows``.

    Returns the batch size. Dtypes and shapes per tensor were checked by decode_v2_tensor.
    """
    expected = [s.name for s in signature.inputs]
    unknown = sorted(set(arrays) - set(expected))
    if unknown:
        raise InvalidArgument(
            f"unknown input tensor; the model's inputs are {expected}", field=unknown[0]
        )
    missing = [n for n in expected if n not in arrays]
    if missing:
        raise InvalidArgument(
            f"missing input tensor (the model needs all of {expected})", field=missing[0]
        )
    sizes = {n: int(a.shape[0]) for n, a in arrays.items()}
    batch = sizes[expected[0]]
    for n in expected:
        if sizes[n] != batch:
            raise InvalidArgument(
                f"has {sizes[n]} rows but {expected[0]} has {batch}: every input needs the "
                "same batch size",
                field=n,
            )
    if batch == 0:
        raise InvalidArgument("empty batch (0 rows)", field=expected[0])
    if batch > max_rows:
        raise InvalidArgument(
            f"batch of {batch} rows exceeds the server's limit of {max_rows}", field=expected[0]
        )
    return batch


# -- binary V2 inputs, packed without per-element Python work ----------------------------------


@dataclass(frozen=True)
class PackedInputs:
    """Binary V2 inputs in the form :meth:`LoadedModel.predict_packed` takes.

    Strings stay in the request's bytes: ``blob`` holds every string tensor's raw contents one
    after the other, ``offsets``/``lengths`` ``[S, N]`` where each element's bytes are; the
    traced function cuts them out (``tf.strings.substr``), so no Python object per string.
    """

    rows: int
    floats: np.ndarray | None  # [K, N] float32, the model's float columns in signature order
    blob: bytes | None
    offsets: np.ndarray | None  # [S, N], the model's string columns in signature order
    lengths: np.ndarray | None  # [S, N]


def bytes_elements(
    blob: np.ndarray, bounds: Sequence[int], count: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Offsets and lengths of the elements of V2 binary BYTES tensors (4-byte little-endian length,
    then the bytes), or None unless each tensor holds exactly ``count`` well-formed elements.

    ``blob`` is the tensors' raw contents one after the other (uint8); tensor ``k`` spans
    ``bounds[k]:bounds[k + 1]``. Vectorised: ``jump[p]`` is where an element starting at ``p``
    would end; a tensor's elements are the orbit of its first offset under ``jump``, found for
    all tensors at once by pointer doubling (log2(count) numpy steps instead of a Python step per
    element). Only offsets whose length prefix is below 65536 are candidates (that keeps the
    steps small for text); a longer element gives None and the caller's general path.
    """
    size, tensors = int(blob.size), len(bounds) - 1
    if count <= 0 or tensors <= 0 or size < 4 * count * tensors:
        return None
    # candidates: offsets whose length prefix would be < 65536 (its two high bytes are zero)
    cand = np.flatnonzero((blob[2:-1] == 0) & (blob[3:] == 0))
    lengths = blob[cand].astype(np.intp) | (blob[cand + 1].astype(np.intp) << 8)
    n = cand.size  # compact ids: 0..n-1 the candidates, n = the end of the blob, n + 1 = bad
    ids = np.full(size + 2, n + 1, dtype=np.intp)
    ids[cand] = np.arange(n)
    ids[size] = n
    jump = np.empty(n + 2, dtype=np.intp)
    jump[:n] = ids[np.minimum(cand + 4 + lengths, size + 1)]
    jump[n:] = n + 1
    first, last = ids[bounds[:-1]], ids[bounds[1:]]
    if (first > n).any() or (last > n).any():
        return None
    chains = first[:, None]
    step: np.ndarray = jump
    while chains.shape[1] < count:
        chains = np.concatenate((chains, step[chains]), axis=1)
        if chains.shape[1] < count:
            step = step[step]
    chains = chains[:, :count].reshape(-1)
    if not np.array_equal(jump[chains[count - 1 :: count]], last):
        return None
    return cand[chains], lengths[chains]


def pack_raw_inputs(
    model: LoadedModel,
    tensors: Sequence[tuple[str, str, Sequence[int]]],
    raws: Sequence[bytes],
    max_rows: int,
) -> PackedInputs | None:
    """Binary V2 inputs ``(name, datatype, shape)`` + raw contents, packed for the model.

    The fast path for well-formed requests: float columns become one ``[K, N]`` array from one
    buffer, string columns one ``[S, N]`` array, with no Python loop over elements. Returns None
    when the model has no packed function or *anything* about the request is off (unknown,
    missing or repeated tensor, datatype, shape, byte count, batch size, NaN/inf): the caller then
    takes the general path (:func:`decode_v2_tensor` + :func:`check_inputs`), which names the
    problem. Same values either way.
    """
    floats, strings = model._float_cols, model._string_cols
    if (
        model._packed_raw is None
        or len(tensors) != len(raws)
        or len(raws) != len(floats) + len(strings)
    ):
        return None
    float_raw: list[bytes | None] = [None] * len(floats)
    string_raw: list[bytes | None] = [None] * len(strings)
    rows = -1
    for (name, datatype, shape), raw in zip(tensors, raws, strict=True):
        if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
            n = int(shape[0])
        else:
            return None
        if n != rows and rows != -1:
            return None
        rows = n
        if name in model._float_index:
            i = model._float_index[name]
            if datatype != "FP32" or len(raw) != 4 * n or float_raw[i] is not None:
                return None
            float_raw[i] = raw
        elif name in model._string_index:
            i = model._string_index[name]
            if datatype != "BYTES" or string_raw[i] is not None:
                return None
            string_raw[i] = raw
        else:
            return None
    if not 0 < rows <= max_rows:
        return None
    float_array = blob = offsets = lengths = None
    if floats:
        joined = b"".join(float_raw)  # type: ignore[arg-type]
        float_array = np.frombuffer(joined, dtype="<f4").reshape(len(floats), rows)
        if not np.isfinite(float_array).all():
            return None
    if strings:
        blob = b"".join(string_raw)  # type: ignore[arg-type]
        bounds = np.cumsum([0] + [len(r) for r in string_raw]).tolist()  # type: ignore[arg-type]
        elements = bytes_elements(np.frombuffer(blob, dtype=np.uint8), bounds, rows)
        if elements is None:
            return None
        offsets = (elements[0] + 4).reshape(len(strings), rows)
        lengths = elements[1].reshape(len(strings), rows)
    return PackedInputs(rows, float_array, blob, offsets, lengths)


# -- loading and running ------------------------------------------------------------------------


def _spec_from_tf(name: str, tf_spec: Any) -> TensorSpec:
    dtype = tf_spec.dtype.name
    if dtype not in _DTYPES:
        raise ValueError(f"tensor {name!r} has dtype {dtype}, which the server does not support")
    shape = tuple(-1 if d is None else int(d) for d in tf_spec.shape.as_list())
    return TensorSpec(name=name, dtype=dtype, shape=shape)


def _check_metadata(name: str, version: int, signature: Signature, meta: Mapping[str, Any]) -> None:
    """The metadata's declared inputs must be the signature's (names and dtypes)."""
    declared = meta.get("inputs")
    if not isinstance(declared, list):
        return
    by_name = {str(d.get("name")): d for d in declared if isinstance(d, Mapping)}
    actual = {s.name: s for s in signature.inputs}
    if set(by_name) != set(actual):
        raise ValueError(
            f"{name} v{version}: metadata.json inputs {sorted(by_name)} differ from the "
            f"SavedModel signature's {sorted(actual)}"
        )
    for tensor, d in by_name.items():
        dtype = str(d.get("dtype", "")).removeprefix("tf.")
        dtype = _V2_TO_TF.get(dtype.upper(), dtype)
        if dtype and dtype != actual[tensor].dtype:
            raise ValueError(
                f"{name} v{version}: metadata.json says {tensor} is {dtype} but the "
                f"signature takes {actual[tensor].dtype}"
            )


@dataclass
class LoadedModel:
    """One loaded version of one model. Immutable after loading; safe to call from threads.

    ``predict`` packs the inputs before they reach TensorFlow: all float32 columns as one
    ``[K, N]`` tensor, all string columns as one ``[S, N]`` tensor, unpacked again inside a traced
    function that calls the signature. Two conversions and one call instead of one conversion
    and one Python-level argument binding per column (the demand model has ~30 columns): the
    same graph ops on the same values, so the same results.
    """

    name: str
    version: int
    path: Path
    signature: Signature
    metadata: Mapping[str, Any]
    _fn: Any = field(repr=False)
    _loaded: Any = field(repr=False)  # keeps the SavedModel's variables alive
    _packed: Any = field(default=None, repr=False)
    _packed_raw: Any = field(default=None, repr=False)
    _float_cols: tuple[str, ...] = ()
    _string_cols: tuple[str, ...] = ()
    _float_index: dict[str, int] = field(init=False, repr=False)
    _string_index: dict[str, int] = field(init=False, repr=False)
    device: str = "/CPU:0"  # where it runs (load_version: the GPU when there is one)

    def __post_init__(self) -> None:
        self._float_index = {n: i for i, n in enumerate(self._float_cols)}
        self._string_index = {n: i for i, n in enumerate(self._string_cols)}

    def predict(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on validated numpy inputs; outputs in signature order."""
        import tensorflow as tf

        if self._packed is not None:
            args = []
            if self._float_cols:
                args.append(np.stack([arrays[c] for c in self._float_cols]))
            if self._string_cols:
                flat: list[bytes] = []
                for c in self._string_cols:
                    flat.extend(arrays[c].tolist())
                n = len(flat) // len(self._string_cols)
                args.append(tf.reshape(tf.constant(flat), [len(self._string_cols), n]))
            result = self._packed(*args)
        else:
            feeds = {
                # a list of bytes becomes a tf.string tensor about 2x faster than an object array
                n: tf.constant(a.tolist()) if a.dtype == np.object_ else tf.convert_to_tensor(a)
                for n, a in arrays.items()
            }
            result = self._fn(**feeds)
        return {s.name: result[s.name].numpy() for s in self.signature.outputs}

    def predict_packed(self, packed: PackedInputs) -> dict[str, np.ndarray]:
        """Run the model on inputs already packed by :func:`pack_raw_inputs`."""
        import tensorflow as tf

        args: list[Any] = []
        if packed.floats is not None:
            args.append(packed.floats)
        if packed.blob is not None:
            args += [packed.blob, packed.offsets, packed.lengths]
        # tf.constant first: the concrete function converts numpy/bytes arguments much slower
        result = self._packed_raw(*[tf.constant(a) for a in args])
        return {s.name: result[s.name].numpy() for s in self.signature.outputs}

    def __call__(self, **tensors: Any) -> Any:
        """The raw signature function (tensors in, tensors out): what benchmarks time."""
        return self._fn(**tensors)


def _packed_function(
    fn: Any, signature: Signature
) -> tuple[Any, Any, tuple[str, ...], tuple[str, ...]]:
    """Concrete functions taking ``floats [K, N]`` and/or ``strings [S, N]`` (see LoadedModel),
    and the same with the strings as ``blob, offsets [S, N], lengths [S, N]`` (see PackedInputs).

    ``(None, None, (), ())`` when some input is neither a 1-D float32 nor a 1-D string tensor.
    """
    import tensorflow as tf

    if any(s.shape != (-1,) or s.dtype not in ("float32", "string") for s in signature.inputs):
        return None, None, (), ()
    floats = tuple(s.name for s in signature.inputs if s.dtype == "float32")
    strings = tuple(s.name for s in signature.inputs if s.dtype == "string")
    specs, raw_specs = [], []
    if floats:
        specs.append(tf.TensorSpec([len(floats), None], tf.float32, name="floats"))
        raw_specs.append(specs[-1])
    if strings:
        specs.append(tf.TensorSpec([len(strings), None], tf.string, name="strings"))
        raw_specs += [
            tf.TensorSpec([], tf.string, name="blob"),
            tf.TensorSpec([len(strings), None], tf.int64, name="offsets"),
            tf.TensorSpec([len(strings), None], tf.int64, name="lengths"),
        ]

    def unpack(*packed: Any) -> Any:
        feeds: dict[str, Any] = {}
        parts = list(packed)
        if floats:
            feeds.update(zip(floats, tf.unstack(parts.pop(0), num=len(floats)), strict=True))
        if strings:
            feeds.update(zip(strings, tf.unstack(parts.pop(0), num=len(strings)), strict=True))
        return fn(**feeds)

    def unpack_raw(*packed: Any) -> Any:
        if not strings:
            return unpack(*packed)
        *head, blob, offsets, lengths = packed
        return unpack(*head, tf.strings.substr(blob, offsets, lengths))

    concrete = tf.function(unpack, input_signature=specs).get_concrete_function()
    raw = tf.function(unpack_raw, input_signature=raw_specs).get_concrete_function()
    return concrete, raw, floats, strings


def _flat_call(fn: Any) -> Any:
    """``fn(*tensors)`` through the concrete function's ``_call_flat`` when this TensorFlow has it.

    ``ConcreteFunction.__call__`` binds and type-checks its arguments in Python first, about
    0.13 ms a call for the four packed tensors (~7% of a gRPC batch-256 call's CPU); the flat
    call skips that for arguments that are already the right tensors (``predict_packed`` makes
    them). ``_call_flat`` is private: without it, the public call is used.
    """
    if fn is None or not callable(getattr(fn, "_call_flat", None)):
        return fn
    flat, captured = fn._call_flat, tuple(fn.captured_inputs)  # fixed for a loaded model
    return lambda *tensors: flat(tensors, captured)


def load_version(root: Path, name: str, version: int | None = None) -> LoadedModel:
    """Load ``name`` at ``version`` (default: the served version) and warm it up once."""
    repo = ModelRepository(Path(root))
    if version is None:
        version = repo.served_version(name)
        if version is None:
            raise NotFound(f"model {name!r} has no complete version in {root}", field="model")
    meta = repo.read_metadata(name, version)
    path = repo.saved_model_dir(name, version)
    import tensorflow as tf

    device = placement()
    with tf.device(device):  # variables and ops on the GPU when there is one (soft placement)
        loaded = tf.saved_model.load(str(path))
    if SIGNATURE_KEY not in loaded.signatures:
        raise ValueError(f"{path} has no {SIGNATURE_KEY!r} signature")
    fn = loaded.signatures[SIGNATURE_KEY]
    _, kwargs = fn.structured_input_signature
    inputs = tuple(_spec_from_tf(n, s) for n, s in sorted(kwargs.items()))
    outputs = tuple(_spec_from_tf(n, s) for n, s in sorted(fn.structured_outputs.items()))
    signature = Signature(inputs=inputs, outputs=outputs)
    _check_metadata(name, version, signature, meta)
    packed, packed_raw, floats, strings = _packed_function(fn, signature)
    packed_raw = _flat_call(packed_raw)
    model = LoadedModel(
        name, int(version), path, signature, meta, fn, loaded, packed, packed_raw, floats, strings
    )
    model.device = device
    model.predict(warmup_inputs(signature))  # first call pays graph set-up, not a client
    if packed_raw is not None:  # one row of zeros / empty strings, as binary V2 tensors
        raw = [(s.name, s.datatype, [1]) for s in signature.inputs]
        warm = pack_raw_inputs(model, raw, [b"\0" * 4] * len(raw), 1)
        assert warm is not None
        model.predict_packed(warm)
    log.info("loaded %s version %s from %s on %s", name, version, path, device)
    return model


def placement() -> str:
    """``/GPU:0`` when TensorFlow sees a GPU, else ``/CPU:0``: where a loaded model runs."""
    import tensorflow as tf

    try:
        gpus = tf.config.list_physical_devices("GPU")
    except Exception:  # a broken driver: serve on the CPU rather than not at all
        gpus = []
    return "/GPU:0" if gpus else "/CPU:0"


def output_parameters(metadata: Mapping[str, Any], output: str) -> dict[str, str]:
    """V2 ``parameters`` of an output tensor from the version's metadata: the demand model's
    ``quantiles`` carries ``quantile_levels`` (``"0.05,0.1,...,0.95"``, one per column)."""
    for spec in metadata.get("outputs") or []:
        if isinstance(spec, Mapping) and spec.get("name") == output and spec.get("quantiles"):
            levels = ",".join(f"{float(q):g}" for q in spec["quantiles"])
            return {"quantile_levels": levels}
    return {}


def warmup_inputs(signature: Signature, rows: int = 1) -> dict[str, np.ndarray]:
    """Plausible dummy inputs (empty strings, zeros) for warm-up."""
    out: dict[str, np.ndarray] = {}
    for s in signature.inputs:
        shape = [rows if d == -1 else d for d in s.shape]
        if s.dtype == "string":
            out[s.name] = np.full(shape, b"", dtype=np.object_)
        else:
            out[s.name] = np.zeros(shape, dtype=_DTYPES[s.dtype][1])
    return out
