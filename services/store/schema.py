"""The store's tables (SQLAlchemy Core, one ``MetaData``).

Master data and events keep their natural keys from docs/data-format.md as primary keys, so a
re-import is idempotent by construction (an event id already stored is skipped; master data is
upserted). Tables that later parts fill (plans, model versions, forecasts served, retrain jobs)
use surrogate keys or ids they choose themselves. Every schema change goes through an Alembic
migration in ``services/store/migrations/versions``; this module is the target it is checked
against (tests compare the migrated database with ``metadata``).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

ID = 64  # length of identifiers (variant_id, order_id, ...)
CODE = 64  # length of codes (attribute names and values, kind, unit)


def _flag_columns() -> list[Column]:
    return [
        Column("flagged", Boolean, nullable=False, default=False, doc="Loaded but suspicious."),
        Column("flag_reason", String(200), nullable=True, doc="Why it was flagged."),
    ]


# --------------------------------------------------------------------------- master data

families = Table(
    "families",
    metadata,
    Column("family_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(CODE), nullable=True),
    Column("base_price", Float, nullable=False),
    CheckConstraint("base_price > 0", name="base_price_positive"),
)

family_attributes = Table(
    "family_attributes",
    metadata,
    Column("family_id", String(ID), ForeignKey("families.family_id"), primary_key=True),
    Column("attribute", String(CODE), primary_key=True),
    Column("value", String(CODE), primary_key=True),
)

variants = Table(
    "variants",
    metadata,
    Column("variant_id", String(ID), primary_key=True),
    Column("family_id", String(ID), ForeignKey("families.family_id"), nullable=False, index=True),
    Column("list_price", Float, nullable=False),
    Column("launch_date", Date, nullable=True),
    *_flag_columns(),
    CheckConstraint("list_price > 0", name="list_price_positive"),
)

variant_attributes = Table(
    "variant_attributes",
    metadata,
    Column("variant_id", String(ID), ForeignKey("variants.variant_id"), primary_key=True),
    Column("attribute", String(CODE), primary_key=True),
    Column("value", String(CODE), nullable=False),
)

lines = Table(
    "lines",
    metadata,
    Column("line_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=True),
    Column("capacity_hours", Float, nullable=False, doc="Regular hours per week."),
    Column("setup_hours", Float, nullable=False, default=0.0),
    Column("setup_cost", Float, nullable=False, default=0.0),
    Column("overtime_hours_max", Float, nullable=False, default=0.0),
    Column("overtime_cost_per_hour", Float, nullable=False, default=0.0),
    CheckConstraint("capacity_hours > 0", name="capacity_positive"),
)

line_eligibility = Table(
    "line_eligibility",
    metadata,
    Column("line_id", String(ID), ForeignKey("lines.line_id"), primary_key=True),
    Column("family_id", String(ID), ForeignKey("families.family_id"), primary_key=True),
)

family_setups = Table(
    "family_setups",
    metadata,
    Column("line_id", String(ID), ForeignKey("lines.line_id"), primary_key=True),
    Column("family_id", String(ID), ForeignKey("families.family_id"), primary_key=True),
    Column("setup_hours", Float, nullable=False, default=0.0, doc="Major changeover, hours."),
    Column("setup_cost", Float, nullable=False, default=0.0, doc="Major changeover, EUR."),
)

materials = Table(
    "materials",
    metadata,
    Column("material_id", String(ID), primary_key=True),
    Column("name", String(200), nullable=True),
    Column("unit", String(CODE), nullable=False),
    Column("unit_cost", Float, nullable=False),
    Column("stock", Float, nullable=False, default=0.0),
    Column("lead_time_weeks", Integer, nullable=False, default=0),
)

bom = Table(
    "bom",
    metadata,
    Column("family_id", String(ID), ForeignKey("families.family_id"), primary_key=True),
    Column("material_id", String(ID), ForeignKey("materials.material_id"), primary_key=True),
    Column(
        "condition",
        String(400),
        primary_key=True,
        default="",
        doc="'' = every variant; else canonical 'attr=value;attr=value' (sorted).",
    ),
    Column("quantity_per_unit", Float, nullable=False),
    CheckConstraint("quantity_per_unit > 0", name="quantity_positive"),
)

# --------------------------------------------------------------------------- events

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(ID), primary_key=True),
    Column("customer_id", String(32), nullable=False, doc="HMAC-SHA256 pseudonym (32 hex)."),
    Column("variant_id", String(ID), ForeignKey("variants.variant_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Float, nullable=False),
    Column("order_date", Date, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("promo", Integer, nullable=False, default=0),
    *_flag_columns(),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    Index("ix_orders_variant_date", "variant_id", "order_date"),
)

production = Table(
    "production",
    metadata,
    Column("record_id", String(ID), primary_key=True),
    Column("line_id", String(ID), ForeignKey("lines.line_id"), nullable=False),
    Column("variant_id", String(ID), ForeignKey("variants.variant_id"), nullable=False),
    Column("date", Date, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("hours", Float, nullable=False),
    Column("cost", Float, nullable=False),
    Column("scrap", Integer, nullable=False, default=0),
    Column(
        "setup_hours", Float, nullable=True, doc="Variant setup before the run; NULL: not recorded."
    ),
    *_flag_columns(),
    Index("ix_production_variant_date", "variant_id", "date"),
)

changeovers = Table(
    "changeovers",
    metadata,
    Column("changeover_id", String(ID), primary_key=True),
    Column("line_id", String(ID), ForeignKey("lines.line_id"), nullable=False),
    Column("family_id", String(ID), ForeignKey("families.family_id"), nullable=False),
    Column("date", Date, nullable=False),
    Column("hours", Float, nullable=False, doc="Hours the line stood for the changeover."),
    Column("cost", Float, nullable=False),
    Index("ix_changeovers_line_date", "line_id", "date"),
)

material_arrivals = Table(
    "material_arrivals",
    metadata,
    Column("arrival_id", String(ID), primary_key=True),
    Column("material_id", String(ID), ForeignKey("materials.material_id"), nullable=False),
    Column("date", Date, nullable=False),
    Column("quantity", Float, nullable=False),
)

reviews = Table(
    "reviews",
    metadata,
    Column("review_id", String(ID), primary_key=True),
    Column("variant_id", String(ID), ForeignKey("variants.variant_id"), nullable=False),
    Column("customer_id", String(32), nullable=True),
    Column("date", Date, nullable=False),
    Column("rating", Integer, nullable=False),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
)

market = Table(
    "market",
    metadata,
    Column("week", Date, primary_key=True, doc="Monday of the ISO week."),
    Column("family_id", String(ID), ForeignKey("families.family_id"), primary_key=True),
    Column("price_index", Float, nullable=False),
    Column("trend_index", Float, nullable=False),
)

unobserved_weeks = Table(
    "unobserved_weeks",
    metadata,
    Column("week", Date, primary_key=True, doc="Monday of the ISO week not observed."),
    Column("family_id", String(ID), primary_key=True, default="", doc="'' = every family."),
    Column("variant_id", String(ID), primary_key=True, default="", doc="'' = every variant."),
    Column("reason", String(200), nullable=True, doc="e.g. store closed, feed missing."),
)

variant_weeks = Table(
    "variant_weeks",
    metadata,
    Column("variant_id", String(ID), ForeignKey("variants.variant_id"), primary_key=True),
    Column("week", Date, primary_key=True, doc="Monday of the ISO week."),
    Column("price", Float, nullable=True, doc="Posted price that week (EUR); NULL: list price."),
    Column("promo", Integer, nullable=False, default=0, doc="1: a promotion planned or run."),
    CheckConstraint("price > 0", name="price_positive"),
    CheckConstraint("promo IN (0, 1)", name="promo_flag"),
)

# --------------------------------------------------------------------------- filled by later parts

plans = Table(
    "plans",
    metadata,
    Column("plan_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(32), nullable=False, doc="e.g. optimal, feasible, infeasible."),
    Column("horizon_start", Date, nullable=True, doc="Monday of the first planned week."),
    Column("periods", Integer, nullable=True),
    Column("objective", Float, nullable=True),
    Column("request", JSON, nullable=True, doc="What was asked (service level, frozen weeks...)."),
    Column("summary", JSON, nullable=True, doc="Cost breakdown, bottlenecks, shortages."),
    Column("previous_plan_id", String(64), ForeignKey("plans.plan_id"), nullable=True),
)

plan_lines = Table(
    "plan_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", String(64), ForeignKey("plans.plan_id", ondelete="CASCADE"), nullable=False),
    Column("variant_id", String(ID), nullable=False),
    Column("line_id", String(ID), nullable=True),
    Column("week", Date, nullable=False),
    Column("quantity", Float, nullable=False, default=0.0),
    Column("setup", Boolean, nullable=False, default=False),
    Column("inventory", Float, nullable=True),
    Column("backlog", Float, nullable=True),
    Column("demand", Float, nullable=True, doc="Demand quantile the plan used."),
    Index("ix_plan_lines_plan", "plan_id", "week"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, doc="e.g. demand, cost."),
    Column("version", Integer, nullable=False),
    Column("path", String(500), nullable=False, doc="Where the model repository holds it."),
    Column("metrics", JSON, nullable=True),
    Column("data_start", Date, nullable=True),
    Column("data_end", Date, nullable=True),
    Column("status", String(16), nullable=False, default="candidate"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version"),
    CheckConstraint("status IN ('candidate', 'served', 'retired')", name="status_known"),
)

forecasts_served = Table(
    "forecasts_served",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("variant_id", String(ID), nullable=False, doc="May be a configuration never stored."),
    Column("week", Date, nullable=False),
    Column("model_name", String(64), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("p10", Float, nullable=False),
    Column("p50", Float, nullable=False),
    Column("p90", Float, nullable=False),
    Column(
        "mean",
        Float,
        nullable=True,
        doc="The served distribution's mean; NULL on rows recorded before 0006 (judged by P50).",
    ),
    Column("served_at", DateTime(timezone=True), nullable=False),
    Index("ix_forecasts_served_variant_week", "variant_id", "week"),
)

cost_predictions = Table(
    "cost_predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version", Integer, nullable=False, doc="The cost model version that made it."),
    Column("variant_id", String(ID), nullable=False),
    Column("line_id", String(ID), nullable=False),
    Column("unit_cost", Float, nullable=False, doc="EUR per unit (the P50)."),
    Column("unit_cost_p10", Float, nullable=False, doc="From the hold-out's residual spread."),
    Column("unit_cost_p90", Float, nullable=False),
    Column("hours_per_unit", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_cost_predictions_version_pair", "model_version", "variant_id", "line_id"),
)

retrain_jobs = Table(
    "retrain_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("status", String(16), nullable=False, doc="pending, running, succeeded, failed."),
    Column("launcher", String(32), nullable=True, doc="local-ray or kuberay."),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("config", JSON, nullable=True),
    Column("result", JSON, nullable=True, doc="Champion/challenger metrics, decision."),
    Column("error", Text, nullable=True),
)

retrain_triggers = Table(
    "retrain_triggers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(64), nullable=False, default="demand"),
    Column("fired_at", DateTime(timezone=True), nullable=False, doc="Wall clock when it fired."),
    Column("as_of_week", Date, nullable=False, doc="Data week it was evaluated at (cooldown)."),
    Column("reason", String(16), nullable=False, doc="wape, bias or drift."),
    Column("metrics", JSON, nullable=False, doc="Window metrics, policy, worst families."),
    Column("job_id", String(64), nullable=True, doc="The retrain job started for it."),
    Index("ix_retrain_triggers_model_week", "model_name", "as_of_week"),
)

ingest_runs = Table(
    "ingest_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("source", String(500), nullable=False, doc="Folder or 'frames' (streamed events)."),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("counts", JSON, nullable=False, doc="Per table: read, loaded, rejected, ..."),
    Column("rejected_rows", Integer, nullable=False, default=0),
)

#: Data tables in the order they must be written (parents before children).
DATA_TABLES: tuple[Table, ...] = (
    families,
    family_attributes,
    variants,
    variant_attributes,
    lines,
    line_eligibility,
    family_setups,
    materials,
    bom,
    material_arrivals,
    orders,
    production,
    changeovers,
    reviews,
    market,
    unobserved_weeks,
    variant_weeks,
)
