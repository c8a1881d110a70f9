"""users' edit keys: the proof a station's edit was made by someone who knew the password

A nullable column the server alone reads and writes (it never syncs): existing users have
none until they next sign in on the web or are given a new password there, and until then
the server refuses station edits in their name.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edit_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("edit_key")
