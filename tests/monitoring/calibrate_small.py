"""Calibration of the default TriggerPolicy (not a test; docs/monitoring.md shows its results).

    tailorline datagen --preset small --seed 3 --out /tmp/small3
    .venv/bin/python tests/monitoring/calibrate_small.py /tmp/small3 oracle /tmp/oracle3.db

Ingests the data set into a new SQLite store, registers a served demand model trained on the
history, then runs 26 future weeks; each week: forecasts served for it (the world's true
negative-binomial P10/P50/P90 per variant, and the mean of the distribution its quantiles at the
served levels describe, as the gateway records it), its orders realised by the world, its market
row, and ``evaluate(as_of=next week)`` with the default policy (``field=value`` arguments override
it).
``oracle``: the forecasts include the fashion shift (a perfect model); ``stale``: they leave it out
(a model trained before it). Prints one line per week.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import nbinom
from sqlalchemy import insert

from services.common.quantiles import QUANTILES
from services.common.quantiles import mean as quantile_mean
from services.common.settings import CoreSettings
from services.datagen.world import World
from services.ingest.api import ingest_dir
from services.monitoring import TriggerPolicy, evaluate
from services.store import make_engine, schema


def _monday(world: World, t: int) -> date:
    return pd.Timestamp(world.week_date(np.array([t]))[0]).date()


def main(folder: str, scenario: str, db: str, *overrides: str) -> None:
    Path(db).unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    ingest_dir(folder, engine, CoreSettings())
    world = World.from_dataset(folder)
    cat, n = world.catalog, world.n_weeks
    with engine.begin() as conn:
        conn.execute(
            insert(schema.model_versions).values(
                name="demand",
                version=1,
                path="-",
                data_start=_monday(world, 0),
                data_end=_monday(world, n - 1),
                status="served",
                created_at=datetime.now(UTC),
            )
        )
    pairs = (a.split("=", 1) for a in overrides)
    values: dict[str, Any] = {k: int(v) if v.isdigit() else float(v) for k, v in pairs}
    policy = TriggerPolicy(**values)
    rng = np.random.default_rng([world.seed, 99])
    k = world.dispersion[cat.family]
    for h in range(26):
        t = n + h
        monday = _monday(world, t)
        mu = world.expected_demand(np.array([t]))[:, 0]
        if scenario == "stale":
            ramp = world.ramp(np.array([t]))[0]
            mu = mu / (1.0 + world.shift_mask * (world.preset.shift_multiplier - 1.0) * ramp)
        p_nb = k / (k + np.maximum(mu, 1e-9))
        q = {p: nbinom.ppf(p, k, p_nb) for p in (0.1, 0.5, 0.9)}
        # the mean a served model with these true quantiles records: its distribution's
        # (services.common.quantiles.mean over the served levels), not the world's mu
        served_mean = quantile_mean(np.stack([nbinom.ppf(p, k, p_nb) for p in QUANTILES], 1))
        served = datetime.combine(monday - timedelta(days=3), datetime.min.time(), UTC)
        forecasts = [
            {"variant_id": cat.variant_id[i], "week": monday, "model_name": "demand",
             "model_version": 1, "p10": float(q[0.1][i]), "p50": float(q[0.5][i]),
             "p90": float(q[0.9][i]), "mean": float(served_mean[i]), "served_at": served}
            for i in np.flatnonzero(mu > 0)
        ]  # fmt: skip
        batch = world.realise_orders(np.array([t]), rng)
        orders = [
            {"order_id": f"F{t}-{j}", "customer_id": "0" * 32, "variant_id": cat.variant_id[v],
             "quantity": int(qty), "unit_price": 10.0, "order_date": pd.Timestamp(d).date(),
             "due_date": pd.Timestamp(d).date(), "kind": "stock", "promo": 0, "flagged": False}
            for j, (v, qty, d) in enumerate(
                zip(batch.variant, batch.quantity, batch.order_date, strict=True)
            )
        ]  # fmt: skip
        trend, price = world.market(np.array([t]))
        market = [
            {"week": monday, "family_id": f.family_id, "price_index": float(price[i, 0]),
             "trend_index": float(trend[i, 0])}
            for i, f in enumerate(cat.families)
        ]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(insert(schema.forecasts_served), forecasts)
            conn.execute(insert(schema.orders), orders)
            conn.execute(insert(schema.market), market)
        d = evaluate(engine, policy, as_of=monday + timedelta(days=7))
        fams = " ".join(
            f"{f.family_id}:wape {f.wape:.2f} bias {f.bias:+.2f} drift {f.drift or 0:.2f}"
            for f in sorted(d.families, key=lambda f: f.family_id)
            if f.wape is not None and f.bias is not None
        )
        seg = f" seg {d.segment} {d.segment_bias:+.2f}" if d.segment_bias is not None else ""
        print(f"week {h:2d} {monday} fire={int(d.fire)} {d.reason:15s} {fams}{seg}")
    engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:])
