"""audit log: keyed chain (scheme column), TRUNCATE refused, guards fire in every role

Rows written before this revision were chained with plain SHA-256 and keep
``scheme = 'sha256'``; the server writes ``hmac-sha256`` rows from now on, keyed with a
secret kept outside the database (PP_AUDIT_KEY_FILE). The first signed checkpoint pins how
many legacy rows there are, so a forger cannot later pass keyed rows off as legacy ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# 0001's function raises for any statement; a statement-level trigger makes TRUNCATE,
# which fires no row triggers, raise too. ENABLE ALWAYS keeps both guards firing under
# `SET session_replication_role = replica`, which otherwise silences ordinary triggers.
PG_GUARD = [
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only",
    "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate",
]
PG_UNGUARD = [
    "DROP TRIGGER audit_log_no_truncate ON audit_log",
    "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only",
]


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    # Not in a batch: SQLite adds a column in place, while a batch rebuild would drop the
    # table and with it the append-only triggers of 0001.
    op.add_column(
        "audit_log",
        sa.Column("scheme", sa.String(length=16), server_default="sha256", nullable=False),
    )
    if _postgres():
        for statement in PG_GUARD:
            op.execute(statement)
    # SQLite has no TRUNCATE; its DELETE trigger (0001) already refuses emptying the table.


def downgrade() -> None:
    if _postgres():
        for statement in PG_UNGUARD:
            op.execute(statement)
        op.drop_column("audit_log", "scheme")
    else:
        # Native since SQLite 3.35; a batch rebuild would lose 0001's triggers.
        op.execute("ALTER TABLE audit_log DROP COLUMN scheme")
