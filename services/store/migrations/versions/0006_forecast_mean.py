"""forecast mean (monitoring): ``forecasts_served.mean``, the served distribution's mean, which
the bias of a forecast is judged by (a sum of P50s falls short of the units ordered on skewed
counts even when every quantile is right); NULL on older rows, which are judged by their P50

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("forecasts_served", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mean", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("forecasts_served", schema=None) as batch_op:
        batch_op.drop_column("mean")
