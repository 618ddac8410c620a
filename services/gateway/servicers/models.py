"""``tailorline.v1.ModelService``: the registry's versions, retraining jobs."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from google.protobuf import json_format, struct_pb2
from tailorline.v1 import model_service_pb2 as model_pb
from tailorline.v1 import model_service_pb2_grpc as model_grpc

from services.common.errors import FailedPrecondition, InvalidArgument, shown
from services.registry.repository import ModelRepository
from services.store.jobs import get_job
from services.store.models import list_versions
from services.training.launch import check_request
from services.training.retraining import NO_LAUNCHER


def _struct(value: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if isinstance(value, dict):
        json_format.ParseDict(_plain(value), s)
    return s


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _from_struct(value: Any) -> Any:
    """A ``Struct``/``ListValue`` as plain Python, NaN and infinities kept as floats (so the
    bounds check names the field; ``json_format.MessageToDict`` raises ValueError on them)."""
    if isinstance(value, struct_pb2.Struct):
        return {key: _from_struct(value[key]) for key in value}
    if isinstance(value, struct_pb2.ListValue):
        return [_from_struct(v) for v in value]
    return value


def _iso(value: Any) -> str:
    return "" if value is None else value.isoformat()


class ModelServicer(model_grpc.ModelServiceServicer):
    """The registry (store's ``model_versions``, else the repository) and retraining jobs."""

    def __init__(self, engine: Any, models_dir: Any, retraining: Any = None) -> None:
        self.engine = engine
        self.models_dir = models_dir
        # services.training.retraining.Retraining (submit(models, config) -> job_id), or None
        self.retraining = retraining

    def _list(self, name: str) -> list[model_pb.ModelVersion]:
        repo = ModelRepository(self.models_dir)
        served = {n: repo.served_version(n) for n in repo.names()} if repo.root.is_dir() else {}
        rows = list_versions(self.engine, name)
        out = [
            model_pb.ModelVersion(
                name=r.name,
                version=r.version,
                status=r.status,
                served=served.get(r.name) == r.version,
                metrics=_struct(r.metrics),
                created_at=_iso(r.created_at),
                data_start=_iso(r.data_start),
                data_end=_iso(r.data_end),
            )
            for r in rows
        ]
        listed = {(m.name, m.version) for m in out}
        for n in served:  # versions in the repository the registry does not know
            if name and n != name:
                continue
            for v in repo.versions(n):
                if (n, v) not in listed:
                    meta = repo.read_metadata(n, v)
                    out.append(
                        model_pb.ModelVersion(
                            name=n,
                            version=v,
                            status="served" if served[n] == v else "candidate",
                            served=served[n] == v,
                            metrics=_struct(meta.get("metrics")),
                        )
                    )
        return out

    async def ListModels(
        self, request: model_pb.ListModelsRequest, context: Any
    ) -> model_pb.ListModelsResponse:
        if request.name and request.name not in ("demand", "cost"):
            raise InvalidArgument(f"unknown model {shown(request.name)}", field="name")
        models = await asyncio.to_thread(self._list, request.name)
        return model_pb.ListModelsResponse(models=models)

    async def Retrain(
        self, request: model_pb.RetrainRequest, context: Any
    ) -> model_pb.RetrainResponse:
        config = _from_struct(request.config)
        models = list(request.models) or ["demand"]
        # The request is checked (bounds: services.training.limits) before the launcher is: a
        # model that is not retrained or a knob out of bounds is the caller's error with or
        # without a launcher configured, and no job row exists for it.
        config = check_request(models, config)
        if self.retraining is None:
            raise FailedPrecondition(NO_LAUNCHER)
        job_id = await asyncio.to_thread(self.retraining.submit, models, config)
        return model_pb.RetrainResponse(job=await asyncio.to_thread(self._job, job_id))

    def _job(self, job_id: str) -> model_pb.RetrainJob:
        r = get_job(self.engine, job_id)
        return model_pb.RetrainJob(
            job_id=r.job_id,
            status=r.status,
            launcher=r.launcher or "",
            created_at=_iso(r.created_at),
            started_at=_iso(r.started_at),
            finished_at=_iso(r.finished_at),
            result=_struct(r.result),
            error=r.error or "",
        )

    async def GetRetrainJob(
        self, request: model_pb.GetRetrainJobRequest, context: Any
    ) -> model_pb.GetRetrainJobResponse:
        if not request.job_id or len(request.job_id) > 64:
            raise InvalidArgument("give the id Retrain returned", field="job_id")
        return model_pb.GetRetrainJobResponse(
            job=await asyncio.to_thread(self._job, request.job_id)
        )
