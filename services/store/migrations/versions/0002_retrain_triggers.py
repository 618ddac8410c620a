"""retrain triggers (services.monitoring records each fired retrain trigger)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 18:27:53.245297
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retrain_triggers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of_week", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_triggers")),
    )
    with op.batch_alter_table("retrain_triggers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_retrain_triggers_model_week", ["model_name", "as_of_week"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_triggers", schema=None) as batch_op:
        batch_op.drop_index("ix_retrain_triggers_model_week")

    op.drop_table("retrain_triggers")
