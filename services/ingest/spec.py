"""The documented schema of each input table (docs/data-format.md) as data, with its bounds.

A :class:`TableSpec` lists the columns with their kind (how a raw value is parsed and normalised),
whether they are required, a default for optional ones, and simple per-column rules: value bounds
(every number has an upper cap, so no magnitude the store or the feature code cannot hold gets in)
and the longest text the store's column holds. :class:`Limits` holds the bounds that apply to every
table and file (the date window, the header's width, the longest line, chunk size). This module is
the ONE place where ingest's input bounds are set. Cross-column rules, foreign keys and duplicates
are applied by :mod:`services.ingest.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from services.store.schema import CODE, ID

Kind = Literal["id", "text", "code", "float", "int", "date", "week", "flag01", "unit", "condition"]

#: Columns that identify a person directly: dropped on read, never stored.
PRIVATE_COLUMNS = frozenset({"customer_name", "customer_email", "email", "phone", "address"})
#: On event tables ``name`` is a person's name too (on master data it names the thing).
PRIVATE_ON_EVENTS = frozenset({"name"})

#: Longest stored names (``families.name``, ``lines.name``, ``materials.name``: String(200)).
NAME = 200
#: Longest stored ``bom.condition`` (String(400)).
CONDITION = 400
#: ``orders.kind`` (String(16)).
KIND = 16

#: Upper caps on magnitudes (inclusive). Generous for any real plant; they keep values that would
#: overflow a 32-bit integer column (PostgreSQL ``INTEGER``) or poison sums and features out.
MAX_UNITS = 1_000_000  # product units in one order or production record (and its scrap)
MAX_PRICE = 1_000_000.0  # EUR per unit or per hour: prices, unit costs, setup and overtime costs
MAX_AMOUNT = 1_000_000_000.0  # EUR of one production record's variable cost
MAX_HOURS = 100_000.0  # hours: a line's weekly capacity, setup, overtime, one record's hours
MAX_MATERIAL = 1_000_000_000.0  # material units: stock, one arrival
MAX_PER_UNIT = 1_000_000.0  # material units per product unit (bom)
MAX_LEAD_WEEKS = 520
MAX_INDEX = 1_000.0  # market price_index / trend_index (1.0 = base)


@dataclass(frozen=True)
class Limits:
    """Bounds that apply to every table and file of an import (docs/data-format.md, *Limits*).

    Defaults suit production; ``ingest_dir``/``ingest_frames`` take another instance (tests use
    small ones). Column-level caps and lengths are on the :class:`Col` of each table below.
    """

    #: Every date (order, due, production, arrival, review, launch, market week) lies in here:
    #: the store's calendar. Outside it a date is a typing error, and one such row would stretch
    #: every weekly array the forecaster builds over centuries.
    date_min: date = date(1990, 1, 1)
    date_max: date = date(2100, 12, 31)
    #: At most this many columns in a file's header (or a frame).
    max_columns: int = 1_000
    #: The longest line of a CSV file, header included (bytes); a longer one stops the import.
    max_line_bytes: int = 1 << 20
    #: Rows validated and written at a time: memory depends on this, not on the file's size.
    chunk_rows: int = 50_000
    #: Master data tables (families, variants, ...) are kept in memory as references for the
    #: tables after them: a file with more rows than this stops the import.
    max_master_rows: int = 1_000_000
    #: Problems kept in the report (and ``--report``); the counts are always complete.
    max_issues: int = 10_000
    #: Characters of a rejected value shown in a problem (the rest is elided, its length shown).
    max_value_chars: int = 200

    @property
    def window(self) -> str:
        return f"{self.date_min.isoformat()}..{self.date_max.isoformat()}"


DEFAULT_LIMITS = Limits()

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
    max_len: int | None = None  # text kinds: longest value (characters) the store holds


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Col, ...]
    key: tuple[str, ...]
    event: bool  # events are insert-only by event id; master data is upserted
    extra_prefix: str | None = None  # variants: attr_* columns
    extra_max_len: int = CODE  # longest attribute name (after the prefix) and value
    #: master data only: the file is bounded by ``Limits.max_master_rows``. False for a table
    #: that grows with catalogue x weeks and that no later table refers to (``variant_weeks``).
    reference: bool = True

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _id(name: str, ref: str | None = None, required: bool = True) -> Col:
    return Col(name, "id", required=required, ref=ref, max_len=ID)


def _name(required: bool = True) -> Col:
    return Col("name", "text", required=required, max_len=NAME)


def _code(name: str, required: bool = True, allowed: frozenset[str] | None = None) -> Col:
    return Col(name, "code", required=required, allowed=allowed, max_len=CODE)


SPECS: dict[str, TableSpec] = {
    s.name: s
    for s in (
        TableSpec(
            "families",
            (
                _id("family_id"),
                _name(),
                _code("category", required=False),
                Col("base_price", "float", gt=0, max=MAX_PRICE),
            ),
            key=("family_id",),
            event=False,
        ),
        TableSpec(
            "family_attributes",
            (_id("family_id", "families"), _code("attribute"), _code("value")),
            key=("family_id", "attribute", "value"),
            event=False,
        ),
        TableSpec(
            "variants",
            (
                _id("variant_id"),
                _id("family_id", "families"),
                Col("list_price", "float", gt=0, max=MAX_PRICE),
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
                _name(required=False),
                Col("capacity_hours", "float", gt=0, max=MAX_HOURS),
                Col("setup_hours", "float", required=False, default=0.0, min=0, max=MAX_HOURS),
                Col("setup_cost", "float", required=False, default=0.0, min=0, max=MAX_PRICE),
                Col(
                    "overtime_hours_max",
                    "float",
                    required=False,
                    default=0.0,
                    min=0,
                    max=MAX_HOURS,
                ),
                Col(
                    "overtime_cost_per_hour",
                    "float",
                    required=False,
                    default=0.0,
                    min=0,
                    max=MAX_PRICE,
                ),
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
            "family_setups",
            (
                _id("line_id", "lines"),
                _id("family_id", "families"),
                Col("setup_hours", "float", required=False, default=0.0, min=0, max=MAX_HOURS),
                Col("setup_cost", "float", required=False, default=0.0, min=0, max=MAX_PRICE),
            ),
            key=("line_id", "family_id"),
            event=False,
        ),
        TableSpec(
            "materials",
            (
                _id("material_id"),
                _name(required=False),
                Col("unit", "unit", allowed=frozenset({"m", "kg", "pcs"}), max_len=CODE),
                Col("unit_cost", "float", min=0, max=MAX_PRICE),
                Col("stock", "float", required=False, default=0.0, min=0, max=MAX_MATERIAL),
                Col(
                    "lead_time_weeks",
                    "int",
                    required=False,
                    default=0,
                    min=0,
                    max=MAX_LEAD_WEEKS,
                ),
            ),
            key=("material_id",),
            event=False,
        ),
        TableSpec(
            "bom",
            (
                _id("family_id", "families"),
                _id("material_id", "materials"),
                Col("quantity_per_unit", "float", gt=0, max=MAX_PER_UNIT),
                Col("condition", "condition", required=False, default="", max_len=CONDITION),
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
                Col("quantity", "float", gt=0, max=MAX_MATERIAL),
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
                Col("quantity", "int", gt=0, max=MAX_UNITS),
                Col("unit_price", "float", min=0, max=MAX_PRICE),
                Col("order_date", "date"),
                Col("due_date", "date"),
                Col("kind", "code", allowed=frozenset({"stock", "custom"}), max_len=KIND),
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
                Col("quantity", "int", gt=0, max=MAX_UNITS),
                Col("hours", "float", gt=0, max=MAX_HOURS),
                Col("cost", "float", min=0, max=MAX_AMOUNT),
                Col("scrap", "int", required=False, default=0, min=0, max=MAX_UNITS),
                # the variant setup before the run; empty = not recorded (stays NULL)
                Col("setup_hours", "float", required=False, min=0, max=MAX_HOURS),
            ),
            key=("record_id",),
            event=True,
        ),
        TableSpec(
            "changeovers",
            (
                _id("changeover_id"),
                _id("line_id", "lines"),
                _id("family_id", "families"),
                Col("date", "date"),
                Col("hours", "float", gt=0, max=MAX_HOURS),
                Col("cost", "float", min=0, max=MAX_PRICE),
            ),
            key=("changeover_id",),
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
                Col("price_index", "float", gt=0, max=MAX_INDEX),
                Col("trend_index", "float", gt=0, max=MAX_INDEX),
            ),
            key=("week", "family_id"),
            event=False,
        ),
        TableSpec(
            "unobserved_weeks",
            (
                Col("week", "week"),
                Col("family_id", "id", required=False, default="", ref="families", max_len=ID),
                Col("variant_id", "id", required=False, default="", ref="variants", max_len=ID),
                Col("reason", "text", required=False, max_len=NAME),
            ),
            key=("week", "family_id", "variant_id"),
            event=False,
        ),
        TableSpec(
            "variant_weeks",
            (
                _id("variant_id", "variants"),
                Col("week", "week"),
                # the posted price that week; empty = the list price (stays NULL)
                Col("price", "float", required=False, gt=0, max=MAX_PRICE),
                Col("promo", "flag01", required=False, default=0),
            ),
            key=("variant_id", "week"),
            event=False,
            reference=False,
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
    "family_setups",
    "materials",
    "bom",
    "material_arrivals",
    "orders",
    "production",
    "changeovers",
    "reviews",
    "market",
    "unobserved_weeks",
    "variant_weeks",
)
assert set(TABLE_ORDER) == set(SPECS)
