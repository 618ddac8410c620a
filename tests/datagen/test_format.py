"""What datagen writes: the tables and columns of docs/data-format.md, valid rows, privacy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.datagen import TABLE_COLUMNS, TRUTH_COLUMNS, Dataset, generate

DOCS = Path(__file__).resolve().parents[2] / "docs"
ATTRS = ("fabric", "colour", "fit", "size", "option")


def documented_columns() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(table -> columns, truth file -> columns) parsed from docs/data-format.md."""
    text = (DOCS / "data-format.md").read_text()
    tables: dict[str, list[str]] = {}
    truth: dict[str, list[str]] = {}
    current = None
    in_truth = False
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("## Ground truth"):
            in_truth = True
        if section not in ("Master data", "Events") and not in_truth:
            continue  # other tables (limits, cleaning) describe rules, not columns
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("table", "file"):
            continue
        if in_truth:
            if not cells[0].endswith(".json"):
                truth[cells[0]] = [c.split("(")[0].strip() for c in cells[1].split(",")]
            continue
        current = cells[0] or current
        assert current is not None
        for col in cells[1].split(","):
            col = col.strip()
            if col == "attr_&lt;name&gt;":
                tables[current] += [f"attr_{a}" for a in ATTRS]
            else:
                tables.setdefault(current, []).append(col)
    return tables, truth


def test_writes_exactly_the_documented_tables_and_columns(tiny_csv: Path) -> None:
    documented, truth = documented_columns()
    assert set(documented) == set(TABLE_COLUMNS)
    for name, cols in documented.items():
        header = (tiny_csv / f"{name}.csv").read_text().splitlines()[0].split(",")
        extra = ["customer_name", "customer_email"] if name == "orders" else []
        assert sorted(header) == sorted(cols + extra), name
        assert header == list(TABLE_COLUMNS[name])
    assert set(truth) == set(TRUTH_COLUMNS)
    for name, cols in truth.items():
        header = (tiny_csv / "truth" / f"{name}.csv").read_text().splitlines()[0].split(",")
        assert header == cols
    params = json.loads((tiny_csv / "truth" / "params.json").read_text())
    assert (params["preset"], params["seed"]) == ("tiny", 3)
    assert params["start_week"] < params["end_week"]


def test_parquet_holds_the_same_rows_as_csv(tiny_csv: Path, tmp_path: Path) -> None:
    generate("tiny", 3, tmp_path, "parquet")
    for name in ("orders", "variants", "production", "market"):
        a = pd.read_csv(tiny_csv / f"{name}.csv", dtype=str, keep_default_na=False)
        b = pd.read_parquet(tmp_path / f"{name}.parquet").astype(str)
        assert list(a.columns) == list(b.columns)
        assert len(a) == len(b) > 0
        assert a.iloc[:, 0].tolist() == b.iloc[:, 0].tolist()
    dates = pd.read_parquet(tmp_path / "orders.parquet")["order_date"]
    assert str(dates.iloc[0]) == pd.read_csv(tiny_csv / "orders.csv")["order_date"].iloc[0]


def test_refuses_to_mix_with_an_existing_data_set(tmp_path: Path) -> None:
    generate("tiny", 1, tmp_path, "csv")
    with pytest.raises(InvalidArgument, match="--overwrite"):
        generate("tiny", 1, tmp_path, "parquet")
    generate("tiny", 1, tmp_path, "parquet", overwrite=True)
    assert not list(tmp_path.glob("*.csv"))  # no table is left in two formats
    assert (tmp_path / "orders.parquet").is_file()
    with pytest.raises(InvalidArgument, match="format"):
        generate("tiny", 1, tmp_path / "x", "xlsx")
    with pytest.raises(InvalidArgument, match="preset"):
        generate("huge", 1, tmp_path / "y")


def test_rows_obey_the_documented_rules(small: Dataset) -> None:
    t = small.tables
    variants = t["variants"].set_index("variant_id")
    orders = t["orders"]
    assert orders["order_id"].is_unique and t["production"]["record_id"].is_unique
    assert t["reviews"]["review_id"].is_unique and t["material_arrivals"]["arrival_id"].is_unique
    assert set(orders["variant_id"]) <= set(variants.index)
    assert (orders["quantity"] > 0).all() and (orders["due_date"] >= orders["order_date"]).all()
    assert set(orders["kind"]) == {"stock", "custom"} and set(orders["promo"]) == {0, 1}
    assert (orders["order_date"].to_numpy() >= variants.loc[orders["variant_id"], "launch_date"]
            .to_numpy()).all()  # fmt: skip
    ratio = orders["unit_price"].to_numpy() / variants.loc[orders["variant_id"], "list_price"]
    assert ratio.between(0.2, 5).all()
    custom = orders[orders["kind"] == "custom"]
    lead = (custom["due_date"] - custom["order_date"]).dt.days
    assert lead.between(14, 42).all()
    assert (custom["quantity"] >= 2).all() and custom["quantity"].mean() > 4
    stock = orders[orders["kind"] == "stock"]
    assert stock["quantity"].isin([1, 2]).mean() > 0.85
    assert len(custom) < 0.1 * len(orders)
    prod = t["production"]
    assert ((prod["scrap"] >= 0) & (prod["scrap"] <= prod["quantity"])).all()
    assert (prod["hours"] > 0).all() and (prod["cost"] >= 0).all()
    elig = set(map(tuple, t["line_eligibility"][["line_id", "family_id"]].to_numpy()))
    fam = variants.loc[prod["variant_id"], "family_id"].to_numpy()
    assert all((ln, f) in elig for ln, f in zip(prod["line_id"], fam, strict=True))
    assert t["reviews"]["rating"].between(1, 5).all()
    assert (pd.DatetimeIndex(t["market"]["week"]).dayofweek == 0).all()
    assert (t["market"][["price_index", "trend_index"]] > 0).all().all()
    mats = t["materials"]
    assert set(mats["unit"]) == {"m", "kg", "pcs"} and (mats["stock"] >= 0).all()
    assert set(t["bom"]["material_id"]) <= set(mats["material_id"])
    assert (t["material_arrivals"]["quantity"] > 0).all()
    for name in ("families", "family_attributes", "variants", "lines", "materials", "market"):
        assert not t[name].isna().any().any(), name


def test_bom_conditions_name_allowed_values(small: Dataset) -> None:
    allowed = small.tables["family_attributes"].groupby(["family_id", "attribute"])["value"]
    allowed_sets = {k: set(v) for k, v in allowed}
    bom = small.tables["bom"]
    assert bom["condition"].str.contains("fabric=linen;size=l", regex=False).any()
    for fam, cond in zip(bom["family_id"], bom["condition"], strict=True):
        for term in filter(None, cond.split(";")):
            attr, value = term.split("=")
            assert value in allowed_sets[(fam, attr)], (fam, cond)
    key = ["family_id", "material_id", "condition"]
    assert not bom.duplicated(key).any()


def test_customer_names_appear_only_in_the_orders_file(tiny_csv: Path) -> None:
    orders = pd.read_csv(tiny_csv / "orders.csv")
    names = set(orders["customer_name"]) | set(orders["customer_email"])
    assert len(names) > 20 and all(re.fullmatch(r"[a-z.0-9]+@example\.com", e)
                                   for e in orders["customer_email"])  # fmt: skip
    pattern = re.compile("|".join(re.escape(n) for n in sorted(names)))
    for path in tiny_csv.rglob("*"):
        if path.is_file() and path.name != "orders.csv":
            text = path.read_text()
            assert not pattern.search(text), path.name
            assert "customer_name" not in text and "customer_email" not in text, path.name
    reviews = pd.read_csv(tiny_csv / "reviews.csv")
    assert set(reviews["customer_id"]) <= set(orders["customer_id"])
    assert np.issubdtype(orders["quantity"].dtype, np.integer)
