"""KServe adapters: a ``kserve.Model`` per served model and a versioned ``ModelRepository``.

Thin on purpose: tensors are decoded and checked by :mod:`services.predictor.inference`; this
module only translates between kserve's ``InferRequest``/``InferResponse`` and numpy, and maps
:class:`~services.common.errors.InvalidArgument` to kserve's ``InvalidInput`` (HTTP 400, gRPC
INVALID_ARGUMENT).

Promotion without dropped requests: each :class:`ServedModel` holds one reference to the active
:class:`~services.predictor.inference.LoadedModel`. A request reads that reference once, so it is
answered entirely by one version (named in the response's ``model_version``). ``reload()`` loads
the newly served version fully (in a worker thread, warm-up included) and only then replaces the
reference; the old version is freed when its last in-flight request finishes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kserve import Model
from kserve import ModelRepository as KServeRepository
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.metrics import PREDICT_HIST_TIME
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from services.common.errors import InvalidArgument
from services.predictor.inference import (
    LoadedModel,
    check_inputs,
    decode_v2_tensor,
    load_version,
    output_parameters,
    pack_raw_inputs,
)
from services.registry.repository import ModelRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingOptions:
    """Per-model serving knobs (from PredictorSettings)."""

    max_batch_rows: int = 65536
    watch_interval_s: float = 0.0
    inline_max_rows: int = 4096


class ServedModel(Model):
    """One model name (``demand`` or ``cost``) served from the repository at ``root``.

    With ``watch_interval_s > 0`` a daemon thread re-reads the ``current`` pointer that often and
    reloads on a change, so a promotion is picked up even without a repository load call.
    """

    def __init__(self, name: str, root: Path, options: ServingOptions) -> None:
        super().__init__(name)
        self.root = Path(root)
        self.options = options
        self._active: LoadedModel | None = None
        self._reload_lock = threading.Lock()
        self._failed_version: int | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def active(self) -> LoadedModel | None:
        return self._active

    def load(self) -> bool:
        """Load the served version (blocking; used at start-up)."""
        self.reload_blocking()
        return self.ready

    def start(self) -> None:
        """Called by ModelServer.start(): begin watching ``current`` when asked to."""
        if self.options.watch_interval_s > 0 and self._watcher is None:
            self._watcher = threading.Thread(
                target=self._watch, name=f"watch-{self.name}", daemon=True
            )
            self._watcher.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.options.watch_interval_s):
            try:
                self.reload_blocking(retry_failed=False)
            except Exception as exc:  # keep serving the old version; say why once
                log.error(
                    "model %s: new version not loaded, still serving the old: %s", self.name, exc
                )

    async def reload(self) -> LoadedModel:
        """Load the version ``current`` now names, then swap it in (off the event loop)."""
        return await asyncio.to_thread(self.reload_blocking)

    def reload_blocking(self, retry_failed: bool = True) -> LoadedModel:
        """Load the served version fully (warm-up included), then swap the reference.

        Requests keep being answered by the old version meanwhile. Loading the version that is
        already active is a no-op. A version that fails to load leaves the old one serving.
        """
        with self._reload_lock:
            wanted = ModelRepository(self.root).served_version(self.name)
            old = self._active
            if old is not None and wanted == old.version:
                return old
            if not retry_failed and wanted is not None and wanted == self._failed_version:
                assert old is not None
                return old
            try:
                new = load_version(self.root, self.name, wanted)
            except Exception:
                self._failed_version = wanted
                raise
            self._failed_version = None
            self._active = new  # the atomic swap: one reference assignment
            self.ready = True
            log.info(
                "model %s: now serving version %s (was %s)",
                self.name,
                new.version,
                old.version if old else None,
            )
            return new

    def get_input_types(self) -> list[dict[str, Any]]:
        active = self._active
        return [s.to_v2() for s in active.signature.inputs] if active else []

    def get_output_types(self) -> list[dict[str, Any]]:
        active = self._active
        return [s.to_v2() for s in active.signature.outputs] if active else []

    # -- inference ------------------------------------------------------------------------------
    async def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        model = self._active  # read once: this version answers the whole request
        if model is None:
            raise InvalidInput(f"model {self.name} has no loaded version")
        if not isinstance(payload, InferRequest):
            raise InvalidInput("only the V2 inference protocol is supported")
        try:
            arrays = _decode_inputs(model, payload)
            batch = check_inputs(model.signature, arrays, self.options.max_batch_rows)
            wanted = _requested_outputs(model, payload)
        except InvalidArgument as exc:
            raise InvalidInput(f"model {self.name}: {exc}") from None
        if batch <= self.options.inline_max_rows:
            # A small batch costs less than the hop to a worker thread (and its GIL hand-over).
            outputs = model.predict(arrays)
        else:
            outputs = await asyncio.to_thread(model.predict, arrays)
        infer_outputs = []
        for spec in model.signature.outputs:
            if spec.name not in wanted:
                continue
            value = np.ascontiguousarray(outputs[spec.name])
            out = InferOutput(
                name=spec.name,
                shape=list(value.shape),
                datatype=spec.datatype,
                parameters=output_parameters(model.metadata, spec.name) or None,
            )
            out.set_data_from_numpy(value, binary_data=payload.use_binary_outputs)
            infer_outputs.append(out)
        return InferResponse(
            response_id=payload.id or "",
            model_name=self.name,
            model_version=str(model.version),
            infer_outputs=infer_outputs,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )

    async def infer_grpc(self, request: Any) -> Any | None:
        """gRPC ``ModelInfer`` without kserve's per-tensor objects: a ``ModelInferRequest`` with
        ``raw_input_contents`` in, a ``ModelInferResponse`` with ``raw_output_contents`` out.

        Returns None when the fast path does not apply (typed ``contents``, anything malformed,
        an unknown output name): the caller then goes through kserve's ``InferRequest`` path and
        :meth:`predict`, which gives the same answer or names the problem.
        """
        model = self._active  # read once: this version answers the whole request
        raws = request.raw_input_contents
        if model is None or not raws:
            return None
        tensors = []
        for t in request.inputs:
            if t.HasField("contents"):
                return None
            tensors.append((t.name, t.datatype, t.shape))
        packed = pack_raw_inputs(model, tensors, raws, self.options.max_batch_rows)
        if packed is None:
            return None
        specs = model.signature.outputs
        if request.outputs:
            wanted = {o.name for o in request.outputs}
            if wanted - {s.name for s in specs}:
                return None
            specs = tuple(s for s in specs if s.name in wanted)
        if any(s.dtype == "string" for s in specs):
            return None
        with PREDICT_HIST_TIME.labels(model_name=self.name).time():
            if packed.rows <= self.options.inline_max_rows:
                outputs = model.predict_packed(packed)
            else:
                outputs = await asyncio.to_thread(model.predict_packed, packed)
        response = pb.ModelInferResponse(
            id=request.id, model_name=self.name, model_version=str(model.version)
        )
        for spec in specs:
            value = np.ascontiguousarray(outputs[spec.name])
            tensor = response.outputs.add(name=spec.name, datatype=spec.datatype, shape=value.shape)
            for key, text in output_parameters(model.metadata, spec.name).items():
                tensor.parameters[key].string_param = text
            response.raw_output_contents.append(value.tobytes())
        return response


def _decode_inputs(model: LoadedModel, request: InferRequest) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    expected = [s.name for s in model.signature.inputs]
    for inp in request.inputs:
        spec = model.signature.input(inp.name)
        if spec is None:
            raise InvalidArgument(
                f"unknown input tensor; the model's inputs are {expected}", field=inp.name
            )
        if inp.name in arrays:
            raise InvalidArgument("input tensor given twice", field=inp.name)
        raw = getattr(inp, "_raw_data", None)
        data = None if raw is not None else inp.data
        arrays[inp.name] = decode_v2_tensor(spec, inp.datatype, inp.shape, data=data, raw=raw)
    return arrays


def _requested_outputs(model: LoadedModel, request: InferRequest) -> set[str]:
    names = [s.name for s in model.signature.outputs]
    if not request.request_outputs:
        return set(names)
    wanted = {o.name for o in request.request_outputs}
    for name in sorted(wanted - set(names)):
        raise InvalidArgument(f"unknown output tensor; the model's outputs are {names}", field=name)
    return wanted


class VersionedRepository(KServeRepository):
    """kserve's registry, backed by the tailorline model repository folder.

    ``load(name)`` (the V2 repository extension's load, REST and gRPC) re-reads the ``current``
    pointer and swaps the new version in without a gap; a name not yet served is loaded and
    registered. ``unload`` comes from kserve (the model stops being served).
    """

    def __init__(self, root: Path, options: ServingOptions) -> None:
        super().__init__(models_dir=str(root))
        self.root = Path(root)
        self.options = options

    async def load(self, name: str) -> bool:
        model = self.get_model(name)
        if isinstance(model, ServedModel):
            await model.reload()
            return True
        if ModelRepository(self.root).served_version(name) is None:
            raise ModelNotFound(name)
        fresh = ServedModel(name, self.root, self.options)
        await fresh.reload()
        fresh.start()
        self.update(fresh)
        return True


class RepositoryExtension(ModelRepositoryExtension):
    """kserve 0.21's gRPC servicer reads ``response["name"]``/``["load"]`` from ``load()``, which
    returns None upstream (so gRPC RepositoryModelLoad failed with INTERNAL); return the dict."""

    async def load(self, model_name: str) -> dict[str, Any]:
        if not model_name:
            # Triton's proto numbers RepositoryModelLoadRequest.model_name 2 (KServe's: 1), so
            # tritonclient.grpc's load_model arrives here with an empty name.
            raise InvalidInput(
                "model_name is empty (KServe's V2 proto: RepositoryModelLoadRequest.model_name "
                "is field 1; Triton clients send it as field 2: use REST "
                "POST /v2/repository/models/{name}/load instead)"
            )
        try:
            await super().load(model_name)
        except ModelNotReady as exc:
            exc.reason = str(exc)  # kserve's gRPC status mapper reads .reason
            raise
        return {"name": model_name, "load": True}

    async def unload(self, model_name: str) -> dict[str, Any]:
        await super().unload(model_name)
        return {"name": model_name, "unload": True}
