"""Ingest fixtures: a hand-made data set, a bigger generated one, SQLite/PostgreSQL stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

MINI = {
    "families.csv": """family_id,name,category,base_price
shirt,Shirt,apparel,40
jeans,Jeans,apparel,80
""",
    "family_attributes.csv": """family_id,attribute,value
SHIRT,fabric,cotton
SHIRT,fabric,linen
SHIRT,size,m
SHIRT,size,l
JEANS,fabric,denim
JEANS,size,m
JEANS,size,l
""",
    "variants.csv": """variant_id,family_id,list_price,launch_date,attr_fabric,attr_size
V1,SHIRT,40,2024-01-01,cotton,m
V2,SHIRT,45,2024-01-01,linen,l
V3,JEANS,80,2024-02-05,Denim,L
""",
    "lines.csv": "line_id,name,capacity_hours,setup_hours,setup_cost,overtime_hours_max,"
    """overtime_cost_per_hour
L1,Cutting,80,2,50,10,30
L2,Sewing,120,1.5,40,20,28
""",
    "line_eligibility.csv": """line_id,family_id
L1,SHIRT
L1,JEANS
L2,SHIRT
""",
    "materials.csv": """material_id,name,unit,unit_cost,stock,lead_time_weeks
COTTON,Cotton,metre,4.5,1000,2
DENIM,Denim,Meter,7,500,3
BUTTON,Button,piece,0.1,10000,1
""",
    "bom.csv": """family_id,material_id,quantity_per_unit,condition
SHIRT,COTTON,1.6,fabric=cotton
SHIRT,BUTTON,8,
JEANS,DENIM,1.2,size=m
JEANS,DENIM,1.4,Size=L
""",
    "material_arrivals.csv": """arrival_id,material_id,date,quantity
A1,COTTON,2024-03-04,200
A2,DENIM,2024-03-11,100
""",
    "orders.csv": "order_id,customer_id,customer_name,email,variant_id,quantity,unit_price,"
    """order_date,due_date,kind,promo
O1,c-001,Ann Smith,ann@example.com,V1,2,40,2024-03-01,2024-03-15,stock,0
O2,c-002,Bob Jones,bob@example.com,V2,1,45,2024-03-02,2024-03-20,custom,1
O3,c-001,Ann Smith,ann@example.com,V3,3,80,2024-03-03,2024-03-17,STOCK,
O4,c-003,Cy,cy@example.com,V1,1,42,2024-03-04,2024-03-18,stock,0
""",
    "production.csv": """record_id,line_id,variant_id,date,quantity,hours,cost,scrap
P1,L1,V1,2024-03-05,10,5,100,1
P2,L2,V2,2024-03-06,5,3,60,0
""",
    "reviews.csv": """review_id,variant_id,customer_id,date,rating
R1,V1,c-001,2024-03-20,5
R2,V3,c-002,2024-03-21,3
""",
    "market.csv": """week,family_id,price_index,trend_index
2024-03-04,SHIRT,1.0,1.02
2024-03-06,JEANS,0.98,1.0
""",
}

#: Rows per table of MINI after loading (the market date 2024-03-06 becomes its Monday).
MINI_COUNTS = {
    "families": 2,
    "family_attributes": 7,
    "variants": 3,
    "variant_attributes": 6,
    "lines": 2,
    "line_eligibility": 3,
    "materials": 3,
    "bom": 4,
    "material_arrivals": 2,
    "orders": 4,
    "production": 2,
    "reviews": 2,
    "market": 2,
    "family_setups": 0,  # optional tables MINI leaves out
    "changeovers": 0,
    "unobserved_weeks": 0,
    "variant_weeks": 0,
}


def write_mini(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in MINI.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def mini_dir(tmp_path: Path) -> Path:
    return write_mini(tmp_path / "mini")


def write_big(folder: Path, n_orders: int, seed: int = 7) -> Path:
    """MINI's master data plus ``n_orders`` generated orders (enough to take a few seconds)."""
    write_mini(folder)
    rng = np.random.default_rng(seed)
    dates = pd.Timestamp("2023-01-02") + pd.to_timedelta(rng.integers(0, 700, n_orders), "D")
    frame = pd.DataFrame(
        {
            "order_id": [f"B{i:08d}" for i in range(n_orders)],
            "customer_id": [f"c-{i:05d}" for i in rng.integers(0, 20_000, n_orders)],
            "variant_id": rng.choice(["V1", "V2", "V3"], n_orders),
            "quantity": rng.integers(1, 4, n_orders),
            "unit_price": 40.0,
            "order_date": dates.strftime("%Y-%m-%d"),
            "due_date": (dates + pd.Timedelta(days=14)).strftime("%Y-%m-%d"),
            "kind": rng.choice(["stock", "custom"], n_orders),
            "promo": rng.integers(0, 2, n_orders),
        }
    )
    frame.to_csv(folder / "orders.csv", index=False)
    return folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """datagen's ``tiny`` preset (seed 1) and its row counts per table."""
    from services.datagen import generate

    out = tmp_path_factory.mktemp("datagen") / "tiny"
    summary = generate("tiny", 1, out)
    return out, dict(summary.counts)
