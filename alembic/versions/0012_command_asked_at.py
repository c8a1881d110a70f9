"""commands.asked_at: when the server asked a station about a command past its deadline

A command published but unanswered at its ``expires_at`` is asked about once (a signed
``command.query``), so a lost one ends in seconds on the station's word instead of after
the expiry grace; the column records that it was asked, so it is asked only once, by one
replica, across restarts. Nullable, no default: adding it rewrites nothing.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa

import core.db.types
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("asked_at", core.db.types.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("commands", schema=None) as batch_op:
        batch_op.drop_column("asked_at")
