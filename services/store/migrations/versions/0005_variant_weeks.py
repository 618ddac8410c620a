"""variant weeks (issue 14): the posted price (NULL = list price) and promotion flag of a variant
per week, history and plan weeks alike: the demand model's known-future inputs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "variant_weeks",
        sa.Column("variant_id", sa.String(length=64), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("promo", sa.Integer(), nullable=False),
        sa.CheckConstraint("price > 0", name=op.f("ck_variant_weeks_price_positive")),
        sa.CheckConstraint("promo IN (0, 1)", name=op.f("ck_variant_weeks_promo_flag")),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["variants.variant_id"],
            name=op.f("fk_variant_weeks_variant_id_variants"),
        ),
        sa.PrimaryKeyConstraint("variant_id", "week", name=op.f("pk_variant_weeks")),
    )


def downgrade() -> None:
    op.drop_table("variant_weeks")
