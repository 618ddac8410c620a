"""batch customisation (issue 16): family changeover standards (family_setups), the changeovers
that happened (changeovers), and the variant setup hours of a production run
(production.setup_hours, NULL = not recorded)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "family_setups",
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("setup_hours", sa.Float(), nullable=False),
        sa.Column("setup_cost", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"],
            ["families.family_id"],
            name=op.f("fk_family_setups_family_id_families"),
        ),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.line_id"], name=op.f("fk_family_setups_line_id_lines")
        ),
        sa.PrimaryKeyConstraint("line_id", "family_id", name=op.f("pk_family_setups")),
    )
    op.create_table(
        "changeovers",
        sa.Column("changeover_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["family_id"], ["families.family_id"], name=op.f("fk_changeovers_family_id_families")
        ),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.line_id"], name=op.f("fk_changeovers_line_id_lines")
        ),
        sa.PrimaryKeyConstraint("changeover_id", name=op.f("pk_changeovers")),
    )
    with op.batch_alter_table("changeovers", schema=None) as batch_op:
        batch_op.create_index("ix_changeovers_line_date", ["line_id", "date"], unique=False)
    with op.batch_alter_table("production", schema=None) as batch_op:
        batch_op.add_column(sa.Column("setup_hours", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("production", schema=None) as batch_op:
        batch_op.drop_column("setup_hours")
    with op.batch_alter_table("changeovers", schema=None) as batch_op:
        batch_op.drop_index("ix_changeovers_line_date")
    op.drop_table("changeovers")
    op.drop_table("family_setups")
