"""unobserved weeks (ingested: weeks not to train on or score) and the cost predictions a cost
model version made (the cost model's monitoring compares them with production records)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unobserved_weeks",
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("variant_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint(
            "week", "family_id", "variant_id", name=op.f("pk_unobserved_weeks")
        ),
    )
    op.create_table(
        "cost_predictions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("unit_cost", sa.Float(), nullable=False),
        sa.Column("unit_cost_p10", sa.Float(), nullable=False),
        sa.Column("unit_cost_p90", sa.Float(), nullable=False),
        sa.Column("hours_per_unit", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_predictions")),
    )
    with op.batch_alter_table("cost_predictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cost_predictions_version_pair",
            ["model_version", "variant_id", "line_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("cost_predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_cost_predictions_version_pair")
    op.drop_table("cost_predictions")
    op.drop_table("unobserved_weeks")
