"""The documented schema of each input table (docs/data-format.md) as data.

A :class:`TableSpec` lists the columns with their kind (how a raw value is parsed and normalised),
whether they are required, a default for optional ones, and simple per-column rules. Cross-column
rules, foreign keys and duplicates are applied by :mod:`services.ingest.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "text", "code", "float", "int", "date", "week", "flag01", "unit", "condition"]

#: Columns that identify a person directly: dropped on read, never stored.
PRIVATE_COLUMNS = frozenset({"customer_name", "customer_email", "email", "phone", "address"})
#: On event tables ``name`` is a person's name too (on master data it names the thing).
PRIVATE_ON_EVENTS = frozenset({"name"})

UNIT_SYNONYMS = {
    "m": "m",
    "metre": "m",
    "metres": "m",
    "meter": "m",
    "meters": "m",
    "mtr": "m",
    "kg": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "kgs": "kg",
    "pcs": "pcs",
    "pc": "pcs",
    "piece": "pcs",
    "pieces": "pcs",
}


@dataclass(frozen=True)
class Col:
    name: str
    kind: Kind
    required: bool = True
    default: object = None
    min: float | None = None  # inclusive lower bound
    gt: float | None = None  # exclusive lower bound
    max: float | None = None  # inclusive upper bound
    allowed: frozenset[str] | None = None
    ref: str | None = None  # table whose key this column must name


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Col, ...]
    key: tuple[str, ...]
    event: bool  # events are insert-only by event id; master data is upserted
    extra_prefix: str | None = None  # variants: attr_* columns

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _id(name: str, ref: str | None = None, required: bool = True) -> Col:
    return Col(name, "id", required=required, ref=ref)


SPECS: dict[str, TableSpec] = {
    s.name: s
    for s in (
        TableSpec(
            "families",
            (
                _id("family_id"),
                Col("name", "text"),
                Col("category", "code", required=False),
                Col("base_price", "float", gt=0),
            ),
            key=("family_id",),
            event=False,
        ),
        TableSpec(
            "family_attributes",
            (_id("family_id", "families"), Col("attribute", "code"), Col("value", "code")),
            key=("family_id", "attribute", "value"),
            event=False,
        ),
        TableSpec(
            "variants",
            (
                _id("variant_id"),
                _id("family_id", "families"),
                Col("list_price", "float", gt=0),
                Col("launch_date", "date", required=False),
            ),
            key=("variant_id",),
            event=False,
            extra_prefix="attr_",
        ),
        TableSpec(
            "lines",
            (
                _id("line_id"),
                Col("name", "text", required=False),
                Col("capacity_hours", "float", gt=0),
                Col("setup_hours", "float", required=False, default=0.0, min=0),
                Col("setup_cost", "float", required=False, default=0.0, min=0),
                Col("overtime_hours_max", "float", required=False, default=0.0, min=0),
                Col("overtime_cost_per_hour", "float", required=False, default=0.0, min=0),
            ),
            key=("line_id",),
            event=False,
        ),
        TableSpec(
            "line_eligibility",
            (_id("line_id", "lines"), _id("family_id", "families")),
            key=("line_id", "family_id"),
            event=False,
        ),
        TableSpec(
            "materials",
            (
                _id("material_id"),
                Col("name", "text", required=False),
                Col("unit", "unit", allowed=frozenset({"m", "kg", "pcs"})),
                Col("unit_cost", "float", min=0),
                Col("stock", "float", required=False, default=0.0, min=0),
                Col("lead_time_weeks", "int", required=False, default=0, min=0),
            ),
            key=("material_id",),
            event=False,
        ),
        TableSpec(
            "bom",
            (
                _id("family_id", "families"),
                _id("material_id", "materials"),
                Col("quantity_per_unit", "float", gt=0),
                Col("condition", "condition", required=False, default=""),
            ),
            key=("family_id", "material_id", "condition"),
            event=False,
        ),
        TableSpec(
            "material_arrivals",
            (
                _id("arrival_id"),
                _id("material_id", "materials"),
                Col("date", "date"),
                Col("quantity", "float", gt=0),
            ),
            key=("arrival_id",),
            event=True,
        ),
        TableSpec(
            "orders",
            (
                _id("order_id"),
                _id("customer_id"),
                _id("variant_id", "variants"),
                Col("quantity", "int", gt=0),
                Col("unit_price", "float", min=0),
                Col("order_date", "date"),
                Col("due_date", "date"),
                Col("kind", "code", allowed=frozenset({"stock", "custom"})),
                Col("promo", "flag01", required=False, default=0),
            ),
            key=("order_id",),
            event=True,
        ),
        TableSpec(
            "production",
            (
                _id("record_id"),
                _id("line_id", "lines"),
                _id("variant_id", "variants"),
                Col("date", "date"),
                Col("quantity", "int", gt=0),
                Col("hours", "float", gt=0),
                Col("cost", "float", min=0),
                Col("scrap", "int", required=False, default=0, min=0),
            ),
            key=("record_id",),
            event=True,
        ),
        TableSpec(
            "reviews",
            (
                _id("review_id"),
                _id("variant_id", "variants"),
                _id("customer_id", required=False),
                Col("date", "date"),
                Col("rating", "int", min=1, max=5),
            ),
            key=("review_id",),
            event=True,
        ),
        TableSpec(
            "market",
            (
                Col("week", "week"),
                _id("family_id", "families"),
                Col("price_index", "float", gt=0),
                Col("trend_index", "float", gt=0),
            ),
            key=("week", "family_id"),
            event=False,
        ),
    )
}

#: The order tables are validated and written in (every reference points backwards).
TABLE_ORDER: tuple[str, ...] = (
    "families",
    "family_attributes",
    "variants",
    "lines",
    "line_eligibility",
    "materials",
    "bom",
    "material_arrivals",
    "orders",
    "production",
    "reviews",
    "market",
)
assert set(TABLE_ORDER) == set(SPECS)
