"""``tailorline status``: the stack's health, served models, last plans and retrains at a glance.

:func:`gather` probes the three processes (one short call each, no retries: the gateway's
standard health service, the predictor's V2 ``ServerReady``, Serve's ``Healthz``) and the
gateway's ``/metrics``, and reads the home's store (served model versions, the newest plans and
retraining jobs, forecast health per family as the retrain trigger measures it). Both halves work
without the other: a stopped stack is reported as down, a missing store as missing. Where the
processes listen comes from ``<home>/stack.json`` (written by ``tailorline up`` while it runs),
else the defaults of ``up``. :func:`render` prints rich tables.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.settings import CoreSettings

STACK_FILE = "stack.json"
DEFAULT_TARGETS = {
    "gateway": "127.0.0.1:50051",
    "gateway metrics": "http://127.0.0.1:9464/metrics",
    "predictor": "127.0.0.1:8081",
    "optimizer": "127.0.0.1:9000",
}
LAST_ROWS = 5


@dataclass(frozen=True)
class Probe:
    component: str
    address: str
    up: bool
    detail: str


def stack_file(core: CoreSettings) -> Path:
    return core.home / STACK_FILE


def write_stack_file(core: CoreSettings, addresses: dict[str, str]) -> Path:
    """Where ``up``'s processes listen (``status`` reads it); removed when ``up`` stops."""
    path = stack_file(core)
    path.write_text(json.dumps(addresses, indent=2), encoding="utf-8")
    return path


def targets(core: CoreSettings) -> dict[str, str]:
    """Addresses to probe: ``stack.json`` of a running ``up`` over the defaults."""
    out = dict(DEFAULT_TARGETS)
    path = stack_file(core)
    if path.is_file():
        try:
            written = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            written = {}
        # the names LocalStack.addresses() writes
        for key, name in (
            ("gateway", "gateway"),
            ("predictor", "predictor (V2 gRPC)"),
            ("optimizer", "optimizer (Serve gRPC)"),
        ):
            if name in written:
                out[key] = _hostport(str(written[name]))
        if "gateway metrics" in written:
            out["gateway metrics"] = str(written["gateway metrics"])
    return out


def _hostport(address: str) -> str:
    return address.split("://", 1)[-1].rstrip("/")


# --------------------------------------------------------------------------- processes


def probe_gateway(target: str, timeout_s: float = 1.0) -> Probe:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            r = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            return Probe("gateway", target, False, f"not reachable ({exc.code().name})")
    serving = r.status == health_pb2.HealthCheckResponse.SERVING
    state = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
    return Probe("gateway", target, serving, state)


def probe_predictor(target: str, timeout_s: float = 1.0) -> Probe:
    from services.gateway.downstream import PredictorClient

    client = PredictorClient(target, retries=0)
    try:
        ok = client.ready(timeout_s)
    finally:
        client.close()
    return Probe("predictor", target, ok, "ready" if ok else "not reachable or not ready")


def probe_optimizer(target: str, timeout_s: float = 1.0) -> Probe:
    from optimizer.serving.client import OptimizerClient

    with OptimizerClient(target, retries=0) as client:
        ok = client.ready(timeout_s)
    return Probe("optimizer", target, ok, "ready" if ok else "not reachable")


def probe_metrics(url: str, timeout_s: float = 1.0) -> Probe:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read().decode("utf-8", "replace")
    except OSError as exc:
        return Probe(
            "gateway metrics", url, False, f"not reachable ({getattr(exc, 'reason', exc)})"
        )
    names = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line[:1].isalpha()}
    return Probe("gateway metrics", url, True, f"{len(names)} series names")


def probe_all(core: CoreSettings, timeout_s: float = 1.0) -> list[Probe]:
    where = targets(core)
    return [
        probe_gateway(where["gateway"], timeout_s),
        probe_predictor(where["predictor"], timeout_s),
        probe_optimizer(where["optimizer"], timeout_s),
        probe_metrics(where["gateway metrics"], timeout_s),
    ]


# --------------------------------------------------------------------------- the store


def _when(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def store_exists(core: CoreSettings) -> bool:
    """False for a SQLite store whose file is not there (connecting would create it)."""
    from sqlalchemy.engine import make_url

    url = make_url(core.resolved_db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return True
    return Path(url.database).is_file()


def read_store(core: CoreSettings) -> dict[str, Any]:
    """Served models, the newest plans and retraining jobs, forecast health per family."""
    from sqlalchemy import desc, select

    from services.monitoring import TriggerPolicy, loop_snapshot
    from services.store import schema
    from services.store.db import make_engine

    engine = make_engine(core.resolved_db_url)
    try:
        with engine.connect() as conn:
            mv = schema.model_versions
            models = [
                {
                    "model": r.name,
                    "version": int(r.version),
                    "status": r.status,
                    "created": _when(r.created_at),
                    "data_end": str(r.data_end or "-"),
                }
                for r in conn.execute(
                    select(mv).where(mv.c.status == "served").order_by(mv.c.name)
                ).all()
            ]
            p = schema.plans
            plans = [
                {
                    "plan_id": r.plan_id,
                    "created": _when(r.created_at),
                    "status": r.status,
                    "first_week": str(r.horizon_start or "-"),
                    "weeks": r.periods,
                    "objective": r.objective,
                }
                for r in conn.execute(
                    select(p).order_by(desc(p.c.created_at)).limit(LAST_ROWS)
                ).all()
            ]
            j = schema.retrain_jobs
            jobs = []
            for r in conn.execute(select(j).order_by(desc(j.c.created_at)).limit(LAST_ROWS)):
                result = r.result if isinstance(r.result, dict) else {}
                outcome = r.status
                if r.status == "succeeded":
                    outcome = "promoted" if result.get("promoted") else "rejected"
                jobs.append(
                    {
                        "job_id": r.job_id,
                        "created": _when(r.created_at),
                        "finished": _when(r.finished_at),
                        "outcome": outcome,
                        "launcher": r.launcher or "-",
                        "why": str((r.config or {}).get("trigger") or r.error or "")[:60],
                    }
                )
        snap = loop_snapshot(engine, TriggerPolicy())
        families = [
            {
                "family": f.family_id,
                "wape": f.wape,
                "bias": f.bias,
                "coverage": f.coverage,
                "drift": f.drift,
                "units": f.actual,
            }
            for f in sorted(snap.families, key=lambda f: f.family_id)
        ]
        return {
            "db": engine.url.render_as_string(hide_password=True),
            "models": models,
            "plans": plans,
            "retrains": jobs,
            "retrain_totals": snap.retrains,
            "forecast_as_of": str(snap.as_of_week or "-"),
            "window_weeks": snap.window_weeks,
            "families": families,
        }
    finally:
        engine.dispose()


def gather(core: CoreSettings, timeout_s: float = 1.0) -> dict[str, Any]:
    """The whole status as plain data (what ``--json`` prints)."""
    probes = probe_all(core, timeout_s)
    out: dict[str, Any] = {
        "home": str(core.home),
        "stack": [p.__dict__ for p in probes],
        "stack_up": all(p.up for p in probes),
    }
    if not store_exists(core):
        out["store"] = None
        out["store_error"] = (
            f"no store at {core.resolved_db_url} (run `tailorline up` to set one up)"
        )
        return out
    try:
        out["store"] = read_store(core)
    except Exception as exc:  # an unmigrated or unreachable store: say so, keep the rest
        out["store"] = None
        out["store_error"] = f"cannot read the store: {str(exc).splitlines()[0][:200]}"
    return out


# --------------------------------------------------------------------------- rendering


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(status: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    stack = Table(title=f"stack ({status['home']})", title_justify="left")
    for col in ("component", "address", "state", "detail"):
        stack.add_column(col)
    for p in status["stack"]:
        state = "[green]up[/]" if p["up"] else "[red]down[/]"
        stack.add_row(p["component"], p["address"], state, p["detail"])
    console.print(stack)
    if not status["stack_up"]:
        console.print("the stack is not (fully) running: `tailorline up` starts it")
    store = status.get("store")
    if store is None:
        console.print(status.get("store_error", "no store"))
        return
    models = Table(title="served models", title_justify="left")
    for col in ("model", "version", "since", "trained on data until"):
        models.add_column(col)
    for m in store["models"]:
        models.add_row(m["model"], str(m["version"]), m["created"], m["data_end"])
    console.print(models if store["models"] else "served models: none")
    plans = Table(title=f"last {LAST_ROWS} plans", title_justify="left")
    for col in ("plan", "created", "status", "first week", "weeks", "objective"):
        plans.add_column(col, justify="right" if col in ("weeks", "objective") else "left")
    for p in store["plans"]:
        plans.add_row(
            p["plan_id"],
            p["created"],
            p["status"],
            p["first_week"],
            str(p["weeks"] or "-"),
            _num(p["objective"], ",.0f"),
        )
    console.print(plans if store["plans"] else "plans: none yet")
    totals = store["retrain_totals"]
    jobs = Table(
        title=(
            f"last {LAST_ROWS} retrains (all: {totals.get('started', 0)} started, "
            f"{totals.get('promoted', 0)} promoted, {totals.get('rejected', 0)} rejected, "
            f"{totals.get('failed', 0)} failed)"
        ),
        title_justify="left",
    )
    for col in ("job", "created", "finished", "outcome", "launcher", "trigger / error"):
        jobs.add_column(col)
    for j in store["retrains"]:
        jobs.add_row(
            j["job_id"], j["created"], j["finished"], j["outcome"], j["launcher"], j["why"]
        )
    console.print(jobs if store["retrains"] else "retrains: none yet")
    fam = Table(
        title=(
            f"forecast health, {store['window_weeks']} complete weeks before "
            f"{store['forecast_as_of']} (judged families)"
        ),
        title_justify="left",
    )
    for col in ("family", "units", "WAPE", "bias", "P10-P90 coverage", "drift"):
        fam.add_column(col, justify="left" if col == "family" else "right")
    for f in store["families"]:
        fam.add_row(
            f["family"],
            _num(f["units"], ",.0f"),
            _num(f["wape"], ".2f"),
            _num(f["bias"], "+.2f"),
            _num(f["coverage"], ".0%"),
            _num(f["drift"], ".2f"),
        )
    console.print(fam if store["families"] else "forecast health: no family judged yet")
