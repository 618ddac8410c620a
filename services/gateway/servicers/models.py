"""``tailorline.v1.ModelService``: the registry's versions, retraining jobs, accuracy.

``GetAccuracy`` answers from :func:`services.monitoring.model_accuracy` and sets the
``tailorline_model_*_ratio{model,family}`` gauges (docs/metrics.md) from the same figures, of
every family whatever the call's ``families`` filter, when the servicer was given a Prometheus
registry."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from google.protobuf import json_format, struct_pb2
from tailorline.v1 import model_service_pb2 as model_pb
from tailorline.v1 import model_service_pb2_grpc as model_grpc

from services.common.errors import FailedPrecondition, InvalidArgument, shown
from services.monitoring.model_accuracy import ACCURACY_MODELS, model_accuracy
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

    def __init__(
        self, engine: Any, models_dir: Any, retraining: Any = None, registry: Any = None
    ) -> None:
        self.engine = engine
        self.models_dir = models_dir
        # services.training.retraining.Retraining (submit(models, config) -> job_id), or None
        self.retraining = retraining
        self.gauges = AccuracyGauges(registry) if registry is not None else None

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

    async def GetAccuracy(
        self, request: model_pb.GetAccuracyRequest, context: Any
    ) -> model_pb.GetAccuracyResponse:
        model = request.model or "demand"
        if model not in ACCURACY_MODELS:
            raise InvalidArgument(
                f"unknown model {shown(model)}; one of {', '.join(ACCURACY_MODELS)}",
                field="model",
            )
        weeks = request.weeks or 13
        if not 1 <= weeks <= MAX_WEEKS:
            raise InvalidArgument(f"must lie in [1, {MAX_WEEKS}], got {weeks}", field="weeks")
        families = [str(f).strip().upper() for f in request.families]
        for i, f in enumerate(families):
            if not f or len(f) > 64:
                raise InvalidArgument("give a family id (1..64 characters)", field=f"families[{i}]")
        # every family's figures (one query, filtered here): the gauges are refreshed from them
        # whatever the caller's filter, so a dashboard does not wait for an unfiltered call
        table = await asyncio.to_thread(model_accuracy, self.engine, model, weeks)
        if self.gauges is not None:
            self.gauges.update(model, table)
        if families and len(table):
            table = table[table["family_id"].isin(families)].reset_index(drop=True)
        return accuracy_response(model, table)


MAX_WEEKS = 520


def _num(x: Any) -> float:
    return float(x) if x is not None and math.isfinite(float(x)) else math.nan


def accuracy_response(model: str, table: Any) -> model_pb.GetAccuracyResponse:
    rows = [
        model_pb.FamilyWeekAccuracy(
            family_id=str(r.family_id),
            week=str(r.week)[:10],
            actual=_num(r.actual),
            forecast=_num(r.forecast),
            wape=_num(r.wape),
            bias=_num(r.bias),
            mean=_num(r.mean),
            coverage=_num(r.coverage),
            n_variants=int(r.n_variants),
            model_versions=str(r.model_versions),
        )
        for r in table.itertuples(index=False)
    ]
    actual = float(table["actual"].sum()) if len(table) else 0.0
    wape = float(table["abs_error"].sum()) / actual if actual > 0 else math.nan
    # bias by the forecasts' means: a demand P50 sits below its mean on skewed counts
    # (services.monitoring.accuracy); the cost model's mean is its one figure
    bias = (float(table["mean"].sum()) - actual) / actual if actual > 0 else math.nan
    return model_pb.GetAccuracyResponse(model=model, rows=rows, wape=wape, bias=bias)


class AccuracyGauges:
    """``tailorline_model_{wape,bias,interval_coverage}_ratio{model,family}``: per family over
    the weeks the model's last GetAccuracy covered (every family, filtered call or not),
    unit-weighted."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Gauge

        labels = ["model", "family"]
        self.wape = Gauge("tailorline_model_wape_ratio", "WAPE of what was served, per model "
                          "and family", labels, registry=registry)  # fmt: skip
        self.bias = Gauge("tailorline_model_bias_ratio", "(forecast mean - actual) / actual, "
                          "per model and family", labels, registry=registry)  # fmt: skip
        self.coverage = Gauge("tailorline_model_interval_coverage_ratio", "share of actuals "
                              "in [P10, P90], per model and family", labels,
                              registry=registry)  # fmt: skip

    def update(self, model: str, table: Any) -> None:
        if table is None or not len(table):
            return
        for family, part in table.groupby("family_id"):
            actual = float(part["actual"].sum())
            if actual <= 0:
                continue
            weights = part["n_variants"].astype(float)
            cov = float((part["coverage"].fillna(0) * weights).sum() / max(weights.sum(), 1.0))
            self.wape.labels(model, str(family)).set(float(part["abs_error"].sum()) / actual)
            self.bias.labels(model, str(family)).set((float(part["mean"].sum()) - actual) / actual)
            self.coverage.labels(model, str(family)).set(cov)
