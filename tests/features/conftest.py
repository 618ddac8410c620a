"""Hand-made frames with the columns of docs/data-format.md: small and fully known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

START = pd.Timestamp("2025-01-06")  # a Monday


def make_frames(seed: int = 0, n_weeks: int = 70) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    families = pd.DataFrame(
        {"family_id": ["SHR", "TRS"], "name": ["Shirts", "Trousers"],
         "category": ["apparel"] * 2, "base_price": [59.0, 79.0]}
    )  # fmt: skip
    variants = pd.DataFrame(
        {
            "variant_id": ["V1", "V2", "V3", "V4", "V5", "V6"],
            "family_id": ["SHR", "SHR", "SHR", "TRS", "TRS", "TRS"],
            "list_price": [59.0, 65.0, 70.0, 79.0, 85.0, 90.0],
            "launch_date": [START, START, START + pd.Timedelta(weeks=40), START,
                            START + pd.Timedelta(weeks=10), START + pd.Timedelta(weeks=66)],
            "attr_fabric": ["cotton", "linen", "linen", "wool", "denim", "wool"],
            "attr_size": ["m", "l", "m", "s", "m", "l"],
        }
    )  # fmt: skip
    orders = []
    k = 0
    for _, v in variants.iterrows():
        for w in range(n_weeks):
            day = START + pd.Timedelta(weeks=w, days=int(rng.integers(0, 7)))
            if day < v["launch_date"]:
                continue
            for _ in range(int(rng.poisson(2.0))):
                k += 1
                orders.append(
                    {"order_id": f"O{k}", "customer_id": "C", "variant_id": v["variant_id"],
                     "quantity": int(rng.integers(1, 4)), "unit_price": v["list_price"],
                     "order_date": day, "due_date": day + pd.Timedelta(days=14),
                     "kind": "stock", "promo": 0}
                )  # fmt: skip
    reviews = pd.DataFrame(
        {"review_id": [f"R{i}" for i in range(40)],
         "variant_id": rng.choice(["V1", "V2", "V4"], 40),
         "date": [START + pd.Timedelta(days=int(d)) for d in rng.integers(0, 7 * n_weeks, 40)],
         "rating": rng.integers(1, 6, 40)}
    )  # fmt: skip
    market = pd.DataFrame(
        [{"week": START + pd.Timedelta(weeks=w), "family_id": f,
          "price_index": 1.0 + 0.01 * w, "trend_index": 1.0 + 0.02 * w}
         for w in range(n_weeks) for f in ("SHR", "TRS")]
    )  # fmt: skip
    lines = pd.DataFrame(
        {"line_id": ["L1", "L2"], "name": ["A", "B"], "capacity_hours": [400.0, 300.0],
         "setup_hours": [0.5, 0.7], "setup_cost": [60.0, 100.0],
         "overtime_hours_max": [60.0, 45.0], "overtime_cost_per_hour": [48.0, 60.0]}
    )  # fmt: skip
    return {
        "families": families,
        "variants": variants,
        "orders": pd.DataFrame(orders),
        "reviews": reviews,
        "market": market,
        "lines": lines,
    }


@pytest.fixture()
def frames() -> dict[str, pd.DataFrame]:
    return make_frames()
