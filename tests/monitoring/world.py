"""A tiny hand-made store: three families, weekly orders and the forecasts that were served.

Weeks are Mondays ``week(k)`` = 2026-01-05 + k weeks. History weeks -8..0 have orders and market
signals only (the served model was trained on them: ``data_start`` week(-8), ``data_end``
week(0)); weeks 1..n have one served forecast per variant (P10/P50/P90 = 0.7/1/1.3 x base,
served the Friday before) and one order per variant on the Wednesday.

Families and variants (attribute ``fabric``):

* A: A1 cotton, A2 linen, A3 cotton; 30 units per variant-week unless a test changes it.
* B: B1, B2, B3 wool; 27 and 33 units in alternating weeks (WAPE 0.1, no bias).
* C: C1 wool; forecast 1, actual 5 every week: 20 units in 4 weeks, a thin family.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, insert

from services.store import schema

W0 = date(2026, 1, 5)
FABRIC = {"A1": "cotton", "A2": "linen", "A3": "cotton", "B1": "wool", "B2": "wool",
          "B3": "wool", "C1": "wool"}  # fmt: skip


def week(k: int) -> date:
    return W0 + timedelta(weeks=k)


def base_units(variant: str, k: int) -> float:
    if variant.startswith("A"):
        return 30.0
    if variant.startswith("B"):
        return 27.0 if k % 2 else 33.0
    return 5.0


def forecast_units(variant: str) -> float:
    return 1.0 if variant == "C1" else 30.0


Actual = Callable[[str, int], float]
Trend = Callable[[str, int], float]


def fill(
    engine: Engine,
    *,
    n_weeks: int = 14,
    actual: Actual = base_units,
    trend: Trend = lambda family, k: 1.0,
    forecasts: bool = True,
    forecast_row: Callable[[str], dict[str, float]] | None = None,
) -> None:
    """Write the store described in the module doc (``actual``/``trend`` override the units;
    ``forecast_row``: a variant's forecast, ``p10``/``p50``/``p90`` and ``mean``, in place of the
    default's quantiles and no mean, as stored before migration 0006)."""
    with engine.begin() as conn:
        for f in ("A", "B", "C"):
            conn.execute(insert(schema.families).values(family_id=f, name=f, base_price=10.0))
        for v, fabric in FABRIC.items():
            conn.execute(
                insert(schema.variants).values(
                    variant_id=v, family_id=v[0], list_price=10.0, flagged=False
                )
            )
            conn.execute(
                insert(schema.variant_attributes).values(
                    variant_id=v, attribute="fabric", value=fabric
                )
            )
        orders, served, market = [], [], []
        for k in range(-8, n_weeks + 1):
            for f in ("A", "B", "C"):
                market.append(
                    {
                        "week": week(k),
                        "family_id": f,
                        "price_index": 1.0,
                        "trend_index": trend(f, k),
                    }
                )
            for v in FABRIC:
                units = round(actual(v, k) if k >= 1 else base_units(v, k))
                if units > 0:
                    orders.append(
                        {
                            "order_id": f"O{k + 8:03d}{v}",
                            "customer_id": "c" * 32,
                            "variant_id": v,
                            "quantity": units,
                            "unit_price": 10.0,
                            "order_date": week(k) + timedelta(days=2),
                            "due_date": week(k) + timedelta(days=9),
                            "kind": "stock",
                            "promo": 0,
                            "flagged": False,
                        }
                    )
                if forecasts and k >= 1:
                    p50 = forecast_units(v)
                    served.append(
                        {
                            "variant_id": v,
                            "week": week(k),
                            "model_name": "demand",
                            "model_version": 1,
                            "p10": 0.7 * p50,
                            "p50": p50,
                            "p90": 1.3 * p50,
                            "mean": None,
                            "served_at": datetime.combine(
                                week(k) - timedelta(days=3), datetime.min.time(), UTC
                            ),
                        }
                    )
                    if forecast_row is not None:
                        served[-1].update(forecast_row(v))
        conn.execute(insert(schema.orders), orders)
        conn.execute(insert(schema.market), market)
        if served:
            conn.execute(insert(schema.forecasts_served), served)
        conn.execute(
            insert(schema.model_versions).values(
                name="demand",
                version=1,
                path="/m/demand/1",
                metrics={"wape": 0.3},
                data_start=week(-8),
                data_end=week(0),
                status="served",
                created_at=datetime(2026, 1, 2, tzinfo=UTC),
            )
        )
